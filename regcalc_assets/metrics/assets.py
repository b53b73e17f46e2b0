"""Final metrics: HQLA caps, inflow cap, LCR and NSFR per entity and date."""


import dagster as dg

from regcalc_assets import circuit_breaker, sequence
from regcalc_assets.metrics import logic
from regcalc_assets.metrics.checks import METRICS_CONTRACT, contract_failures, impact_evaluations
from regcalc_assets.sources.versions import rules_for_run
from regcalc_assets.partitions import DATE_ENTITY, run_scope
from regcalc_assets.sources.logic import partition_key, version_column
from regcalc_assets.sources.versions import record_rule_versions
from regcalc_core.dataframes import functions_for
from regcalc_resources.engine import ComputeEngine
from regcalc_resources.landing import LandingZone
from regcalc_resources.rule_store import RuleStore
from regcalc_resources.stage_store import StageStore


@dg.asset(
    partitions_def=DATE_ENTITY,
    io_manager_key="stage_io",
    group_name="metrics",
    kinds={"parquet"},
    deps=["final_rules"],
    check_specs=[dg.AssetCheckSpec(METRICS_CONTRACT, asset="liquidity_metrics", blocking=True,
                                   description="pandera: finite, non-negative figures, inflow cap, Level 2 within 40% "
                                               "of HQLA (blocking: a failure publishes nothing)"),
                 circuit_breaker.check_spec(DATE_ENTITY)],
)
def liquidity_metrics(context: dg.AssetExecutionContext, rules: RuleStore, landing: LandingZone, engine: ComputeEngine,
                      stages: StageStore, liquidity_components, validated_positions, quarantined_positions):
    """One row per (business_date, entity_id) and basis (base: no rules; adjusted: every approved
    rule): hqla_l1, hqla_l2a, hqla_l2b (post-haircut), the
    caps adj15 and adj40, hqla, total_outflows, total_inflows, capped_inflows (75% cap),
    net_outflows, lcr, asf, rsf, nsfr and the accepted / quarantined position counts, in the
    entity's reporting currency. Implements liquidity-rules.md ('LCR', 'NSFR', 'Adjusted
    figures'): final-stage rules change hqla and the totals after the HQLA caps, before the
    inflow cap and the ratios. ``final_rules_version`` is the version of the final rule set applied.

    Checks: the output contract, and the circuit breaker (``adjustment_impact_within_limits``, per
    partition): an entity whose rules move its LCR or NSFR further than its limit is held back
    from publication until an approver acknowledges that impact."""
    final_rules, rules_meta = rules_for_run(context, rules, "final_calc")
    F, _ = functions_for(liquidity_components)
    versions = record_rule_versions(context, final_rules, "final_calc", landing.root)
    # computed once: its rows are checked here and the same table is stored
    metrics = engine.checkpoint(logic.with_position_counts(
        sequence.final_calc(liquidity_components, final_rules), validated_positions, quarantined_positions
    ).withColumn("final_rules_version", version_column(F, versions)))
    all_rows = [r.asDict() for r in metrics.collect()]
    record_partition_figures(context, all_rows)
    meta: dict = {**rules_meta, "run_entities": sum(r["basis"] == "adjusted" for r in all_rows)}
    failures = contract_failures(all_rows)
    yield dg.Output(metrics, metadata=meta)
    yield dg.AssetCheckResult(check_name=METRICS_CONTRACT, passed=not failures,
                              metadata={"failures": dg.MetadataValue.json(failures[:50])})
    business_date, entities = run_scope(context)

    def rules_of(over: list[str]) -> dict[str, list[dict]]:  # read only for the entities over a limit
        from regcalc_core.circuit_breaker import rules_by_entity
        from regcalc_resources.storage import read_stage

        adjusted = read_stage(engine, stages, "adjusted_positions", [(business_date, e) for e in over])
        mine = F.col("entity_id").isin(*over)
        changes = logic.rule_changes(adjusted, liquidity_components.where(mine), metrics.where(mine))
        return rules_by_entity([r.asDict() for r in changes.collect()])

    if circuit_breaker.check_key() in context.selected_asset_check_keys:
        yield from impact_evaluations(context.instance, context.run.run_id, business_date, entities, all_rows, rules, rules_of)
        # the check's output, which the steps it blocks wait for (its results are the per-partition evaluations)
        yield dg.Output(None, output_name=next(name for name, spec in context.assets_def.check_specs_by_output_name.items()
                                               if spec.name == circuit_breaker.IMPACT_CHECK))


def record_partition_figures(context: dg.AssetExecutionContext, rows: list[dict]) -> None:
    """Each partition's own figures as numeric metadata of its materialization (``lcr``, ``nsfr``,
    ``lcr_base`` ... see ``logic.partition_figures``), so that the Dagster UI plots them over time
    per entity, in a ranged run too; and the entity's row of the figures table."""
    business_date, _ = run_scope(context)
    figures = logic.partition_figures(rows)
    adjusted = {r["entity_id"]: r for r in rows if r["basis"] == "adjusted"}
    for entity, values in figures.items():
        meta = {name: dg.MetadataValue.int(v) if isinstance(v, int) else dg.MetadataValue.float(v)
                for name, v in values.items()}
        if entity in adjusted:
            meta["figures"] = dg.MetadataValue.md(logic.figures_table([adjusted[entity]]))
        context.add_asset_metadata(meta, partition_key=partition_key(business_date, entity))
