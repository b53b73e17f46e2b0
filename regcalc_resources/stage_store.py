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
import re
import shutil
import time
import uuid
from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3Resource

from regcalc_core.identifiers import decode_key, encode_key
from regcalc_core.timestamps import is_iso_date

WHOLE_DATE = "_all"  # the "entity" of a date-level (daily-partitioned) asset
POINTER = "_CURRENT"


def partition_suffix(date: str, entity: str) -> str:
    """The partition's place under its asset. The date must be an ISO date; the entity is
    encoded by ``encode_key`` (reversible, never ``/``, ``.`` or ``..``), whatever it holds."""
    check_date(date)
    if entity == WHOLE_DATE:
        return f"business_date={date}"
    name = encode_key(entity)
    if len(name) > MAX_NAME:
        raise UnsafeStoragePathError(f"refusing partition key {entity[:40]!r}...: {len(entity)} characters is too long for a path")
    return f"business_date={date}/entity_id={name}"


MAX_NAME = 200  # bytes of an encoded key (file systems allow 255 per path component)


def check_date(date: str) -> str:
    """``date`` if it is a real ISO date (YYYY-MM-DD), else a ValueError naming it."""
    if not is_iso_date(date):
        raise ValueError(f"not a business date: {date!r}")
    return date


def _split_suffix(date_part: str, entity_part: str | None) -> tuple[str, str]:
    """(business_date, entity) of stored partition directory names (the inverse of partition_suffix)."""
    date = date_part.split("=", 1)[1]
    return date, WHOLE_DATE if entity_part is None else decode_key(entity_part.split("=", 1)[1])


class UnsafeStoragePathError(RuntimeError):
    """A path the store would touch lies outside its root, or is a link the store did not make."""


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

    def _versions_dir(self, asset: str) -> Path:
        return self.asset_dir(asset) / ".versions"

    def _inside(self, path: Path, where: Path) -> Path:
        """``path`` (not resolved) if it lies inside ``where``, else an UnsafeStoragePathError."""
        base, full = os.path.realpath(where), os.path.realpath(path.parent) + os.sep + path.name
        if not full.startswith(base + os.sep):
            raise UnsafeStoragePathError(f"refusing {path}: it is outside the stage store {where}")
        return path

    def _own_version(self, asset: str, link: Path) -> str | None:
        """The version directory a partition link points at, if the store made that link (a
        symlink into this asset's ``.versions/v-*``); None if absent; an error for anything else,
        so a link planted by someone else is never followed, replaced or deleted through."""
        if not os.path.lexists(link) or (link.is_dir() and not link.is_symlink()):
            return None  # a real directory is only ever the parent of entity partitions
        if not link.is_symlink():
            raise UnsafeStoragePathError(f"refusing {link}: not a partition link made by the stage store")
        target = os.path.realpath(link)
        versions = os.path.realpath(self._versions_dir(asset))
        if os.path.dirname(target) != versions or not os.path.basename(target).startswith("v-"):
            raise UnsafeStoragePathError(f"refusing {link}: it points outside the stage store ({target})")
        return target

    def publish(self, asset, date, entity, staged):
        target = self._inside(self.partition_dir(asset, date, entity), Path(self.root))
        target.parent.mkdir(parents=True, exist_ok=True)
        old = self._own_version(asset, target)
        final = self._versions_dir(asset) / f"v-{uuid.uuid4().hex}"
        os.rename(staged, final)
        link = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        os.symlink(os.path.relpath(final, target.parent), link)
        os.replace(link, target)
        if old and os.path.isdir(old) and not os.path.islink(old):
            shutil.rmtree(old, ignore_errors=True)

    def read_dir(self, asset, date, entity):
        path = self._inside(self.partition_dir(asset, date, entity), Path(self.root))
        return path if self._own_version(asset, path) else None

    def location(self, asset):
        return str(self.asset_dir(asset))

    def partitions(self, asset):
        root = self.asset_dir(asset)
        return sorted(_split_suffix(p.parent.name, p.name) for p in root.glob("business_date=*/entity_id=*"))

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
                    found.append(_split_suffix(parts[-3], parts[-2]))
        return sorted(found)

    def collect_garbage(self, asset, min_age_seconds=6 * 3600):
        staging = Path(self.cache_dir) / "staging"
        cutoff = time.time() - min_age_seconds
        if staging.is_dir():
            for path in staging.iterdir():
                if path.stat().st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)
