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

import os
import shutil
import time
import uuid
from pathlib import Path

import dagster as dg

from regcalc_core.identifiers import decode_key, encode_key
from regcalc_core.timestamps import is_iso_date

WHOLE_DATE = "_all"  # the "entity" of a date-level (daily-partitioned) asset
WHOLE_TABLE = "_table"  # the "date" of an unpartitioned asset (a star dimension or aggregate)
POINTER = "_CURRENT"


def pair_of_key(key: str) -> tuple[str, str]:
    """(business_date, entity_id) of a Dagster partition key: ``D|E``, or ``D`` for a date-level
    partition (entity ``WHOLE_DATE``)."""
    date, _, entity = key.partition("|")
    return date, entity or WHOLE_DATE


def key_of_pair(date: str, entity: str) -> str:
    """The Dagster partition key of (business_date, entity_id): the inverse of ``pair_of_key``."""
    return date if entity == WHOLE_DATE else f"{date}|{entity}"


def partition_suffix(date: str, entity: str) -> str:
    """The partition's place under its asset. The date must be an ISO date; the entity is
    encoded by ``encode_key`` (reversible, never ``/``, ``.`` or ``..``), whatever it holds."""
    if date == WHOLE_TABLE and entity == WHOLE_DATE:
        return "table"
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


def split_suffix(date_part: str, entity_part: str | None) -> tuple[str, str]:
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

    def lock(self, name: str):
        """A context manager that one process at a time holds (a whole-table rebuild: read every
        stored date, then write). The base store has none: an object store needs an external lock."""
        import contextlib

        return contextlib.nullcontext()

    # --- reads shared by every store: for the IO manager, the loaders and the command line ---

    def partition_dirs(self, asset: str, pairs: list[tuple[str, str]]) -> list[Path]:
        """Local directories of stored partitions (S3 versions are fetched to the cache); a
        partition never written is an error naming it."""
        dirs = {pair: self.read_dir(asset, *pair) for pair in pairs}
        missing = [f"{d}|{e}" for (d, e), path in dirs.items() if path is None]
        if missing:
            raise FileNotFoundError(f"{asset}: partitions not materialized yet: " + ", ".join(missing[:10]))
        return list(dirs.values())

    def parquet_files(self, asset: str, pairs: list[tuple[str, str]]) -> list[str]:
        """The Parquet files of stored partitions, for loaders that read Parquet themselves."""
        return [str(f) for path in self.partition_dirs(asset, pairs) for f in sorted(path.glob("*.parquet"))]

    def stored_rows(self, asset: str, date: str, entities: list[str]) -> dict[str, int | None]:
        """{entity: rows stored for the (date, entity) partition of ``asset``, None if there is none}."""
        out = {}
        for entity in entities:
            path = self.read_dir(asset, date, entity)
            out[entity] = None if path is None else count_rows(path)
        return out

    def stored_schema(self, asset: str, date: str, entity: str):
        """The Arrow schema of a stored partition (or of the date-level one), None if not stored."""
        import pyarrow.parquet as pq

        path = self.read_dir(asset, date, entity)
        if path is None and entity != WHOLE_DATE:
            path = self.read_dir(asset, date, WHOLE_DATE)
        files = sorted(path.glob("*.parquet")) if path is not None else []
        return pq.read_schema(files[0]) if files else None


def count_rows(directory: Path) -> int:
    """Rows of the Parquet files of a directory, from their footers."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(directory.glob("*.parquet")))


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
        return sorted(split_suffix(p.parent.name, p.name) for p in root.glob("business_date=*/entity_id=*"))

    def lock(self, name):
        import contextlib
        import fcntl

        @contextlib.contextmanager
        def held():
            Path(self.root).mkdir(parents=True, exist_ok=True)
            with open(Path(self.root) / f".{name}.lock", "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

        return held()

    def collect_garbage(self, asset, min_age_seconds=6 * 3600):
        versions = self.asset_dir(asset) / ".versions"
        if not versions.is_dir():
            return
        live = {os.path.realpath(p) for p in self.asset_dir(asset).glob("business_date=*/entity_id=*")}
        live |= {os.path.realpath(p) for p in self.asset_dir(asset).glob("business_date=*") if p.is_symlink()}
        live |= {os.path.realpath(p) for p in self.asset_dir(asset).glob("table") if p.is_symlink()}
        cutoff = time.time() - min_age_seconds
        for path in versions.iterdir():
            if str(path.resolve()) not in live and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
