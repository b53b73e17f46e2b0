"""Lineage: keys that survive every stage, the edges from each reported figure to its inputs, and
the checks that both are complete (BCBS 239: accuracy, completeness). DataFrame in, DataFrame out.

Every position row carries its lineage columns from landing to adjustment: the position key
(business_date, source_system, position_id) and where it was delivered (source_file,
source_row). ``traced`` wraps a stage's transformation and refuses an input or output without
them; ``audit_keys`` compares a stage's stored input and output row by row. ``lineage_edges``
maps each output key to its input keys with the amount each input contributes, so that a
reported figure is the sum of its traced inputs (checked to the cent by ``completeness``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from regcalc_core.compiler import TRAIL
from regcalc_assets.aggregation.logic import EXACT, contribution_terms
from regcalc_core.lineage import LINEAGE_COLUMNS
from regcalc_core.dataframes import functions_for

@dataclass
class KeyAudit:
    """How a stage's output keys compare with its input keys."""

    stage: str
    rows_in: int
    rows_out: int
    dropped: int = 0
    duplicated: int = 0
    added: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (self.dropped or self.duplicated or self.added)

    @property
    def message(self) -> str:
        if self.passed:
            return f"stage '{self.stage}': all {self.rows_in:,} keys preserved"
        return (f"lineage check failed at stage '{self.stage}': {self.dropped:,} key(s) dropped, "
                f"{self.duplicated:,} duplicated, {self.added:,} not in its input "
                f"({self.rows_in:,} rows in, {self.rows_out:,} out); e.g. {'; '.join(self.examples)}")


ROW_KEY = ("source_row",)  # a position's delivered row: unique within a date's one positions file


def audit_keys(stage: str, before, after, keys: tuple[str, ...] = ROW_KEY) -> KeyAudit:
    """Every key of ``before`` exactly once in ``after`` and nothing else: counts of keys dropped,
    duplicated (extra copies) and added, with a few examples (``source_system/position_id`` and
    the delivered row), in one pass over each side. The default key is the delivered row number,
    which identifies a position within a run (one business date, one positions file) and groups
    far faster than the text keys; the other lineage columns ride along as labels."""
    F, _ = functions_for(before)
    keys = list(keys)

    def counted(df, name):
        label = F.concat_ws("/", *[F.col(c) for c in ("source_system", "position_id") if c in df.columns])
        return df.groupBy(*keys).agg(F.count(F.lit(1)).alias(name), F.max(label).alias(f"{name}_label"))

    counted_in, counted_out = counted(before, "_in"), counted(after, "_out")
    joined = counted_in.join(counted_out, on=keys, how="full_outer")
    n_in, n_out = F.coalesce(F.col("_in"), F.lit(0)), F.coalesce(F.col("_out"), F.lit(0))
    dropped = F.when(n_out == F.lit(0), n_in).otherwise(F.lit(0))
    added = F.when(n_in == F.lit(0), n_out).otherwise(F.lit(0))
    extra = F.when((n_in > F.lit(0)) & (n_out > n_in), n_out - n_in).otherwise(F.lit(0))
    missing = F.when((n_in > F.lit(0)) & (n_out > F.lit(0)) & (n_out < n_in), n_in - n_out).otherwise(F.lit(0))
    summary = joined.agg(
        F.sum(n_in).alias("rows_in"), F.sum(n_out).alias("rows_out"), F.sum(dropped + missing).alias("dropped"),
        F.sum(extra).alias("duplicated"), F.sum(added).alias("added"),
    ).collect()[0]
    audit = KeyAudit(stage, int(summary["rows_in"] or 0), int(summary["rows_out"] or 0), int(summary["dropped"] or 0),
                     int(summary["duplicated"] or 0), int(summary["added"] or 0))
    if not audit.passed:
        kind = (F.when(n_out == F.lit(0), F.lit("dropped")).when(n_in == F.lit(0), F.lit("not in input"))
                .otherwise(F.concat(F.lit("x"), n_out.cast("string"))))
        label = F.coalesce(F.col("_in_label"), F.col("_out_label"))
        bad = joined.where(n_in != n_out).select(*keys, label.alias("_label"), kind.alias("_kind")).limit(5).collect()
        audit.examples = [f"{r['_label']} ({', '.join(f'{k} {r[k]}' for k in keys)}) {r['_kind']}" for r in bad]
    return audit


