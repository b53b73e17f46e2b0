"""Lineage: one edge per (output key, input key), from each ratio down to the delivered rows."""

import dagster as dg

from regcalc_assets.lineage import checks
from regcalc_assets.lineage.logic import audit_keys, completeness, derived_arrow, lineage_edges
from regcalc_core.lineage import LINEAGE_COLUMNS as KEPT
from regcalc_assets.partitions import DATE_ENTITY
from regcalc_resources.engine import ComputeEngine


@dg.asset(partitions_def=DATE_ENTITY, io_manager_key="stage_io", group_name="lineage", kinds={"parquet"},
          check_specs=checks.CHECK_SPECS)
def lineage(context: dg.AssetExecutionContext, engine: ComputeEngine, landed_positions, validated_positions,
            quarantined_positions, enriched_positions, adjusted_positions, liquidity_components, liquidity_metrics):
    """One row per edge from an output key to an input key, for BI drill-through (ratio ->
    components -> positions -> delivered file and row):

    - a position's contribution to a component (output ``liquidity_components``/component, input
      ``adjusted_positions``/``source_system/position_id``) with its factor-table row, source file
      and row;
    - an aggregation or final rule's net change to a component or total (input
      ``adjustment_rules``/``RULE@vN``);
    - a total's terms (component amounts, HQLA caps with a minus sign) and the operands of the
      caps and ratios (``role``: term, operand, numerator, denominator).

    ``base_contribution`` and ``contribution`` are the amounts in the base and adjusted
    calculations: a figure equals the sum of its ``term`` edges (checked to the cent)."""
    audits = [
        audit_keys("validation", landed_positions, validated_positions.select(*KEPT).unionByName(quarantined_positions.select(*KEPT))),
        audit_keys("enrichment", validated_positions, enriched_positions),
        audit_keys("deal_enrichment", enriched_positions, adjusted_positions),
    ]
    derived = engine.from_arrow(derived_arrow(liquidity_components, liquidity_metrics))
    edges = engine.checkpoint(lineage_edges(adjusted_positions, derived))
    complete = completeness(edges, liquidity_components, liquidity_metrics)
    yield dg.Output(edges, metadata={"figures_traced": complete.checked,
                                     "positions_audited": sum(a.rows_in for a in audits[1:2])})
    yield checks.keys_result(audits)
    yield checks.completeness_result(complete)
