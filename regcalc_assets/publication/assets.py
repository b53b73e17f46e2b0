"""Publication: final figures loaded into the warehouse, one partition replaced at a time."""


import time

import dagster as dg

from regcalc_assets.partitions import DATE_ENTITY, run_scope
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


@dg.asset(partitions_def=DATE_ENTITY, group_name="publication", kinds={"duckdb"})
def warehouse_liquidity(context: dg.AssetExecutionContext, warehouse: Warehouse, liquidity_metrics, liquidity_components,
                        adjustment_trail):
    """Warehouse tables ``liquidity_metrics`` (one row per business_date x entity_id x basis),
    ``liquidity_components`` (one row per business_date x entity_id x basis x component) and
    ``adjustment_trail`` (one row per value a rule changed) for BI. Each
    (date, entity) partition is deleted and re-inserted in one transaction, so a re-run leaves
    exactly one copy."""
    business_date, entities = run_scope(context)
    partitions = [(business_date, e) for e in entities]
    started = time.perf_counter()
    loaded = {}
    tables = {"liquidity_metrics": liquidity_metrics, "liquidity_components": liquidity_components,
              "adjustment_trail": adjustment_trail}
    arrow = {table: _to_arrow(df) for table, df in tables.items()}
    for table, rows in arrow.items():
        loaded[table] = warehouse.replace_partitions(table, rows, partitions, context.run.run_id)
    seconds = time.perf_counter() - started
    return dg.MaterializeResult(
        metadata={
            **_recalc_metadata(context.run.tags, sum(loaded.values())),
            "rows_loaded": dg.MetadataValue.json(loaded),
            "changes_by_rule": dg.MetadataValue.json(_changes_by_rule(arrow["adjustment_trail"])),
            "load_seconds": round(seconds, 3),
            "method": "duckdb delete+insert (one transaction per table)",
        }
    )