CENT = 0.005  # "to the cent": a traced sum may differ from the reported figure by less than half a cent
EDGE_COLUMNS = [
    "business_date", "entity_id", "output_stage", "output_key", "input_stage", "input_key", "role",
    "base_contribution", "contribution", "factor_rule", "source_system", "position_id", "source_file",
    "source_row", "rule_id", "rule_version",
]
TERM, NUMERATOR, DENOMINATOR, OPERAND = "term", "numerator", "denominator", "operand"
COMPONENTS_STAGE, METRICS_STAGE, POSITIONS_STAGE, RULES_STAGE = (
    "liquidity_components", "liquidity_metrics", "adjusted_positions", "adjustment_rules")


def position_edges(positions):
    """One edge per (position, component) it contributes to: what it adds to the component in the
    base calculation (``base_contribution``) and after the deal rules (``contribution``), with the
    factor-table row that gave the factor and the delivered file and row."""
    F, _ = functions_for(positions)
    entries = [
        F.when(present, F.struct(component.alias("output_key"), F.col(rule).cast("string").alias("factor_rule"),
                                 base.cast("double").alias("base_contribution"), adjusted.cast("double").alias("contribution")))
        for (present, component, rule, base), (_, _, _, adjusted) in zip(contribution_terms(F, "base_"), contribution_terms(F, ""))
    ]
    e = "_edge"
    exploded = positions.select(*LINEAGE_COLUMNS, "entity_id",
                                F.explode(F.filter(F.array(*entries), lambda x: x.isNotNull())).alias(e))
    return exploded.select(
        "business_date", "entity_id", F.lit(COMPONENTS_STAGE).alias("output_stage"), F.col(f"{e}.output_key").alias("output_key"),
        F.lit(POSITIONS_STAGE).alias("input_stage"), F.concat_ws("/", F.col("source_system"), F.col("position_id")).alias("input_key"),
        F.lit(TERM).alias("role"), F.col(f"{e}.base_contribution").alias("base_contribution"),
        F.col(f"{e}.contribution").alias("contribution"), F.col(f"{e}.factor_rule").alias("factor_rule"),
        "source_system", "position_id", "source_file", F.col("source_row").cast("bigint").alias("source_row"),
        F.lit(None).cast("string").alias("rule_id"), F.lit(None).cast("int").alias("rule_version"),
    )


# metric -> its additive terms: (input stage, input key, sign); final-stage rule deltas are added
METRIC_TERMS = {
    "hqla_l1": [(COMPONENTS_STAGE, "HQLA_L1", 1)],
    "hqla_l2a": [(COMPONENTS_STAGE, "HQLA_L2A", 1)],
    "hqla_l2b": [(COMPONENTS_STAGE, "HQLA_L2B_RMBS", 1), (COMPONENTS_STAGE, "HQLA_L2B_OTHER", 1)],
    "hqla": [(METRICS_STAGE, "hqla_l1", 1), (METRICS_STAGE, "hqla_l2a", 1), (METRICS_STAGE, "hqla_l2b", 1),
             (METRICS_STAGE, "adj15", -1), (METRICS_STAGE, "adj40", -1)],
    "total_outflows": [(COMPONENTS_STAGE, "OUTFLOWS", 1)],
    "total_inflows": [(COMPONENTS_STAGE, "INFLOWS", 1)],
    "asf": [(COMPONENTS_STAGE, "ASF", 1)],
    "rsf": [(COMPONENTS_STAGE, "RSF", 1)],
    "net_outflows": [(METRICS_STAGE, "total_outflows", 1), (METRICS_STAGE, "capped_inflows", -1)],
}
# metric -> (role, input metric): figures that are not sums (caps and ratios)
METRIC_OPERANDS = {
    "adj15": [(OPERAND, "hqla_l1"), (OPERAND, "hqla_l2a"), (OPERAND, "hqla_l2b")],
    "adj40": [(OPERAND, "hqla_l1"), (OPERAND, "hqla_l2a"), (OPERAND, "hqla_l2b"), (OPERAND, "adj15")],
    "capped_inflows": [(OPERAND, "total_inflows"), (OPERAND, "total_outflows")],
    "lcr": [(NUMERATOR, "hqla"), (DENOMINATOR, "net_outflows")],
    "nsfr": [(NUMERATOR, "asf"), (DENOMINATOR, "rsf")],
}


