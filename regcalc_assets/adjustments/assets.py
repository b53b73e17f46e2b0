"""Deal-level adjustments: approved deal_enrichment rules applied to enriched positions."""

import dagster as dg

from regcalc_assets.adjustments.logic import apply_rules, with_base_values
from regcalc_assets.adjustments.rules import rules_for_run
from regcalc_assets.partitions import DATE_ENTITY
from regcalc_resources.rule_store import RuleStore


@dg.asset(partitions_def=DATE_ENTITY, io_manager_key="stage_io", group_name="adjustments", kinds={"parquet"})
def adjusted_positions(context: dg.AssetExecutionContext, rules: RuleStore, enriched_positions):
    """One row per enriched position after the approved deal_enrichment rules effective on its
    business date (adjustment-rules.md): amount, haircut, rates and factors as adjusted and
    clamped, with the unadjusted values kept as ``base_<field>``."""
    stage_rules, meta = rules_for_run(context, rules, "deal_enrichment")
    context.add_output_metadata(meta)
    return apply_rules(with_base_values(enriched_positions, "deal_enrichment"), stage_rules, "deal_enrichment")
