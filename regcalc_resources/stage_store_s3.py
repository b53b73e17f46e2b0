"""The stage store on S3 (or an S3-compatible store), through dagster-aws's S3Resource.

A module of its own so that dagster-aws (seconds to import) loads only when the storage root is
``s3://``. See ``stage_store.py`` for the publication protocol both stores share.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

from dagster_aws.s3 import S3Resource

from regcalc_resources.stage_store import POINTER, StageStore, UnsafeStoragePathError, split_suffix, partition_suffix


class S3StageStore(StageStore):
    """Stage partitions on S3 (or an S3-compatible store: ``s3.endpoint_url``), published by
    replacing a pointer object; a local directory stages writes and caches read versions."""

    s3: S3Resource
    bucket: str
    prefix: str = "regcalc/stages"
    cache_dir: str

    def _client(self):
        return self.s3.get_client()

    def _key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p)

    def staging_root(self, asset):
        root = Path(self.cache_dir) / "staging"
        root.mkdir(parents=True, exist_ok=True)
        return root / f"run-{uuid.uuid4().hex}"

    def publish(self, asset, date, entity, staged):
        client = self._client()
        version = f"v-{uuid.uuid4().hex}"
        files = sorted(p for p in Path(staged).glob("*.parquet"))
        keys = []
        for path in files:
            key = self._key(asset, ".versions", version, path.name)
            client.upload_file(str(path), self.bucket, key)
            keys.append({"key": key, "size": path.stat().st_size})
        pointer_key = self._key(asset, partition_suffix(date, entity), POINTER)
        old = self._pointer(client, pointer_key)
        body = json.dumps({"version": version, "files": keys, "published_at": time.time()}).encode()
        client.put_object(Bucket=self.bucket, Key=pointer_key, Body=body)  # the atomic swap
        shutil.rmtree(staged, ignore_errors=True)
        if old and old["files"]:  # the replaced version: nothing points at it any more
            client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": f["key"]} for f in old["files"]]})

    def _pointer(self, client, key: str) -> dict | None:
        try:
            return json.loads(client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            return None

    def read_dir(self, asset, date, entity):
        client = self._client()
        pointer = self._pointer(client, self._key(asset, partition_suffix(date, entity), POINTER))
        if pointer is None:
            return None
        version = str(pointer.get("version", ""))
        prefix = self._key(asset, ".versions", version) + "/"
        if not re.fullmatch(r"v-[0-9a-f]{32}", version) or any(
                not str(f["key"]).startswith(prefix) or not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", str(f["key"])[len(prefix):])
                for f in pointer["files"]):
            raise UnsafeStoragePathError(f"refusing the pointer of {asset} {date}|{entity}: it names {version!r} "
                                         "or files outside its version")
        local = Path(self.cache_dir) / "versions" / asset / version
        if not local.exists():
            partial = local.with_name(local.name + f".{uuid.uuid4().hex}.part")
            partial.mkdir(parents=True)
            for f in pointer["files"]:
                client.download_file(self.bucket, f["key"], str(partial / f["key"].rsplit("/", 1)[-1]))
            try:
                os.rename(partial, local)
            except OSError:  # another reader cached the same version first
                shutil.rmtree(partial, ignore_errors=True)
        return local

    def location(self, asset):
        return f"s3://{self.bucket}/{self._key(asset)}"

    def partitions(self, asset):
        found = []
        for page in self._client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(asset) + "/"):
            for obj in page.get("Contents", []):
                parts = obj["Key"].split("/")
                if parts[-1] == POINTER and len(parts) >= 3 and parts[-3].startswith("business_date="):
                    found.append(split_suffix(parts[-3], parts[-2]))
        return sorted(found)

    def collect_garbage(self, asset, min_age_seconds=6 * 3600):
        staging = Path(self.cache_dir) / "staging"
        cutoff = time.time() - min_age_seconds
        if staging.is_dir():
            for path in staging.iterdir():
                if path.stat().st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)