def rows(df) -> list[dict]:
    """A small frame's rows as dicts (through Arrow: far cheaper than ``collect`` on sqlframe)."""
    return df.toArrow().to_pylist()


def derived_edges(components, metrics) -> list[dict]:
    """Edges above the positions, from the (small) component and metric frames: a rule's net
    change to a component or a total (input ``adjustment_rules``, key ``RULE@vN``), each metric's
    terms and operands. Base and adjusted values side by side, as in ``position_edges``."""
    comps = {(r["business_date"], r["entity_id"], r["basis"], r["component"]): r for r in rows(components)}
    mets = {(r["business_date"], r["entity_id"], r["basis"]): r for r in rows(metrics)}
    edges: list[dict] = []

    def edge(date, entity, out_stage, out_key, in_stage, in_key, role, base, adjusted, rule=None):
        edges.append({"business_date": date, "entity_id": entity, "output_stage": out_stage, "output_key": out_key,
                      "input_stage": in_stage, "input_key": in_key, "role": role, "base_contribution": base,
                      "contribution": adjusted, "factor_rule": None, "source_system": None, "position_id": None,
                      "source_file": None, "source_row": None, "rule_id": rule[0] if rule else None,
                      "rule_version": rule[1] if rule else None})

    for (date, entity, basis, component), row in sorted(comps.items()):
        if basis == "adjusted":
            for rule, delta in _rule_deltas(row.get(TRAIL)).items():
                edge(date, entity, COMPONENTS_STAGE, component, RULES_STAGE, f"{rule[0]}@v{rule[1]}", TERM, 0.0, delta, rule)
    for (date, entity, basis), adjusted in sorted(mets.items()):
        if basis != "adjusted":
            continue
        base = mets.get((date, entity, "base"), {})

        def value(stage, key, row):
            return comps.get((date, entity, row.get("basis"), key), {}).get("amount") if stage == COMPONENTS_STAGE else row.get(key)

        for metric, terms in METRIC_TERMS.items():
            for stage, key, sign in terms:
                b, a = value(stage, key, base), value(stage, key, adjusted)
                edge(date, entity, METRICS_STAGE, metric, stage, key, TERM,
                     None if b is None else sign * b, None if a is None else sign * a)
        for rule, delta in _rule_deltas(adjusted.get(TRAIL), by_field=True).items():
            edge(date, entity, METRICS_STAGE, rule[2], RULES_STAGE, f"{rule[0]}@v{rule[1]}", TERM, 0.0, delta, rule[:2])
        for metric, operands in METRIC_OPERANDS.items():
            for role, key in operands:
                edge(date, entity, METRICS_STAGE, metric, METRICS_STAGE, key, role, base.get(key), adjusted.get(key))
    return edges


def _rule_deltas(trail, by_field: bool = False) -> dict[tuple, float]:
    """Net change per rule (and field) over a row's trail; clamps count for the rule they are
    attributed to. The changes telescope: their sum is the value after the stage minus before."""
    deltas: dict[tuple, float] = {}
    for entry in trail or []:
        e = entry.asDict() if hasattr(entry, "asDict") else dict(entry)
        key = (e["rule_id"], e["version"], e["field"]) if by_field else (e["rule_id"], e["version"])
        deltas[key] = deltas.get(key, 0.0) + (e["after"] or 0.0) - (e["before"] or 0.0)
    return deltas


EDGE_ARROW_TYPES = {"business_date": "date32", "source_row": "int64", "rule_version": "int32",
                    "base_contribution": "float64", "contribution": "float64"}


