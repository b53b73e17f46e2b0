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

from regcalc_resources.stage_store import (POINTER, SHARED, WHOLE_DATE, Staging, StageStore, UnsafeStoragePathError,
                                          partition_suffix, shared_name, split_suffix)

STAGING = ".staging"  # <asset>/.staging/run-<uuid>/: where a remote engine writes before publication


class S3StageStore(StageStore):
    """Stage partitions on S3 (or an S3-compatible store: ``s3.endpoint_url``), published by
    replacing a pointer object; for an engine in this process, a local directory stages writes and
    caches read versions. A remote engine (Spark Connect) writes and reads the bucket itself,
    through ``engine_root`` (default ``s3a://<bucket>/<prefix>``): nothing goes through this
    process's disk, and the driver reads only Parquet footers (row counts, schemas)."""

    s3: S3Resource
    bucket: str
    prefix: str = "regcalc/stages"
    cache_dir: str
    engine_root: str | None = None

    def _client(self):
        return self.s3.get_client()

    def _key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p)

    def engine_uri(self, key: str) -> str:
        """An object key under the store's prefix as a remote engine names it."""
        base = self._key()
        if key != base and not key.startswith(base + "/"):
            raise UnsafeStoragePathError(f"refusing {key}: a remote engine sees only the stage store's prefix {base}")
        root = (self.engine_root or f"s3a://{self.bucket}/{base}").rstrip("/")
        return root + key[len(base):]

    def staging_root(self, asset):
        root = Path(self.cache_dir) / "staging"
        root.mkdir(parents=True, exist_ok=True)
        return root / f"run-{uuid.uuid4().hex}"

    def staging(self, asset, remote=False):
        if not remote:
            return super().staging(asset)
        return S3Staging(self, asset, self._key(asset, STAGING, f"run-{uuid.uuid4().hex}"))

    def publish(self, asset, date, entity, staged):
        client = self._client()
        version = f"v-{uuid.uuid4().hex}"
        files = sorted(p for p in Path(staged).glob("*.parquet"))
        keys = []
        for path in files:
            key = self._key(asset, ".versions", version, path.name)
            client.upload_file(str(path), self.bucket, key)
            keys.append({"key": key, "size": path.stat().st_size})
        self._swap(client, asset, date, entity, version, keys)
        shutil.rmtree(staged, ignore_errors=True)

    def publish_objects(self, asset, date, entity, objects: list[dict]) -> None:
        """Publish a partition a remote engine wrote into the bucket (``objects``: key and size of
        each Parquet file): server-side copies into a new version, then the same pointer swap."""
        client = self._client()
        version = f"v-{uuid.uuid4().hex}"
        keys = []
        for obj in sorted(objects, key=lambda o: o["key"]):
            key = self._key(asset, ".versions", version, obj["key"].rsplit("/", 1)[-1])
            client.copy({"Bucket": self.bucket, "Key": obj["key"]}, self.bucket, key)
            keys.append({"key": key, "size": obj["size"]})
        self._swap(client, asset, date, entity, version, keys)

    def _swap(self, client, asset, date, entity, version: str, keys: list[dict]) -> None:
        pointer_key = self._key(asset, partition_suffix(date, entity), POINTER)
        old = self._pointer(client, pointer_key)
        body = json.dumps({"version": version, "files": keys, "published_at": time.time()}).encode()
        client.put_object(Bucket=self.bucket, Key=pointer_key, Body=body)  # the atomic swap
        if old and old["files"]:  # the replaced version: nothing points at it any more
            client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": f["key"]} for f in old["files"]]})

    def _pointer(self, client, key: str) -> dict | None:
        try:
            return json.loads(client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            return None

    def _checked_pointer(self, client, asset, date, entity) -> dict | None:
        """The partition's pointer, refused if it names anything outside its own version."""
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
        return pointer

    def engine_paths(self, asset, pairs):
        client = self._client()
        pointers = {pair: self._checked_pointer(client, asset, *pair) for pair in pairs}
        missing = [f"{d}|{e}" for (d, e), p in pointers.items() if p is None]
        if missing:
            raise FileNotFoundError(f"{asset}: partitions not materialized yet: " + ", ".join(missing[:10]))
        return [self.engine_uri(f["key"]) for p in pointers.values() for f in p["files"]]

    def share_file(self, path):
        name, version = shared_name(path)
        client = self._client()
        folder = self._key(SHARED, name) + "/"
        key = folder + f"{version}/{os.path.basename(path)}"
        existing = _list(client, self.bucket, folder)
        if key not in {o["key"] for o in existing}:
            client.upload_file(path, self.bucket, key)  # an object appears whole or not at all
        stale = [{"Key": o["key"]} for o in existing if o["key"] != key]  # superseded deliveries
        for start in range(0, len(stale), 1000):
            client.delete_objects(Bucket=self.bucket, Delete={"Objects": stale[start:start + 1000]})
        return self.engine_uri(key)

    def stored_rows(self, asset, date, entities):
        client = self._client()
        out = {}
        for entity in entities:
            pointer = self._checked_pointer(client, asset, date, entity)
            out[entity] = None if pointer is None else sum(
                _footer(client, self.bucket, f["key"], f.get("size")).num_rows for f in pointer["files"])
        return out

    def stored_schema(self, asset, date, entity):
        client = self._client()
        pointer = self._checked_pointer(client, asset, date, entity)
        if pointer is None and entity != WHOLE_DATE:
            pointer = self._checked_pointer(client, asset, date, WHOLE_DATE)
        if not pointer or not pointer["files"]:
            return None
        first = pointer["files"][0]
        return _footer(client, self.bucket, first["key"], first.get("size")).schema.to_arrow_schema()

    def read_dir(self, asset, date, entity):
        client = self._client()
        pointer = self._checked_pointer(client, asset, date, entity)
        if pointer is None:
            return None
        version = str(pointer["version"])
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
        # what a remote engine's crashed writes left in the bucket
        client = self._client()
        old = [{"Key": o["key"]} for o in _list(client, self.bucket, self._key(asset, STAGING) + "/")
               if o["modified"] < cutoff]
        for start in range(0, len(old), 1000):
            client.delete_objects(Bucket=self.bucket, Delete={"Objects": old[start:start + 1000]})


class S3Staging(Staging):
    """A staging prefix in the bucket (``<asset>/.staging/run-<uuid>/``) that a remote engine
    writes to; listed, completed and published with S3 calls (server-side copies, no download)."""

    def __init__(self, store: S3StageStore, asset: str, prefix: str):
        self.store, self.asset, self.prefix = store, asset, prefix
        self.uri = store.engine_uri(prefix)
        self._objects: list[dict] | None = None

    def _all(self) -> list[dict]:
        if self._objects is None:
            self._objects = _list(self.store._client(), self.store.bucket, self.prefix + "/")
        return self._objects

    def _parquet(self, sub: str) -> list[dict]:
        """The Parquet files directly under ``sub`` (not Spark's ``_SUCCESS`` or checksums)."""
        folder = f"{self.prefix}/{sub}/"
        return [o for o in self._all() if o["key"].startswith(folder) and "/" not in o["key"][len(folder):]
                and o["key"].endswith(".parquet")]

    def written(self, date_dir, entity_dir):
        found = set()
        for obj in self._all():
            parts = obj["key"][len(self.prefix) + 1:].split("/")
            if len(parts) == 3 and parts[0].startswith(date_dir + "=") and parts[1].startswith(entity_dir + "="):
                found.add((parts[0].split("=", 1)[1], parts[1].split("=", 1)[1]))
        return found

    def rows(self, sub):
        client = self.store._client()
        return sum(_footer(client, self.store.bucket, o["key"], o["size"]).num_rows for o in self._parquet(sub))

    def fill_empty(self, template, subs):
        client = self.store._client()
        self._objects = None  # the engine has just written the template
        [first, *_] = sorted(self._parquet(template), key=lambda o: o["key"])
        for sub in subs:
            client.copy({"Bucket": self.store.bucket, "Key": first["key"]}, self.store.bucket,
                        f"{self.prefix}/{sub}/part-empty.parquet")
        self._objects = None

    def publish(self, date, entity, sub):
        self.store.publish_objects(self.asset, date, entity, self._parquet(sub))

    def discard(self):
        client = self.store._client()
        keys = [{"Key": o["key"]} for o in _list(client, self.store.bucket, self.prefix + "/")]
        for start in range(0, len(keys), 1000):
            client.delete_objects(Bucket=self.store.bucket, Delete={"Objects": keys[start:start + 1000]})


def _list(client, bucket: str, prefix: str) -> list[dict]:
    """Every object under ``prefix``: key, size and modification time (epoch seconds)."""
    out = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [{"key": o["Key"], "size": o["Size"], "modified": o["LastModified"].timestamp()}
                for o in page.get("Contents", [])]
    return out


def _footer(client, bucket: str, key: str, size: int | None = None):
    """The Parquet metadata of an object, from two ranged GETs (its tail), never the whole file."""
    import io

    import pyarrow.parquet as pq

    if size is None:
        size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    tail = client.get_object(Bucket=bucket, Key=key, Range="bytes=-8")["Body"].read()
    length = int.from_bytes(tail[:4], "little")
    if tail[4:] != b"PAR1" or length + 8 > size:
        raise ValueError(f"s3://{bucket}/{key} is not a Parquet file")
    footer = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{length + 8}")["Body"].read()
    # the footer alone, behind a header: the reader needs only the file's last length + 8 bytes
    return pq.ParquetFile(io.BytesIO(b"PAR1" + footer)).metadata
