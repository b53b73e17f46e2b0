"""Deal enrichment: amount in reporting currency, classification and regulatory factors."""


import dagster as dg

from regcalc_assets.enrichment.logic import enrich_positions
from regcalc_core.factors import load_factor_tables
from regcalc_assets.partitions import DATE_ENTITY


@dg.asset(partitions_def=DATE_ENTITY, io_manager_key="stage_io", group_name="enrichment", kinds={"parquet"})
def enriched_positions(context: dg.AssetExecutionContext, validated_positions):
    """One row per accepted position with amount (reporting currency), hqla_level, haircut,
    outflow_rate, inflow_rate, asf_factor and rsf_factor, each with the id of the factor-table row
    that gave it (``*_rule``). Implements liquidity-rules.md (every table) from the versioned
    factor tables in ``enrichment/factors/``. Deal-level adjustment rules attach after this stage."""
    tables = load_factor_tables()
    context.add_output_metadata({"factor_regime": tables.label})
    return enrich_positions(validated_positions, tables)
