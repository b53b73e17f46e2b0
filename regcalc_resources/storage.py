"""Stage storage: Parquet per asset and (business date, entity) partition, replaced atomically.

The IO manager writes a run's partitions with the engine into a local staging directory, then
publishes each partition to the stage store (``stage_store.py``: the local disk or S3), which
swaps it in with one atomic operation: a reader sees the old partition or the new one, never a
half-written one, and a crash leaves the previous version visible and whole. Each
materialization records its table schema and column lineage, and is sent as OpenLineage events.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from regcalc_resources.engine import ComputeEngine
from regcalc_resources.openlineage import LineageEventSink
from regcalc_resources.stage_store import WHOLE_DATE, StageStore

PART_DATE, PART_ENTITY = "_part_date", "_part_entity"


def partition_pairs(context) -> list[tuple[str, str]]:
    """(business_date, entity_id) pairs of the partitions an IO context covers."""
    pairs = []
    for key in context.asset_partition_keys:
        dims = key.keys_by_dimension if hasattr(key, "keys_by_dimension") else _split(key)
        pairs.append((dims["date"], dims["entity"]))
    return sorted(pairs)


def _split(key: str) -> dict[str, str]:
    date, _, entity = key.partition("|")
    return {"date": date, "entity": entity or WHOLE_DATE}


class PartitionedParquetIOManager(dg.ConfigurableIOManager):
    """Reads and writes stage outputs (PySpark-API DataFrames) as Parquet partitions (zstd; one
    directory, hence sorted, per business date and entity; files up to the engine's target size)
    in a stage store: the local disk or S3."""

    store: StageStore
    engine: ComputeEngine
    lineage_events: LineageEventSink

    def handle_output(self, context: dg.OutputContext, df) -> None:
        if df is None:
            return
        asset = context.asset_key.path[-1]
        pairs = partition_pairs(context)
        started = time.perf_counter()
        self.store.collect_garbage(asset)
        staging = self.store.staging_root(asset)
        whole_date = all(entity == WHOLE_DATE for _, entity in pairs)
        index = None if whole_date else {e: n for n, e in enumerate(sorted({e for _, e in pairs}))}
        try:
            self.engine.write_partitioned(df, str(staging), PART_DATE, PART_ENTITY, index)
            expected = {(date, 0 if index is None else index[entity]): (date, entity) for date, entity in pairs}
            _refuse_unexpected(asset, staging, expected, index)
            rows: dict[tuple[str, str], int] = {}
            schema = None
            for (date, number), (_, entity) in sorted(expected.items()):
                written = staging / f"{PART_DATE}={date}" / f"{PART_ENTITY}={number}"
                if not written.exists():
                    self.engine.write_empty(df, str(written))
                rows[(date, entity)] = _count_rows(written)
                schema = schema or pq.read_schema(sorted(written.glob("*.parquet"))[0])
                self.store.publish(asset, date, entity, written)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        seconds = time.perf_counter() - started
        total = sum(rows.values())
        fields = [(f.name, str(f.type)) for f in schema]
        lineage, inputs = self._column_lineage(context, asset, pairs[0], [n for n, _ in fields])
        self.lineage_events.emit_materialization(
            job_name=_job_name(context), run_id=context.run_id, asset=asset, inputs=inputs,
            partitions=[_key(d, e) for d, e in pairs], fields=fields, column_lineage=lineage, row_count=total,
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
                "path": dg.MetadataValue.path(self.store.location(asset)),
            }
        )

    def _column_lineage(self, context, asset: str, pair: tuple[str, str], columns: list[str]) -> tuple[dict, list[str]]:
        """(column -> [(upstream asset, column)], upstream assets) from the upstream partitions'
        stored schemas and ``lineage/columns.yaml``."""
        from regcalc_core.lineage import column_lineage

        try:
            deps = context.asset_spec.deps
        except dg.DagsterInvariantViolationError:  # an output context built outside a run (tests)
            deps = []
        upstream = {}
        for dep in deps:
            name = dep.asset_key.path[-1]
            stored = self._stored_schema(name, *pair)
            upstream[name] = stored.names if stored is not None else None
        return column_lineage(asset, columns, upstream), sorted(upstream)

    def _stored_schema(self, asset: str, date: str, entity: str):
        """The Arrow schema of a stored partition (or of the date-level one), None if not stored here."""
        path = self.store.read_dir(asset, date, entity)
        if path is None and entity != WHOLE_DATE:
            path = self.store.read_dir(asset, date, WHOLE_DATE)
        files = sorted(path.glob("*.parquet")) if path is not None else []
        return pq.read_schema(files[0]) if files else None

    def load_partition(self, asset: str, date: str, entity: str):
        """One stored partition as a DataFrame (for read-only tools such as ``regcalc explain``), or None."""
        path = self.store.read_dir(asset, date, entity)
        return None if path is None else self.engine.read_parquet([str(path)])

    def _partition_dirs(self, asset: str, pairs: list[tuple[str, str]]) -> list[Path]:
        """Local directories of stored partitions (S3 versions are fetched to the cache); a
        partition never written is an error naming it."""
        dirs = {pair: self.store.read_dir(asset, *pair) for pair in pairs}
        missing = [f"{d}|{e}" for (d, e), path in dirs.items() if path is None]
        if missing:
            raise FileNotFoundError(f"{asset}: partitions not materialized yet: " + ", ".join(missing[:10]))
        return list(dirs.values())

    def stored_rows(self, asset: str, date: str, entities: list[str]) -> dict[str, int | None]:
        """{entity: rows stored for the (date, entity) partition of ``asset``, None if there is none}."""
        out = {}
        for entity in entities:
            path = self.store.read_dir(asset, date, entity)
            out[entity] = None if path is None else _count_rows(path)
        return out

    def partition_files(self, asset: str, pairs: list[tuple[str, str]]) -> list[str]:
        """The Parquet files of stored partitions, for loaders that read Parquet themselves."""
        return [str(f) for path in self._partition_dirs(asset, pairs) for f in sorted(path.glob("*.parquet"))]

    def load_input(self, context: dg.InputContext):
        asset = context.asset_key.path[-1]
        return self.engine.read_parquet([str(p) for p in self._partition_dirs(asset, partition_pairs(context))])

class PartitionMismatchError(RuntimeError):
    """A stage wrote rows outside the partitions its run covers: they would be lost, so nothing is published."""


def _refuse_unexpected(asset: str, staging: Path, expected: dict, index: dict | None) -> None:
    """Fail, naming them, if the engine wrote partition directories the run does not cover
    (rows of another date or entity, or a null key): publishing the rest would lose them."""
    names = {v: k for k, v in (index or {}).items()}
    found = {(d.parent.name.split("=", 1)[1], d.name.split("=", 1)[1])
             for d in staging.glob(f"{PART_DATE}=*/{PART_ENTITY}=*") if d.is_dir()}
    stray = sorted(f for f in found if (f[0], _int(f[1])) not in expected)
    if stray:
        shown = ", ".join(f"{d}|{names.get(_int(n), 'entity outside the run' if n == '-1' else n)}" for d, n in stray[:10])
        raise PartitionMismatchError(f"{asset}: rows outside the run's partitions ({shown}); nothing was published")


def _int(text: str):
    try:
        return int(text)
    except ValueError:
        return text


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
