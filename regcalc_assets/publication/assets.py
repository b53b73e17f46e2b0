"""Publication: final figures loaded into the warehouse, one partition replaced at a time."""


import datetime as dt
import time

import dagster as dg

from regcalc_assets.partitions import DATE_ENTITY, run_scope
from regcalc_resources.openlineage import LineageEventSink
from regcalc_resources.warehouse import Warehouse


def _to_arrow(df):
    """The frame as an Arrow table, without its nested adjustment_trail column (the trail has its
    own table)."""
    from regcalc_assets.adjustments.logic import TRAIL

    return df.drop(TRAIL).toArrow() if TRAIL in df.columns else df.toArrow()


def _changes_by_rule(trail) -> dict[str, int]:
    """Trail rows (changed values, clamps included) per ``rule_id@vN``."""
    counts = trail.group_by(["rule_id", "version"]).aggregate([("field", "count")]).to_pylist()
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


def _load(context, warehouse: Warehouse, events: LineageEventSink, tables: dict) -> tuple[dict, dict]:
    """Replace the run's partitions of each warehouse table (named as the asset it loads); (Arrow
    tables, metadata with the first table's schema and column lineage). One OpenLineage
    materialization is emitted for the load."""
    business_date, entities = run_scope(context)
    partitions = [(business_date, e) for e in entities]
    started, wall = time.perf_counter(), time.time()
    arrow = {table: _to_arrow(df) for table, df in tables.items()}
    loads = {table: warehouse.load(table, rows, partitions, context.run.run_id) for table, rows in arrow.items()}
    seconds = time.perf_counter() - started
    total = sum(r.rows for r in loads.values())
    main = next(iter(arrow))
    fields = [(f.name, str(f.type)) for f in arrow[main].schema]
    lineage = {name: [(table, name)] for table, rows in arrow.items() for name in rows.column_names}
    events.emit_materialization(
        job_name=context.run.job_name, run_id=context.run.run_id, asset=context.asset_key.path[-1], inputs=sorted(arrow),
        partitions=[f"{d}|{e}" for d, e in partitions], fields=fields, column_lineage=lineage, row_count=total,
        started_at=dt.datetime.fromtimestamp(wall, dt.timezone.utc), ended_at=dt.datetime.now(dt.timezone.utc))
    return arrow, {
        "dagster/column_schema": dg.TableSchema([dg.TableColumn(n, t) for n, t in fields]),
        "dagster/column_lineage": dg.TableColumnLineage(
            {n: [dg.TableColumnDep(dg.AssetKey(main), n)] for n in arrow[main].column_names}),
        **_recalc_metadata(context.run.tags, total),
        "rows_loaded": dg.MetadataValue.json({t: r.rows for t, r in loads.items()}),
        "load_methods": dg.MetadataValue.json({t: r.method for t, r in loads.items()}),
        "load_rows_per_second": dg.MetadataValue.json({t: r.rows_per_second for t, r in loads.items()}),
        "method": ", ".join(sorted({r.method for r in loads.values()})),
        "load_seconds": round(seconds, 3),
        "rows_per_second": round(total / seconds, 1) if seconds else 0.0,
    }


@dg.asset(partitions_def=DATE_ENTITY, group_name="publication", kinds={"duckdb"})
def warehouse_liquidity(context: dg.AssetExecutionContext, warehouse: Warehouse, openlineage: LineageEventSink,
                        liquidity_metrics, liquidity_components, adjustment_trail):
    """Warehouse tables ``liquidity_metrics`` (one row per business_date x entity_id x basis),
    ``liquidity_components`` (one row per business_date x entity_id x basis x component) and
    ``adjustment_trail`` (one row per value a rule changed) for BI. Each
    (date, entity) partition is deleted and re-inserted in one transaction, so a re-run leaves
    exactly one copy."""
    arrow, meta = _load(context, warehouse, openlineage, {"liquidity_metrics": liquidity_metrics,
                                             "liquidity_components": liquidity_components,
                                             "adjustment_trail": adjustment_trail})
    return dg.MaterializeResult(metadata={**meta, "changes_by_rule": dg.MetadataValue.json(_changes_by_rule(arrow["adjustment_trail"]))})


@dg.asset(partitions_def=DATE_ENTITY, group_name="publication", kinds={"duckdb"})
def warehouse_lineage(context: dg.AssetExecutionContext, warehouse: Warehouse, openlineage: LineageEventSink, lineage):
    """Warehouse table ``lineage``: one row per edge from an output key (a metric, a component) to
    an input key (a component, a position, a rule), as the lineage asset holds it, so BI drills
    from a ratio to its components to the positions and their delivered file and row. Each
    (date, entity) partition is replaced in one transaction."""
    _, meta = _load(context, warehouse, openlineage, {"lineage": lineage})
    return dg.MaterializeResult(metadata=meta)
