"""The liquidity star schema: dimension snapshots, dimensions, facts and aggregates.

Facts (and the bridge) are partitioned by business date x legal entity like the stages, so a
rule approval recomputes only the fact partitions it touches. Dimensions and aggregates are
whole tables rebuilt from every stored business date they depend on, in every run that needs
them; the operator's keys are deterministic, so a rebuild gives the same keys to the same rows.
"""

import datetime as dt

import dagster as dg

from regcalc_assets.partitions import DATE_ENTITY, run_scope
from regcalc_assets.star import logic

GROUP = "star"
PARTITIONED = dict(partitions_def=DATE_ENTITY, group_name=GROUP)


def every_date(asset: str) -> dg.AssetDep:
    """A whole table's dependency on a partitioned asset, all of whose stored partitions it reads
    itself. Drawn in the graph, but mapped to no partition in particular: with Dagster's default
    (every partition) each materialization enumerates every (date, entity) key since 2020 to
    record input data versions, about 2 s per dependency (the recalculation planner, not Dagster,
    decides when a whole table is rebuilt)."""
    return dg.AssetDep(asset, partition_mapping=dg.SpecificPartitionsPartitionMapping([]))


def _out(description: str) -> dg.AssetOut:
    return dg.AssetOut(io_manager_key="stage_io", description=description, kinds={"parquet"}, group_name=GROUP)


@dg.multi_asset(
    **PARTITIONED,
    outs={
        "counterparty_snapshot": _out("One row per counterparty of the partition's accepted positions, with its "
                                      "counterparty_type as delivered that business date (dim_counterparty's SCD2 snapshots)."),
        "currency_snapshot": _out("One row per currency the partition holds positions in or reports in "
                                  "(dim_currency's members)."),
    },
)
def star_snapshots(adjusted_positions, entity_profiles):
    """Per (business date, entity): the reference data its positions carried, kept small so the
    dimensions can be rebuilt from every stored date without reading the positions again."""
    return logic.counterparty_snapshot(adjusted_positions), logic.currency_snapshot(adjusted_positions, entity_profiles)


DIMENSION_DOCS = {
    "dim_legal_entity": "One row per legal entity version (SCD2 over the entities file of every business date): "
                        "legal_entity_key, entity_id, name, reporting currency, country, parent, valid_from, valid_to, is_current.",
    "dim_counterparty": "One row per counterparty version (SCD2 over the counterparty_type delivered each business date).",
    "dim_product": "One row per product of the landing contract: balance-sheet side, counterparty required.",
    "dim_currency": "One row per currency held or reported in.",
    "dim_hqla_level": "One row per HQLA level (L1, L2A, L2B_RMBS, L2B_OTHER, NON_HQLA) and its component.",
    "dim_component": "One row per LCR / NSFR component, in report order.",
    "dim_factor_row": "One row per factor-table row, with its value and its citation of liquidity-rules.md.",
    "dim_adjustment_rule": "One row per adjustment rule version in force from its effective date (SCD2 over rule "
                           "versions): stage, submitter, approver, effective and expiry dates, retired.",
    "dim_basis": "One row per basis: BASE (no rules) and ADJUSTED (every approved rule).",
    "dim_date": "One row per calendar day from the first business date to the end of the latest business date's "
                "year: date_key (yyyymmdd), date, year, quarter, month, day of week, month / quarter end, "
                "business day, last business day of the month.",
}


