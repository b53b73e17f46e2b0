"""Stage storage: Parquet per asset and (business date, entity) partition, replaced atomically.

The IO manager writes a run's partitions with the engine into a staging area of the stage store
(``stage_store.py``: the local disk or S3), then publishes each partition, which the store swaps in
with one atomic operation: a reader sees the old partition or the new one, never a half-written
one, and a crash leaves the previous version visible and whole. For an engine in this process the
staging area is a local directory; for a remote one (Spark Connect) it is under the store's root,
as the cluster names it, and the engine reads the stored partitions there too.
"""

from __future__ import annotations

import time

import dagster as dg

from regcalc_resources.engine import ComputeEngine
from regcalc_resources.stage_store import WHOLE_DATE, WHOLE_TABLE, StageStore, pair_of_key

PART_DATE, PART_ENTITY = "_part_date", "_part_entity"


def partition_pairs(context) -> list[tuple[str, str]]:
    """(business_date, entity_id) pairs of the partitions an IO context covers."""
    return sorted((key.keys_by_dimension["date"], key.keys_by_dimension["entity"])
                  if hasattr(key, "keys_by_dimension") else pair_of_key(key) for key in context.asset_partition_keys)


def read_stage(engine: ComputeEngine, store: StageStore, asset: str, pairs: list[tuple[str, str]]):
    """The stored partitions ``pairs`` of ``asset`` as one DataFrame (a missing one is an error
    naming it); a remote engine reads them where the store keeps them, as the cluster names it."""
    if engine.remote:
        return engine.read_parquet(store.engine_paths(asset, pairs))
    return engine.read_parquet([str(p) for p in store.partition_dirs(asset, pairs)])


def read_table(engine: ComputeEngine, store: StageStore, asset: str):
    """The stored whole table of an unpartitioned asset (an error naming it if never written)."""
    return read_stage(engine, store, asset, [(WHOLE_TABLE, WHOLE_DATE)])


class PartitionedParquetIOManager(dg.ConfigurableIOManager):
    """Reads and writes stage outputs (PySpark-API DataFrames) as Parquet partitions (zstd; one
    directory, hence sorted, per business date and entity; files up to the engine's target size)
    in a stage store: the local disk or S3. It only stores: what a stage's columns derive from
    and the OpenLineage events are described by a success hook of the jobs (``regcalc_assets.hooks``)."""

    store: StageStore
    engine: ComputeEngine

    def handle_output(self, context: dg.OutputContext, df) -> None:
        if df is None:
            return
        asset = context.asset_key.path[-1]
        if not context.has_asset_partitions:
            return self._store_table(context, asset, df)
        pairs = partition_pairs(context)
        started = time.perf_counter()
        self.store.collect_garbage(asset)
        staging = self.store.staging(asset, remote=self.engine.remote)
        whole_date = all(entity == WHOLE_DATE for _, entity in pairs)
        index = None if whole_date else {e: n for n, e in enumerate(sorted({e for _, e in pairs}))}
        try:
            self.engine.write_partitioned(df, staging.uri, PART_DATE, PART_ENTITY, index)
            expected = {(date, 0 if index is None else index[entity]): (date, entity) for date, entity in pairs}
            found = staging.written(PART_DATE, PART_ENTITY)
            _refuse_unexpected(asset, found, expected, index)
            written = {pair: f"{PART_DATE}={date}/{PART_ENTITY}={number}" for (date, number), pair in expected.items()}
            _fill_empty(self.engine, df, staging, [written[pair] for (date, number), pair in expected.items()
                                                   if (date, str(number)) not in found])
            rows = {pair: staging.rows(sub) for pair, sub in written.items()}
            for (date, entity), sub in sorted(written.items()):
                staging.publish(date, entity, sub)
        finally:
            staging.discard()
        seconds = time.perf_counter() - started
        total = sum(rows.values())
        context.add_output_metadata(
            {
                # the run's figures, the same on each partition's materialization (an IO manager's
                # metadata is per output); a partition's own rows are in its files' footers
                "row_count": dg.MetadataValue.int(total),
                "partitions_written": dg.MetadataValue.int(len(pairs)),
                "write_seconds": dg.MetadataValue.float(round(seconds, 3)),
                "rows_per_second": dg.MetadataValue.float(round(total / seconds, 1) if seconds else 0.0),
                "path": dg.MetadataValue.path(self.store.location(asset)),
            }
        )

    def _store_table(self, context: dg.OutputContext, asset: str, df) -> None:
        """An unpartitioned asset: the whole table, one sorted file, swapped in atomically."""
        started = time.perf_counter()
        self.store.collect_garbage(asset)
        staging = self.store.staging(asset, remote=self.engine.remote)
        try:
            self.engine.write_table(df, staging.uri_of("table"))
            rows = staging.rows("table")
            staging.publish(WHOLE_TABLE, WHOLE_DATE, "table")
        finally:
            staging.discard()
        context.add_output_metadata({"row_count": dg.MetadataValue.int(rows),
                                     "write_seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
                                     "path": dg.MetadataValue.path(self.store.location(asset))})

    def load_input(self, context: dg.InputContext):
        asset = context.asset_key.path[-1]
        if not context.has_asset_partitions:
            return read_table(self.engine, self.store, asset)
        return read_stage(self.engine, self.store, asset, partition_pairs(context))


def _fill_empty(engine, df, staging, missing: list[str]) -> None:
    """A zero-row file with the stage's schema in each partition that got no rows: written once
    by the engine (planning the stage again costs seconds on a deep one), then copied."""
    if not missing:
        return
    engine.write_empty(df, staging.uri_of("_empty"))
    staging.fill_empty("_empty", missing)


class PartitionMismatchError(RuntimeError):
    """A stage wrote rows outside the partitions its run covers: they would be lost, so nothing is published."""


def _refuse_unexpected(asset: str, found: set[tuple[str, str]], expected: dict, index: dict | None) -> None:
    """Fail, naming them, if the engine wrote partition directories (``found``) the run does not
    cover (rows of another date or entity, or a null key): publishing the rest would lose them."""
    names = {v: k for k, v in (index or {}).items()}
    stray = sorted(f for f in found if (f[0], _int(f[1])) not in expected)
    if stray:
        shown = ", ".join(f"{d}|{names.get(_int(n), 'entity outside the run' if n == '-1' else n)}" for d, n in stray[:10])
        raise PartitionMismatchError(f"{asset}: rows outside the run's partitions ({shown}); nothing was published")


def _int(text: str):
    try:
        return int(text)
    except ValueError:
        return text
