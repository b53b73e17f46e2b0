"""Deal-level adjustments: approved deal_enrichment rules applied to enriched positions."""

import dagster as dg

from regcalc_assets import sequence
from regcalc_assets.adjustments import logic
from regcalc_assets.sources.versions import rules_for_run
from regcalc_assets.partitions import DATE_ENTITY
from regcalc_assets.sources.logic import version_column
from regcalc_assets.sources.versions import record_rule_versions
from regcalc_core.dataframes import functions_for
from regcalc_resources.landing import LandingZone
from regcalc_resources.rule_store import RuleStore


@dg.asset(partitions_def=DATE_ENTITY, io_manager_key="stage_io", group_name="adjustments", kinds={"parquet"},
          deps=["deal_rules"])
def adjusted_positions(context: dg.AssetExecutionContext, rules: RuleStore, landing: LandingZone, enriched_positions):
    """One row per enriched position after the approved deal_enrichment rules effective on its
    business date (adjustment-rules.md): amount, haircut, rates and factors as adjusted and
    clamped, with the unadjusted values kept as ``base_<field>`` and the changes made to the
    position, in order, in ``adjustment_trail``. ``deal_rules_version`` is the version of the
    rule set applied (the deal_rules source)."""
    stage_rules, meta = rules_for_run(context, rules, "deal_enrichment")
    context.add_output_metadata(meta)
    F, _ = functions_for(enriched_positions)
    versions = record_rule_versions(context, stage_rules, "deal_enrichment", landing.root)
    return sequence.deal_enrichment(enriched_positions, stage_rules, {"deal_rules_version": version_column(F, versions)})


@dg.asset(partitions_def=DATE_ENTITY, io_manager_key="stage_io", group_name="adjustments", kinds={"parquet"})
def adjustment_trail(adjusted_positions, liquidity_components, liquidity_metrics):
    """One row per value that an approved adjustment rule changed, at any stage
    (adjustment-rules.md, 'Semantics'): business_date, entity_id, stage, step (order of
    application within the stage's row), rule_id, version, row_key (source_system/position_id,
    component, or entity), field, value_before, value_after, and clamped (true for the clamp to
    [0, 1] or >= 0 after the stage's last rule, attributed to the last rule that applied to the
    field). A rule that leaves a value as it was leaves no row."""
    return logic.adjustment_trail(adjusted_positions, liquidity_components, liquidity_metrics)
