"""Aggregation: enriched positions summed into LCR / NSFR components."""


import dagster as dg

from regcalc_assets import sequence
from regcalc_assets.sources.versions import rules_for_run
from regcalc_assets.partitions import DATE_ENTITY
from regcalc_assets.sources.logic import version_column
from regcalc_assets.sources.versions import record_rule_versions
from regcalc_core.dataframes import functions_for
from regcalc_resources.landing import LandingZone
from regcalc_resources.rule_store import RuleStore

STAGE = dict(partitions_def=DATE_ENTITY, io_manager_key="stage_io", group_name="aggregation", kinds={"parquet"})


@dg.asset(**STAGE)
def component_breakdown(adjusted_positions):
    """One row per (business_date, entity_id, basis, component, factor_rule, product): the sum of
    the contributions (amount x factor; HQLA amount x (1 - haircut)) and how many positions made
    it, for the base (unadjusted) and the adjusted (after deal rules) calculation fields. The
    finer categories behind each component (liquidity-rules.md)."""
    return sequence.breakdown(adjusted_positions)


@dg.asset(**STAGE, deps=["aggregation_rules"])
def liquidity_components(context: dg.AssetExecutionContext, rules: RuleStore, landing: LandingZone, component_breakdown,
                         entity_profiles):
    """One row per (business_date, entity_id, basis, component) for the eight components HQLA_L1,
    HQLA_L2A, HQLA_L2B_RMBS, HQLA_L2B_OTHER (post-haircut), OUTFLOWS, INFLOWS, ASF, RSF; every
    valid entity has all eight, 0 where nothing contributes. The ``adjusted`` basis has the
    approved aggregation-stage rules applied (adjustment-rules.md); ``base`` has none.
    ``aggregation_rules_version`` is the version of the rule set applied."""
    stage_rules, meta = rules_for_run(context, rules, "aggregation")
    context.add_output_metadata(meta)
    F, _ = functions_for(component_breakdown)
    versions = record_rule_versions(context, stage_rules, "aggregation", landing.root)
    return sequence.aggregation(component_breakdown, entity_profiles, stage_rules).withColumn(
        "aggregation_rules_version", version_column(F, versions))
