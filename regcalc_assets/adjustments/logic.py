"""Adjustments as stages: the deal-level rules applied to enriched positions, and the trail of
every value the rules of the three stages changed (adjustment-rules.md). The rules themselves
are compiled by ``regcalc_core.compiler``."""

from __future__ import annotations

from regcalc_core.compiler import TRAIL, apply_rules, with_base_values
from regcalc_core.dataframes import functions_for
from regcalc_core.lineage import traced
from regcalc_core.rules import Rule


@traced("deal_enrichment")
def adjust_positions(enriched, rules: list[Rule], extra: dict | None = None, match_columns: dict | None = None):
    """Enriched positions after the deal_enrichment rules, with the ``base_`` values kept."""
    return apply_rules(with_base_values(enriched, "deal_enrichment", extra), rules, "deal_enrichment", match_columns)


TRAIL_COLUMNS = [
    "business_date", "entity_id", "stage", "step", "rule_id", "version", "row_key", "source_system", "position_id",
    "component", "field", "value_before", "value_after", "clamped",
]


def _flat_stage_trail(df, stage: str, row_key, keys: dict):
    """One row per entry of ``df``'s adjustment_trail column, keyed by the row it changed."""
    F, _ = functions_for(df)
    entry = "_entry"
    exploded = df.where(F.size(F.col(TRAIL)) > F.lit(0)).select(
        "business_date", "entity_id", row_key.alias("row_key"),
        *[(col if col is not None else F.lit(None).cast("string")).alias(name) for name, col in keys.items()],
        F.explode(F.col(TRAIL)).alias(entry),
    )
    return exploded.select(
        "business_date", "entity_id", F.lit(stage).alias("stage"), F.col(f"{entry}.step").alias("step"),
        F.col(f"{entry}.rule_id").alias("rule_id"), F.col(f"{entry}.version").alias("version"), "row_key",
        *keys, F.col(f"{entry}.field").alias("field"), F.col(f"{entry}.before").alias("value_before"),
        F.col(f"{entry}.after").alias("value_after"), F.col(f"{entry}.clamped").alias("clamped"),
    )


def adjustment_trail(adjusted_positions, components, metrics):
    """The trails of the three stages as one table, one row per changed value (TRAIL_COLUMNS).
    The row key is ``source_system/position_id`` for a position, the component's name for an
    aggregation row, and the entity for the final totals."""
    F, _ = functions_for(adjusted_positions)
    none = None  # a key that the stage's rows do not have
    deal = _flat_stage_trail(
        adjusted_positions, "deal_enrichment", F.concat_ws("/", F.col("source_system"), F.col("position_id")),
        {"source_system": F.col("source_system"), "position_id": F.col("position_id"), "component": none})
    aggregation = _flat_stage_trail(components, "aggregation", F.col("component"),
                                    {"source_system": none, "position_id": none, "component": F.col("component")})
    final = _flat_stage_trail(metrics, "final_calc", F.col("entity_id"),
                              {"source_system": none, "position_id": none, "component": none})
    return deal.unionByName(aggregation).unionByName(final).select(*TRAIL_COLUMNS)

