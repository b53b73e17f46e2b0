"""Final metrics: HQLA caps, inflow cap, LCR and NSFR per entity and date."""


import dagster as dg

from regcalc_assets.metrics import logic
from regcalc_assets.metrics.checks import METRICS_CONTRACT, contract_failures
from regcalc_assets.partitions import DATE_ENTITY


@dg.asset(
    partitions_def=DATE_ENTITY,
    io_manager_key="stage_io",
    group_name="metrics",
    kinds={"parquet"},
    check_specs=[dg.AssetCheckSpec(METRICS_CONTRACT, asset="liquidity_metrics",
                                   description="pandera: non-negative figures, inflow cap, Level 2 within 40% of HQLA")],
)
def liquidity_metrics(context: dg.AssetExecutionContext, liquidity_components, validated_positions, quarantined_positions):
    """One row per (business_date, entity_id): hqla_l1, hqla_l2a, hqla_l2b (post-haircut), the
    caps adj15 and adj40, hqla, total_outflows, total_inflows, capped_inflows (75% cap),
    net_outflows, lcr, asf, rsf, nsfr and the accepted / quarantined position counts, in the
    entity's reporting currency. Implements liquidity-rules.md ('LCR', 'NSFR'); final-stage
    adjustment rules attach before the caps and ratios."""
    metrics = logic.with_position_counts(
        logic.compute_final_metrics(liquidity_components), validated_positions, quarantined_positions
    )
    rows = [r.asDict() for r in metrics.collect()]
    meta: dict = {
        "figures": dg.MetadataValue.md(logic.figures_table(rows)),
        "entities": len(rows),
    }
    if len(rows) == 1:
        meta.update({k: dg.MetadataValue.float(float(rows[0][k])) for k in ("lcr", "nsfr") if rows[0][k] is not None})
    failures = contract_failures(rows)
    yield dg.Output(metrics, metadata=meta)
    yield dg.AssetCheckResult(check_name=METRICS_CONTRACT, passed=not failures,
                              metadata={"failures": dg.MetadataValue.json(failures[:50])})