def derived_arrow(components, metrics):
    """The derived edges as an Arrow table with the edge schema (for ``ComputeEngine.from_arrow``)."""
    import pyarrow as pa

    rows = derived_edges(components, metrics)
    schema = pa.schema([(c, getattr(pa, EDGE_ARROW_TYPES.get(c, "string"))()) for c in EDGE_COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


def lineage_edges(adjusted_positions, derived):
    """The lineage of one run's partitions (EDGE_COLUMNS): the position edges, then ``derived``
    (a DataFrame of ``derived_edges``, e.g. ``engine.from_arrow(derived_arrow(...))``)."""
    return position_edges(adjusted_positions).unionByName(derived.select(*EDGE_COLUMNS))


@dataclass
class Completeness:
    checked: int
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def completeness(edges, components, metrics) -> Completeness:
    """Every component and every additive metric equals the sum of its traced inputs' contributions
    to the cent, in both bases; each component counts as many position edges as positions; each
    ratio equals numerator / denominator. Failures name the output, basis and the difference."""
    F, _ = functions_for(edges)
    terms = edges.where(F.col("role") == F.lit(TERM))
    sums = {
        (r["business_date"], r["entity_id"], r["output_stage"], r["output_key"]): r
        for r in terms.groupBy("business_date", "entity_id", "output_stage", "output_key").agg(
            # exact decimal sums, as aggregation does: a float sum of millions of contributions
            # drifts by more than a cent (measured at 2M positions)
            F.sum(F.col("base_contribution").cast(EXACT)).cast("double").alias("base"),
            F.sum(F.col("contribution").cast(EXACT)).cast("double").alias("adjusted"),
            F.sum(F.when(F.col("input_stage") == F.lit(POSITIONS_STAGE), F.lit(1)).otherwise(F.lit(0))).alias("positions"),
        ).collect()
    }
    ops = {}
    for r in edges.where(F.col("role") != F.lit(TERM)).collect():
        ops.setdefault((r["business_date"], r["entity_id"], r["output_key"]), {})[r["role"]] = r
    failures, checked = [], 0
    for r in rows(components):
        checked += 1
        traced_sum = sums.get((r["business_date"], r["entity_id"], COMPONENTS_STAGE, r["component"]))
        total = 0.0 if traced_sum is None else (traced_sum["base"] if r["basis"] == "base" else traced_sum["adjusted"]) or 0.0
        where = f"{r['business_date']} {r['entity_id']} {r['basis']} component {r['component']}"
        if abs(total - r["amount"]) >= CENT:
            failures.append(f"{where}: reported {r['amount']:.2f}, traced inputs sum to {total:.2f}")
        count = 0 if traced_sum is None else traced_sum["positions"]
        if count != r["position_count"]:
            failures.append(f"{where}: {r['position_count']} positions aggregated, {count} traced")
    for r in rows(metrics):
        column = "base_contribution" if r["basis"] == "base" else "contribution"
        for metric in METRIC_TERMS:
            checked += 1
            traced_sum = sums.get((r["business_date"], r["entity_id"], METRICS_STAGE, metric))
            total = (traced_sum["base" if column == "base_contribution" else "adjusted"] or 0.0) if traced_sum else None
            if total is None or abs(total - r[metric]) >= CENT:
                failures.append(f"{r['business_date']} {r['entity_id']} {r['basis']} {metric}: reported {r[metric]:.2f}, "
                                f"traced inputs sum to {'nothing' if total is None else f'{total:.2f}'}")
        for ratio in ("lcr", "nsfr"):
            checked += 1
            parts = ops.get((r["business_date"], r["entity_id"], ratio), {})
            num, den = (parts.get(role, {}) for role in (NUMERATOR, DENOMINATOR))
            n, d = (p[column] if p else None for p in (num, den))
            expected = None if not d else n / d
            if (expected is None) != (r[ratio] is None) or (expected is not None and abs(expected - r[ratio]) > 1e-9 * max(1.0, abs(expected))):
                failures.append(f"{r['business_date']} {r['entity_id']} {r['basis']} {ratio}: reported {r[ratio]}, "
                                f"traced numerator / denominator gives {expected}")
    return Completeness(checked, failures)
