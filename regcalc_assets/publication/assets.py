"""Publication: final figures loaded into the warehouse, one partition replaced at a time."""


import datetime as dt
import time

import dagster as dg

from regcalc_assets.circuit_breaker import refuse_held
from regcalc_assets.partitions import DATE_ENTITY, run_scope
from regcalc_assets.star import logic as star
from regcalc_resources.openlineage import LineageEventSink
from regcalc_resources.stage_store import WHOLE_DATE, WHOLE_TABLE
from regcalc_resources.warehouse import LOAD_COLUMN_NAMES, Warehouse, table_spec


def _changes_by_rule(files: list[str]) -> dict[str, int]:
    """Trail rows (changed values, clamps included) per ``rule_id@vN``, from the staged trail."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [pq.read_table(f, columns=["rule_id", "version", "field"]) for f in files]
    if not parts:
        return {}
    counts = pa.concat_tables(parts).group_by(["rule_id", "version"]).aggregate([("field", "count")]).to_pylist()
    return {f"{r['rule_id']}@v{r['version']}": r["field_count"] for r in sorted(counts, key=lambda r: (str(r["rule_id"]), r["version"] or 0))}


def _recalc_metadata(tags: dict, rows: int) -> dict:
    """For a recalculation run: partitions recomputed versus reused over the whole recalculation
    (its cache hit rate), and the rows this load replaced."""
    from regcalc_assets.sources.recalc import RECOMPUTED_TAG, REUSED_TAG

    if RECOMPUTED_TAG not in tags:
        return {}
    recomputed, reused = int(tags[RECOMPUTED_TAG]), int(tags[REUSED_TAG])
    return {
        "recalc_partitions_recomputed": recomputed,
        "recalc_partitions_reused": reused,
        "recalc_cache_hit_rate": dg.MetadataValue.float(round(reused / (recomputed + reused), 4) if recomputed + reused else 1.0),
        "recalc_rows_affected": rows,
    }


def _load(context, tables: list[str]) -> tuple[dict, dict]:
    """Replace the run's partitions of each warehouse table from the stage asset of the same
    name, read from its staged Parquet files (an unpartitioned table is replaced whole); (files
    per table, metadata: load method, rows and speed per table, the first table's schema and
    column lineage). One OpenLineage materialization is emitted for the load. A partition the
    circuit breaker holds back is refused (``HeldByCircuitBreakerError``), whatever the run selected."""
    import pyarrow.parquet as pq

    warehouse: Warehouse = context.resources.warehouse
    events: LineageEventSink = context.resources.openlineage
    business_date, entities = run_scope(context)
    partitions = [(business_date, e) for e in entities]
    refuse_held(context.instance, partitions)  # even in a run that left liquidity_metrics and its checks out
    started, wall = time.perf_counter(), time.time()
    whole = {t for t in tables if not table_spec(t).partitioned}
    files = {table: context.resources.stages.parquet_files(table, [(WHOLE_TABLE, WHOLE_DATE)] if table in whole else partitions)
             for table in tables}
    loads = {table: warehouse.load_files(table, files[table], None if table in whole else partitions, context.run.run_id)
             for table in tables}
    seconds = time.perf_counter() - started
    total = sum(r.rows for r in loads.values())
    main = tables[0]
    names = [c for c in table_spec(main).names if c not in LOAD_COLUMN_NAMES]
    stored = pq.read_schema(files[main][0]) if files[main] else None
    fields = [(n, str(stored.field(n).type) if stored is not None else "unknown") for n in names]
    lineage = {n: [(t, n)] for t in tables for n in table_spec(t).names if n not in LOAD_COLUMN_NAMES}
    events.emit_materialization(
        job_name=context.run.job_name, run_id=context.run.run_id, asset=context.asset_key.path[-1], inputs=sorted(tables),
        partitions=[f"{d}|{e}" for d, e in partitions], fields=fields, column_lineage=lineage, row_count=total,
        started_at=dt.datetime.fromtimestamp(wall, dt.timezone.utc), ended_at=dt.datetime.now(dt.timezone.utc))
    return files, {
        "dagster/column_schema": dg.TableSchema([dg.TableColumn(n, t) for n, t in fields]),
        "dagster/column_lineage": dg.TableColumnLineage({n: [dg.TableColumnDep(dg.AssetKey(main), n)] for n in names}),
        **_recalc_metadata(context.run.tags, total),
        "rows_loaded": dg.MetadataValue.json({t: r.rows for t, r in loads.items()}),
        "load_methods": dg.MetadataValue.json({t: r.method for t, r in loads.items()}),
        "load_rows_per_second": dg.MetadataValue.json({t: r.rows_per_second for t, r in loads.items()}),
        "method": ", ".join(sorted({r.method for r in loads.values()})),
        "load_seconds": round(seconds, 3),
        "rows_per_second": round(total / seconds, 1) if seconds else 0.0,
    }


# the loaders read the stored Parquet of the stage assets, so they take the stage store as a
# resource (with the warehouse and the OpenLineage sink), not the frames as inputs
PUBLISH = dict(partitions_def=DATE_ENTITY, group_name="publication", kinds={"duckdb"},
               required_resource_keys={"stages", "warehouse", "openlineage"})


@dg.asset(**PUBLISH, deps=["liquidity_metrics", "liquidity_components", "adjustment_trail", "warehouse_lineage"])
def warehouse_liquidity(context: dg.AssetExecutionContext):
    """Warehouse tables ``liquidity_metrics`` (one row per business_date x entity_id x basis),
    ``liquidity_components`` (one row per business_date x entity_id x basis x component) and
    ``adjustment_trail`` (one row per value a rule changed) for BI. Each
    (date, entity) partition is deleted and re-inserted in one transaction, so a re-run leaves
    exactly one copy. The figures are published last: only once the metrics contract (blocking),
    the lineage and its blocking checks and the lineage load have succeeded, so nothing of a
    failed date reaches the warehouse (with REGCALC_LINEAGE=off, after the metrics contract)."""
    files, meta = _load(context, ["liquidity_metrics", "liquidity_components", "adjustment_trail"])
    return dg.MaterializeResult(metadata={**meta, "changes_by_rule": dg.MetadataValue.json(_changes_by_rule(files["adjustment_trail"]))})


@dg.asset(**PUBLISH, deps=["lineage"])
def warehouse_lineage(context: dg.AssetExecutionContext):
    """Warehouse table ``lineage``: one row per edge from an output key (a metric, a component) to
    an input key (a component, a position, a rule), as the lineage asset holds it, so BI drills
    from a ratio to its components to the positions and their delivered file and row. Each
    (date, entity) partition is replaced in one transaction."""
    _, meta = _load(context, ["lineage"])
    return dg.MaterializeResult(metadata=meta)


STAR_PARTITIONED = [*star.FACTS]
STAR_WHOLE = [*star.DIMENSIONS, "dim_date", *star.AGGREGATES]


def register_star_tables(stages, business_date: str, entity: str) -> dict:
    """Make the star tables known to the warehouse backends: their columns from the stored
    Parquet, their physical design (DISTSTYLE, DISTKEY, SORTKEY) from the operator, a fact's keys
    ranked by their distinct values in one stored partition (the warehouse creates a table once:
    the first load decides). Returns the designs."""
    from regcalc_resources.warehouse import TableSpec, register_table

    schemas = {t: stages.stored_schema(t, business_date, entity) for t in STAR_PARTITIONED}
    schemas |= {t: stages.stored_schema(t, WHOLE_TABLE, WHOLE_DATE) for t in STAR_WHOLE}
    missing = sorted(t for t, schema in schemas.items() if schema is None)
    if missing:
        raise FileNotFoundError(f"star tables not stored yet: {', '.join(missing)}")
    files = {t: stages.parquet_files(t, [(business_date, entity)]) for t in STAR_PARTITIONED}
    designs = star.physical_designs(star.liquidity_spec(), {t: s.names for t, s in schemas.items()}, files)
    for table, schema in schemas.items():
        design = designs[table]
        register_table(table, TableSpec.from_arrow(
            schema, partitioned=table in STAR_PARTITIONED, diststyle=design.diststyle, distkey=design.distkey,
            sortkey=design.sortkey, not_null=("business_date", "entity_id") if table in STAR_PARTITIONED else ()))
    return designs


@dg.asset(**PUBLISH, deps=[*STAR_PARTITIONED, *STAR_WHOLE])
def warehouse_star(context: dg.AssetExecutionContext):
    """The liquidity star schema in the warehouse: facts and the bridge (one row per position,
    component, metric, trail row, position x rule) replaced per (date, entity) partition; the
    dimensions (one row per member or SCD2 version, plus the unknown member) and the aggregates
    replaced whole. Each table in one transaction; on Redshift with the operator's DISTSTYLE,
    DISTKEY and SORTKEY."""
    business_date, entities = run_scope(context)
    designs = register_star_tables(context.resources.stages, business_date, entities[0])
    _, meta = _load(context, STAR_PARTITIONED + STAR_WHOLE)
    meta["physical_design"] = dg.MetadataValue.json(
        {t: {"diststyle": d.diststyle, "distkey": d.distkey, "sortkey": list(d.sortkey)} for t, d in designs.items()})
    return dg.MaterializeResult(metadata=meta)
