"""Stage storage: Parquet per asset and (business date, entity) partition, replaced atomically.

Layout: ``<root>/<asset>/business_date=<D>/entity_id=<E>`` is a symlink to an immutable version
directory under ``<root>/<asset>/.versions/``. A write stages every partition of the run in a
fresh directory, then swaps each partition's symlink with one ``rename`` (atomic on POSIX), so a
reader sees the old partition or the new one, never a half-written one; a crash leaves at most
an orphaned version directory that the next write of the asset removes.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from regcalc_resources.engine import ComputeEngine
from regcalc_resources.openlineage import LineageEventSink

PART_DATE, PART_ENTITY = "_part_date", "_part_entity"


def partition_pairs(context) -> list[tuple[str, str]]:
    """(business_date, entity_id) pairs of the partitions an IO context covers."""
    pairs = []
    for key in context.asset_partition_keys:
        dims = key.keys_by_dimension if hasattr(key, "keys_by_dimension") else _split(key)
        pairs.append((dims["date"], dims["entity"]))
    return sorted(pairs)


WHOLE_DATE = "_all"  # the "entity" of a date-level (daily-partitioned) asset


def _split(key: str) -> dict[str, str]:
    date, _, entity = key.partition("|")
    return {"date": date, "entity": entity or WHOLE_DATE}


class PartitionedParquetIOManager(dg.ConfigurableIOManager):
    """Reads and writes stage outputs (PySpark-API DataFrames) as Parquet partitions on the local disk."""

    root: str
    engine: ComputeEngine
    lineage_events: LineageEventSink

    def asset_dir(self, asset: str) -> Path:
        return Path(self.root) / asset

    def partition_dir(self, asset: str, date: str, entity: str) -> Path:
        if entity == WHOLE_DATE:
            return self.asset_dir(asset) / f"business_date={date}"
        return self.asset_dir(asset) / f"business_date={date}" / f"entity_id={entity}"

    def handle_output(self, context: dg.OutputContext, df) -> None:
        if df is None:
            return
        asset = context.asset_key.path[-1]
        pairs = partition_pairs(context)
        started = time.perf_counter()
        versions = self.asset_dir(asset) / ".versions"
        versions.mkdir(parents=True, exist_ok=True)
        self._collect_garbage(asset)
        staging = versions / f"run-{uuid.uuid4().hex}"
        whole_date = all(entity == WHOLE_DATE for _, entity in pairs)
        self.engine.write_partitioned(df, str(staging), PART_DATE, PART_ENTITY, WHOLE_DATE if whole_date else None)
        rows: dict[tuple[str, str], int] = {}
        for date, entity in pairs:
            written = staging / f"{PART_DATE}={date}" / f"{PART_ENTITY}={entity}"
            if not written.exists():
                self.engine.write_empty(df, str(written))
            rows[(date, entity)] = _count_rows(written)
            self._swap(asset, self.partition_dir(asset, date, entity), written)
        shutil.rmtree(staging, ignore_errors=True)
        seconds = time.perf_counter() - started
        total = sum(rows.values())
        fields, lineage, inputs = self._column_lineage(context, asset, pairs)
        self.lineage_events.emit_materialization(
            job_name=_job_name(context), run_id=context.run_id, asset=asset, inputs=inputs, partitions=[_key(d, e) for d, e in pairs],
            fields=fields, column_lineage=lineage, row_count=total,
            started_at=_utc(time.time() - seconds), ended_at=_utc(time.time()))
        context.add_output_metadata(
            {
                "dagster/column_schema": dg.TableSchema([dg.TableColumn(n, t) for n, t in fields]),
                "dagster/column_lineage": dg.TableColumnLineage(
                    {c: [dg.TableColumnDep(dg.AssetKey(a), col) for a, col in deps] for c, deps in lineage.items() if deps}),
                "row_count": dg.MetadataValue.int(total),
                "partitions_written": dg.MetadataValue.int(len(pairs)),
                "rows_by_partition": dg.MetadataValue.md(_rows_table(rows)),
                "write_seconds": dg.MetadataValue.float(round(seconds, 3)),
                "rows_per_second": dg.MetadataValue.float(round(total / seconds, 1) if seconds else 0.0),
                "path": dg.MetadataValue.path(str(self.asset_dir(asset))),
            }
        )

    def _schema(self, asset: str, date: str, entity: str):
        """The Arrow schema of a stored partition (None if the asset is not stored here)."""
        path = self.partition_dir(asset, date, entity)
        if not path.exists() and entity != WHOLE_DATE:
            path = self.partition_dir(asset, date, WHOLE_DATE)
        files = sorted(path.glob("*.parquet")) if path.exists() else []
        return pq.read_schema(files[0]) if files else None

    def _column_lineage(self, context, asset: str, pairs) -> tuple[list[tuple[str, str]], dict, list[str]]:
        """(output columns with their types, column -> [(upstream asset, column)], upstream assets) from the written
        partition, the upstream partitions' stored schemas and ``lineage/columns.yaml``."""
        from regcalc_assets.lineage.columns import column_lineage

        date, entity = pairs[0]
        schema = self._schema(asset, date, entity)
        fields = [(f.name, str(f.type)) for f in schema] if schema is not None else []
        upstream = {}
        try:
            deps = context.asset_spec.deps
        except dg.DagsterInvariantViolationError:  # an output context built outside a run (tests)
            deps = []
        for dep in deps:
            name = dep.asset_key.path[-1]
            stored = self._schema(name, date, entity)
            upstream[name] = stored.names if stored is not None else None
        return fields, column_lineage(asset, [n for n, _ in fields], upstream), sorted(upstream)

    def _collect_garbage(self, asset: str, min_age_seconds: float = 6 * 3600) -> None:
        """Remove what crashed writes left behind: staging directories and versions no partition
        points at, once they are old enough not to belong to a write still in progress."""
        versions = self.asset_dir(asset) / ".versions"
        live = {os.path.realpath(p) for p in self.asset_dir(asset).glob("business_date=*/entity_id=*")}
        live |= {os.path.realpath(p) for p in self.asset_dir(asset).glob("business_date=*") if p.is_symlink()}
        cutoff = time.time() - min_age_seconds
        for path in versions.iterdir():
            if str(path.resolve()) not in live and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)

    def _swap(self, asset: str, target: Path, new_version: Path) -> None:
        """Point ``target`` at ``new_version`` with one atomic rename, then drop the old version."""
        target.parent.mkdir(parents=True, exist_ok=True)
        versions = self.asset_dir(asset) / ".versions"
        final = versions / f"v-{uuid.uuid4().hex}"
        os.rename(new_version, final)
        old = os.path.realpath(target) if target.is_symlink() else None
        link = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        os.symlink(os.path.relpath(final, target.parent), link)
        os.replace(link, target)
        if old and os.path.isdir(old):
            shutil.rmtree(old, ignore_errors=True)

    def load_partition(self, asset: str, date: str, entity: str):
        """One stored partition as a DataFrame (for read-only tools such as ``regcalc explain``)."""
        return self.engine.read_parquet([str(self.partition_dir(asset, date, entity))])

    def load_input(self, context: dg.InputContext):
        asset = context.asset_key.path[-1]
        pairs = partition_pairs(context)
        missing = [p for p in pairs if not self.partition_dir(asset, *p).exists()]
        if missing:
            raise FileNotFoundError(
                f"{asset}: partitions not materialized yet: "
                + ", ".join(f"{d}|{e}" for d, e in missing[:10])
            )
        return self.engine.read_parquet([str(self.partition_dir(asset, d, e)) for d, e in pairs])


def _job_name(context) -> str:
    try:
        return context.job_name
    except dg.DagsterInvariantViolationError:  # an output context built outside a run (tests)
        return "adhoc"


def _key(date: str, entity: str) -> str:
    return date if entity == WHOLE_DATE else f"{date}|{entity}"


def _utc(seconds: float):
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def _count_rows(directory: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(directory.glob("*.parquet")))


def _rows_table(rows: dict[tuple[str, str], int]) -> str:
    lines = ["| business_date | entity_id | rows |", "|---|---|---:|"]
    lines += [f"| {d} | {e} | {n:,} |" for (d, e), n in sorted(rows.items())]
    return "\n".join(lines)
