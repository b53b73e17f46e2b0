"""Aggregation of enriched positions into the LCR / NSFR components of each entity."""

from __future__ import annotations

from regcalc_core.compiler import apply_to_adjusted_basis
from regcalc_core.lineage import POSITION_KEY, traced
from regcalc_core.dataframes import functions_for, session_of

HQLA_COMPONENTS = {"L1": "HQLA_L1", "L2A": "HQLA_L2A", "L2B_RMBS": "HQLA_L2B_RMBS", "L2B_OTHER": "HQLA_L2B_OTHER"}
COMPONENTS = [*HQLA_COMPONENTS.values(), "OUTFLOWS", "INFLOWS", "ASF", "RSF"]
# component -> (contribution factor column, column naming the factor-table row)
FLOW_COMPONENTS = {
    "OUTFLOWS": ("outflow_rate", "outflow_rule"),
    "INFLOWS": ("inflow_rate", "inflow_rule"),
    "ASF": ("asf_factor", "asf_rule"),
    "RSF": ("rsf_factor", "rsf_rule"),
}
KEYS = ["business_date", "entity_id", "reporting_currency"]
# Sums run in exact decimal arithmetic, so that a re-run (or the other engine), adding the same
# contributions in another order, gives bit-identical figures; 10 decimals is far below a cent.
EXACT = "decimal(38,10)"


BASES = {"base": "base_", "adjusted": ""}  # basis -> prefix of the calculation fields it reads


def contribution_terms(F, prefix: str = ""):
    """What a position contributes, for the calculation fields named ``<prefix><field>``: one
    (present, component, factor-rule column, contribution) per component kind. HQLA: amount x (1 -
    haircut) to the level's component; flows and funding: amount x factor (liquidity-rules.md).
    Aggregation and lineage both build on these, so traced contributions sum to the components."""
    level_component = None
    for level, component in HQLA_COMPONENTS.items():
        cond = F.col("hqla_level") == F.lit(level)
        level_component = F.when(cond, F.lit(component)) if level_component is None else level_component.when(cond, F.lit(component))
    amount, haircut = F.col(prefix + "amount"), F.col(prefix + "haircut")
    terms = [(F.col("hqla_level").isNotNull(), level_component, "haircut_rule", amount * (F.lit(1.0) - haircut))]
    for component, (factor, rule) in FLOW_COMPONENTS.items():
        terms.append((F.col(prefix + factor).isNotNull(), F.lit(component), rule, amount * F.col(prefix + factor)))
    return terms


@traced("aggregation", keys=POSITION_KEY)
def contributions(positions, bases: dict[str, str] | None = None):
    """One row per (position, component, basis) it contributes to: amount x factor (HQLA: amount
    x (1 - haircut)); ``base`` reads the fields as enriched, ``adjusted`` as deal rules left them.

    Built as one projection of an array of (basis, component) entries, exploded: two DataFrame
    operations whatever the number of components and bases."""
    F, _ = functions_for(positions)
    bases = bases or {"adjusted": ""}
    entries = [
        F.when(present, F.struct(F.lit(basis).alias("basis"), component.alias("component"),
                                 F.col(rule).cast("string").alias("factor_rule"),
                                 contribution.cast("double").alias("contribution")))
        for basis, prefix in bases.items()
        for present, component, rule, contribution in contribution_terms(F, prefix)
    ]
    c = "_contribution"
    exploded = positions.select(*KEYS, "position_id", "source_system", "product",
                                F.explode(F.filter(F.array(*entries), lambda e: e.isNotNull())).alias(c))
    return exploded.select(*KEYS, "position_id", "source_system", "product",
                           *[F.col(f"{c}.{name}").alias(name) for name in ("basis", "component", "factor_rule", "contribution")])


def component_breakdown(positions, bases: dict[str, str] | None = None):
    """Finer categories: one row per (entity, component, factor-table row, product) with its exact
    decimal sum and count."""
    F, _ = functions_for(positions)
    return (
        contributions(positions, bases)
        .groupBy(*KEYS, "basis", "component", "factor_rule", "product")
        .agg(F.sum(F.col("contribution").cast(EXACT)).alias("amount"), F.count(F.lit(1)).alias("position_count"))
    )


def aggregate_components(breakdown, profiles):
    """All eight components for every valid entity (0 where nothing contributes)."""
    F, _ = functions_for(breakdown)
    session = session_of(profiles)
    names = session.createDataFrame([(c, i) for i, c in enumerate(COMPONENTS)], "component string, component_order int")
    sums = breakdown.groupBy("business_date", "entity_id", "basis", "component").agg(
        F.sum(F.col("amount").cast(EXACT)).cast("double").alias("amount"), F.sum("position_count").alias("position_count")
    )
    bases = session.createDataFrame([(b,) for b in sorted(BASES)], "basis string")
    entities = profiles.where(F.col("entity_valid")).select(*KEYS)
    return (
        entities.crossJoin(bases).crossJoin(names)
        .join(sums, on=["business_date", "entity_id", "basis", "component"], how="left")
        .select(
            *KEYS, "basis", "component", "component_order",
            F.coalesce(F.col("amount"), F.lit(0.0)).cast("double").alias("amount"),
            F.coalesce(F.col("position_count"), F.lit(0)).cast("bigint").alias("position_count"),
        )
    )


def adjust_components(components, rules, match_columns: dict[str, str] | None = None):
    """Aggregation-stage rules applied to the adjusted basis only; base rows stay as aggregated."""
    return apply_to_adjusted_basis(components, rules, "aggregation", match_columns)