@dg.multi_asset(
    outs={name: _out(doc) for name, doc in DIMENSION_DOCS.items()},
    deps=[every_date(a) for a in ("entity_profiles", "counterparty_snapshot", "currency_snapshot", "deal_rules",
                                  "aggregation_rules", "final_rules")],
    group_name=GROUP,
    required_resource_keys={"stages", "engine", "rules"},
)
def star_dimensions(context: dg.AssetExecutionContext):
    """Every dimension of the liquidity star, rebuilt from every stored business date (entity and
    counterparty snapshots, currencies), the rule store's versions and the vocabulary. The
    history is a function of the snapshots only: backfilling an earlier date gives the same tables
    as processing the dates in order."""
    from regcalc_resources.storage import read_stage

    stages, engine, rules = context.resources.stages, context.resources.engine, context.resources.rules
    with stages.lock("star_dimensions"):
        stored = {a: stages.partitions(a) for a in ("entity_profiles", "counterparty_snapshot", "currency_snapshot")}
        profiles = read_stage(engine, stages, "entity_profiles", stored["entity_profiles"])
        session = engine.session()
        inputs = {
            "legal_entity": logic.legal_entity_rows(profiles),
            "counterparty": logic.counterparty_rows(read_stage(engine, stages, "counterparty_snapshot",
                                                               stored["counterparty_snapshot"])),
            "currency": logic.currency_rows(read_stage(engine, stages, "currency_snapshot", stored["currency_snapshot"])),
            "adjustment_rule": logic.adjustment_rule_rows(session, rules.all_versions()),
            **logic.static_rows(session),
        }
        last = max((dt.date.fromisoformat(d) for d, _ in stored["entity_profiles"]), default=logic.FIRST_DATE)
        star = logic.build_dimensions(logic.spec_for_dates(last), inputs)
        for name in DIMENSION_DOCS:
            yield dg.Output(star.tables[name], output_name=name)


FACT_DOCS = {
    "fact_position": "One row per position and business date: keys to every dimension (entity, counterparty, product, "
                     "currency, reporting currency, HQLA level, the factor-table row behind each factor), amount, "
                     "factors, and base and adjusted contributions to each component kind.",
    "fact_component": "One row per entity x business date x component x basis: amount and position count.",
    "fact_metric": "One row per entity x business date x basis: hqla and its levels, the caps, outflows, inflows, "
                   "net outflows, lcr, asf, rsf, nsfr, positions accepted and quarantined.",
    "fact_adjustment": "One row per adjustment trail row (a value a rule changed): keys to entity, rule version and "
                       "component; value before, after and the change.",
    "bridge_position_rule": "One row per (position, deal rule) the trail records: position_key, adjustment_rule_key and "
                            "a weight of 1 / rules per position.",
}


@dg.multi_asset(
    **PARTITIONED,
    outs={name: _out(doc) for name, doc in FACT_DOCS.items()},
    ins={name: dg.AssetIn(name) for name in logic.DIMENSIONS},
)
def star_facts(context: dg.AssetExecutionContext, adjusted_positions, liquidity_components, liquidity_metrics,
               adjustment_trail, **dimensions):
    """The facts and the bridge of the run's partitions, keyed to the stored dimensions (a
    foreign key that matches no member points at the unknown member, -1, and is counted)."""
    inputs = {
        "position": logic.position_rows(adjusted_positions),
        "component_figures": logic.component_rows(liquidity_components),
        "metric": logic.metric_rows(liquidity_metrics),
        "adjustment": logic.adjustment_rows(adjustment_trail),
        "position_rule": logic.position_rule_rows(adjustment_trail),
    }
    dims = {logic.DIMENSIONS[name]: df for name, df in dimensions.items()}
    star = logic.build_facts(logic.liquidity_spec(), inputs, dims)
    for name in FACT_DOCS:
        yield dg.Output(star.tables[name], output_name=name)


@dg.multi_asset(
    outs={
        "agg_daily_liquidity": _out("One row per business date x basis over every entity (the design's "
                                    "agg_daily_liquidity): summed figures, lcr / nsfr averaged, row_count = entities."),
        "agg_component_by_date": _out("One row per business date x basis x component over every entity: amount and "
                                      "position count summed, row_count = entities."),
    },
    deps=[every_date("fact_metric"), every_date("fact_component")],
    group_name=GROUP,
    required_resource_keys={"stages", "engine"},
)
def star_aggregates(context: dg.AssetExecutionContext):
    """The aggregate tables of the liquidity star, rebuilt from every stored fact partition."""
    from regcalc_resources.storage import read_stage

    stages, engine = context.resources.stages, context.resources.engine
    facts = {name: read_stage(engine, stages, name, stages.partitions(name)) for name in ("fact_metric", "fact_component")}
    for name, df in logic.build_aggregates(logic.liquidity_spec(), facts).items():
        yield dg.Output(df, output_name=name)


STAR_ASSETS = ["counterparty_snapshot", "currency_snapshot", *DIMENSION_DOCS, *FACT_DOCS, "agg_daily_liquidity",
               "agg_component_by_date"]
