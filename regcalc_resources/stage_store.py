"""Where stage partitions live: the local disk (default) or S3, each replacing a partition atomically.

Both stores publish a partition in two steps: the new Parquet files go to an immutable version
(``<asset>/.versions/v-<uuid>/``), then one atomic operation makes the partition point at it:

- ``LocalStageStore``: the partition path is a symlink swapped with one ``rename``.
- ``S3StageStore``: the partition's ``_CURRENT`` object (a small JSON naming the version and its
  files) is replaced with one PUT, which S3 applies atomically: a reader gets the old pointer or
  the new one, never a mix. Readers download the version they are pointed at into a local cache
  keyed by the version id, so a version is fetched once.

A crash before the swap leaves only an orphaned version, removed later; the previous partition
stays visible and whole. An engine in this process writes to a local staging directory first
(``staging_root``): DuckDB cannot write to S3 without an extension downloaded at run time.

A remote engine (Spark Connect) never sees this process's disk: it reads and writes only under
the store's root, as the cluster names it (``engine_root``: ``s3a://`` for an ``s3://`` store,
``settings.spark_storage_root``). ``staging(asset, remote=True)`` gives it a staging area under
the root, ``engine_paths`` the stored partitions, and ``share_file`` a copy of a landing file
under ``<root>/.shared/``.
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


SHARED = ".shared"  # landing files copied under the root for a remote engine (never an asset name)


class Staging:
    """One write's staging area. The engine writes under ``uri`` (as the engine names it); the
    store then lists the partition directories it wrote, completes the empty ones, counts rows from
    the Parquet footers and publishes each partition; ``discard`` removes what is left. ``sub`` is a
    path relative to the staging area (``_part_date=D/_part_entity=N``, ``table``)."""

    uri: str

    def uri_of(self, sub: str) -> str:
        return f"{self.uri}/{sub}"

    def written(self, date_dir: str, entity_dir: str) -> set[tuple[str, str]]:
        """The (date value, entity value) of every ``<date_dir>=*/<entity_dir>=*`` directory written."""
        raise NotImplementedError

    def rows(self, sub: str) -> int:
        raise NotImplementedError

    def fill_empty(self, template: str, subs: list[str]) -> None:
        """Copy the first Parquet file under ``template`` (a zero-row file with the stage's schema)
        into each of ``subs``, then remove ``template``."""
        raise NotImplementedError

    def publish(self, date: str, entity: str, sub: str) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        raise NotImplementedError


class LocalStaging(Staging):
    """A staging directory this process sees: under the local store's root (where a remote engine
    also writes it, through ``uri``), or the S3 store's cache for an engine in this process."""

    def __init__(self, store: "StageStore", asset: str, path: Path, uri: str):
        self.store, self.asset, self.path, self.uri = store, asset, path, uri

    def written(self, date_dir, entity_dir):
        return {(d.parent.name.split("=", 1)[1], d.name.split("=", 1)[1])
                for d in self.path.glob(f"{date_dir}=*/{entity_dir}=*") if d.is_dir()}

    def rows(self, sub):
        return count_rows(self.path / sub)

    def fill_empty(self, template, subs):
        file = sorted((self.path / template).glob("*.parquet"))[0]
        for sub in subs:
            (self.path / sub).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, self.path / sub / "part-empty.parquet")
        shutil.rmtree(self.path / template, ignore_errors=True)

    def publish(self, date, entity, sub):
        self.store.publish(self.asset, date, entity, self.path / sub)

    def discard(self):
        shutil.rmtree(self.path, ignore_errors=True)


class StageStore(dg.ConfigurableResource):
    """Interface: publish a staged partition atomically; give a local directory to read one."""

    def staging_root(self, asset: str) -> Path:
        raise NotImplementedError

    def staging(self, asset: str, remote: bool = False) -> Staging:
        """Where one write of ``asset`` is staged: a local directory for an engine in this process;
        under the store's root, as the cluster names it, for a remote one (``remote``)."""
        path = self.staging_root(asset)
        if remote:
            raise NotImplementedError(f"{type(self).__name__} cannot stage writes for a remote engine")
        return LocalStaging(self, asset, path, str(path))

    def engine_paths(self, asset: str, pairs: list[tuple[str, str]]) -> list[str]:
        """The stored partitions ``pairs`` as a remote engine names them (under ``engine_root``),
        never through this process's disk; a partition never written is an error naming it."""
        raise NotImplementedError(f"{type(self).__name__} cannot serve a remote engine")

    def share_file(self, path: str) -> str:
        """A local file (a landing file) copied once per version under ``<root>/.shared/``, as a
        remote engine names it; older versions of the same file are removed."""
        raise NotImplementedError(f"{type(self).__name__} cannot serve a remote engine")

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


def shared_name(path: str) -> tuple[str, str]:
    """(file, version) directory names of a local file under ``.shared/``: a digest of its path,
    and one of its size and modification time (a re-delivered file is a new version)."""
    import hashlib

    stat = os.stat(path)
    return (hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:24],
            hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16])


class LocalStageStore(StageStore):
    """``<root>/<asset>/business_date=D/entity_id=E`` is a symlink to an immutable version directory.

    A remote engine sees the root too when it is a volume the cluster mounts (``engine_root``: the
    root as the cluster names it, by default ``file://`` and the same path)."""

    root: str
    engine_root: str | None = None

    def engine_uri(self, path: Path) -> str:
        """``path`` (under the root; links resolved) as a remote engine names it."""
        real, base = os.path.realpath(path), os.path.realpath(self.root)
        if real != base and not real.startswith(base + os.sep):
            raise UnsafeStoragePathError(f"refusing {path}: a remote engine sees only the stage store {self.root}")
        root = (self.engine_root or "file://" + os.path.abspath(self.root)).rstrip("/")
        relative = os.path.relpath(real, base)
        return root if relative == "." else f"{root}/{relative}"

    def staging(self, asset, remote=False):
        path = self.staging_root(asset)
        return LocalStaging(self, asset, path, self.engine_uri(path) if remote else str(path))

    def engine_paths(self, asset, pairs):
        # the version a partition points at now, so a later swap cannot change what is read
        return [self.engine_uri(Path(os.path.realpath(path))) for path in self.partition_dirs(asset, pairs)]

    def share_file(self, path):
        name, version = shared_name(path)
        folder = Path(self.root) / SHARED / name
        target = folder / version / os.path.basename(path)
        if not target.exists():
            partial = folder / f".{version}.{uuid.uuid4().hex}.part"
            partial.mkdir(parents=True)
            shutil.copyfile(path, partial / target.name)
            try:
                os.rename(partial, target.parent)
            except OSError:  # another process shared the same version first
                shutil.rmtree(partial, ignore_errors=True)
        for old in folder.iterdir():  # superseded deliveries of the same file, a crashed copy
            if old.name != version and (not old.name.startswith(".") or old.stat().st_mtime < time.time() - 6 * 3600):
                shutil.rmtree(old, ignore_errors=True)
        return self.engine_uri(target)

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
