"""Where stage partitions live: the local disk (default) or S3, each replacing a partition atomically.

Both stores publish a partition in two steps: the new Parquet files go to an immutable version
(``<asset>/.versions/v-<uuid>/``), then one atomic operation makes the partition point at it:

- ``LocalStageStore``: the partition path is a symlink swapped with one ``rename``.
- ``S3StageStore``: the partition's ``_CURRENT`` object (a small JSON naming the version and its
  files) is replaced with one PUT, which S3 applies atomically: a reader gets the old pointer or
  the new one, never a mix. Readers download the version they are pointed at into a local cache
  keyed by the version id, so a version is fetched once.

A crash before the swap leaves only an orphaned version, removed later; the previous partition
stays visible and whole. The engine always writes to a local staging directory first
(``staging_root``): DuckDB cannot write to S3 without an extension downloaded at run time.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3Resource

WHOLE_DATE = "_all"  # the "entity" of a date-level (daily-partitioned) asset
POINTER = "_CURRENT"


def partition_suffix(date: str, entity: str) -> str:
    return f"business_date={date}" if entity == WHOLE_DATE else f"business_date={date}/entity_id={entity}"


class StageStore(dg.ConfigurableResource):
    """Interface: publish a staged partition atomically; give a local directory to read one."""

    def staging_root(self, asset: str) -> Path:
        raise NotImplementedError

    def publish(self, asset: str, date: str, entity: str, staged: Path) -> None:
        raise NotImplementedError

    def read_dir(self, asset: str, date: str, entity: str) -> Path | None:
        """A local directory holding the partition's Parquet files, or None if it was never written."""
        raise NotImplementedError

    def location(self, asset: str) -> str:
        raise NotImplementedError

    def partitions(self, asset: str) -> list[tuple[str, str]]:
        """Every stored (business_date, entity_id) of the asset."""
        raise NotImplementedError

    def collect_garbage(self, asset: str, min_age_seconds: float = 6 * 3600) -> None:
        """Remove what crashed writes left behind, once old enough not to be a write in progress."""


class LocalStageStore(StageStore):
    """``<root>/<asset>/business_date=D/entity_id=E`` is a symlink to an immutable version directory."""

    root: str

    def asset_dir(self, asset: str) -> Path:
        return Path(self.root) / asset

    def partition_dir(self, asset: str, date: str, entity: str) -> Path:
        return self.asset_dir(asset) / partition_suffix(date, entity)

    def staging_root(self, asset: str) -> Path:
        versions = self.asset_dir(asset) / ".versions"
        versions.mkdir(parents=True, exist_ok=True)
        return versions / f"run-{uuid.uuid4().hex}"

    def publish(self, asset, date, entity, staged):
        target = self.partition_dir(asset, date, entity)
        target.parent.mkdir(parents=True, exist_ok=True)
        final = self.asset_dir(asset) / ".versions" / f"v-{uuid.uuid4().hex}"
        os.rename(staged, final)
        old = os.path.realpath(target) if target.is_symlink() else None
        link = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        os.symlink(os.path.relpath(final, target.parent), link)
        os.replace(link, target)
        if old and os.path.isdir(old):
            shutil.rmtree(old, ignore_errors=True)

    def read_dir(self, asset, date, entity):
        path = self.partition_dir(asset, date, entity)
        return path if path.exists() else None

    def location(self, asset):
        return str(self.asset_dir(asset))

    def partitions(self, asset):
        root = self.asset_dir(asset)
        found = [(p.parent.name.split("=", 1)[1], p.name.split("=", 1)[1]) for p in root.glob("business_date=*/entity_id=*")]
        return sorted(found)

    def collect_garbage(self, asset, min_age_seconds=6 * 3600):
        versions = self.asset_dir(asset) / ".versions"
        if not versions.is_dir():
            return
        live = {os.path.realpath(p) for p in self.asset_dir(asset).glob("business_date=*/entity_id=*")}
        live |= {os.path.realpath(p) for p in self.asset_dir(asset).glob("business_date=*") if p.is_symlink()}
        cutoff = time.time() - min_age_seconds
        for path in versions.iterdir():
            if str(path.resolve()) not in live and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)


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
        local = Path(self.cache_dir) / "versions" / asset / pointer["version"]
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
                    found.append((parts[-3].split("=", 1)[1], parts[-2].split("=", 1)[1]))
        return sorted(found)

    def collect_garbage(self, asset, min_age_seconds=6 * 3600):
        staging = Path(self.cache_dir) / "staging"
        cutoff = time.time() - min_age_seconds
        if staging.is_dir():
            for path in staging.iterdir():
                if path.stat().st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)
