"""Aggregation: enriched positions summed into LCR / NSFR components."""


import dagster as dg

from regcalc_assets.aggregation import logic
from regcalc_assets.partitions import DATE_ENTITY

STAGE = dict(partitions_def=DATE_ENTITY, io_manager_key="stage_io", group_name="aggregation", kinds={"parquet"})


@dg.asset(**STAGE)
def component_breakdown(enriched_positions):
    """One row per (business_date, entity_id, component, factor_rule, product): the sum of the
    contributions (amount x factor; HQLA amount x (1 - haircut)) and how many positions made it.
    The finer categories behind each component (liquidity-rules.md)."""
    return logic.component_breakdown(enriched_positions)


@dg.asset(**STAGE)
def liquidity_components(component_breakdown, entity_profiles):
    """One row per (business_date, entity_id, component) for the eight components HQLA_L1,
    HQLA_L2A, HQLA_L2B_RMBS, HQLA_L2B_OTHER (post-haircut), OUTFLOWS, INFLOWS, ASF, RSF; every
    valid entity has all eight, 0 where nothing contributes (adjustment-rules.md, aggregation
    stage). Aggregation-stage adjustment rules attach after this stage."""
    return logic.aggregate_components(component_breakdown, entity_profiles)
