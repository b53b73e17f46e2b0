"""From base to adjusted LCR (and NSFR) of an entity on a date, one step per adjustment rule.

Neither the warehouse nor the lineage stores a rule's effect on the ratio: the ratios are not
additive (the HQLA caps and the inflow cap bind or not), so the effect of a rule is derived by
replaying the rules in the order the pipeline applied them (liquidity-rules.md, "Adjusted
figures": deal-stage rules, aggregation, aggregation-stage rules, the HQLA caps, final-stage
rules, the inflow cap and the ratios) and recomputing the ratios after each one:

1. state 0 is the entity's base components (warehouse ``liquidity_components``, basis ``base``);
2. a deal-stage rule adds, to each component, what it changed in the contributions of the
   positions it touched: each stored adjusted position (stage ``adjusted_positions``) is replayed
   from its ``base_*`` fields through its own adjustment trail, and the contributions before and
   after each rule's changes are computed with the aggregation stage's ``contribution_terms``;
3. an aggregation-stage rule adds its change to a component, a final-stage rule its change to
   hqla or a total (warehouse ``adjustment_trail``);
4. after each rule, the ratios are recomputed from the state with the metrics stage's own
   ``hqla_stock`` and ``ratios`` (the spec's caps), on an embedded DuckDB session.

Rules of a stage come in the order of their steps in the trail (the pipeline's priority order);
a clamp counts for the rule it is attributed to (as in the lineage). The changes telescope, so
the state after the last rule is the adjusted components and totals; the first and last values
shown are the base and adjusted LCR of ``regcalc report`` themselves, so the bars end exactly at
the reported figure, and the recomputed ends are checked against it (``reconciled``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEAL_FIELDS = ("amount", "haircut", "outflow_rate", "inflow_rate", "asf_factor", "rsf_factor")
STAGES = ("deal_enrichment", "aggregation", "final_calc")
FINAL_FIELDS = ("hqla", "total_outflows", "total_inflows", "asf", "rsf")
LAST = 10**9  # the place of a rule seen only in clamps: after the others of its stage
ALL_DEAL_RULES = "deal-stage rules"  # one step for them all when the positions are not stored
# a ratio recomputed from the stored components may differ from the stored one by float rounding
RATIO_TOLERANCE = 1e-9


@dataclass
class RuleStep:
    """One bar: the ratios before and after one rule (its changes, clamps included)."""

    rule: str  # RULE_ID@vN
    stage: str
    changes: int  # values the rule changed (trail entries)
    lcr_before: float | None = None
    lcr_after: float | None = None
    nsfr_before: float | None = None
    nsfr_after: float | None = None

    @property
    def lcr_impact(self) -> float | None:
        return None if self.lcr_before is None or self.lcr_after is None else self.lcr_after - self.lcr_before

    @property
    def nsfr_impact(self) -> float | None:
        return None if self.nsfr_before is None or self.nsfr_after is None else self.nsfr_after - self.nsfr_before


@dataclass
class Waterfall:
    entity_id: str
    business_date: str
    base_lcr: float | None
    adjusted_lcr: float | None
    base_nsfr: float | None
    adjusted_nsfr: float | None
    steps: list[RuleStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def reconciled(self) -> bool:
        """The replay reaches the stored adjusted components and both reported ratios."""
        return not self.mismatches


@dataclass
class _Plan:
    """An entity's rules in order with their changes: component deltas, total deltas."""

    base: dict[str, float]
    rules: list[tuple[str, str, int]] = field(default_factory=list)  # (rule, stage, changes)
    components: dict[str, dict[str, float]] = field(default_factory=dict)  # rule -> component -> delta
    totals: dict[str, dict[str, float]] = field(default_factory=dict)  # rule -> final field -> delta
    notes: list[str] = field(default_factory=list)  # how the steps were derived, where it differs
    mismatches: list[str] = field(default_factory=list)  # where the replay does not reach the stored figures


def replay_positions(rows: list[dict]) -> tuple[list[dict], dict[str, tuple[int, int]]]:
    """Each position's fields before and after each rule's changes, from its ``base_*`` values
    through its trail in step order: [{rule, sign, hqla_level, <field>...}] (sign -1 before, +1
    after, so that summed contributions give each rule's change) and {rule: (first step, changes)}."""
    states, seen = [], {}
    for row in rows:
        current = {f: row.get(f"base_{f}") for f in DEAL_FIELDS}
        entries = sorted((e if isinstance(e, dict) else e.asDict() for e in row["adjustment_trail"] or []),
                         key=lambda e: e["step"])
        groups: list[tuple[str, list[dict]]] = []
        for e in entries:
            rule = f"{e['rule_id']}@v{e['version']}"
            _count(seen, rule, e["step"], e["clamped"])
            if groups and groups[-1][0] == rule and groups[-1][1][-1]["clamped"] == e["clamped"]:
                groups[-1][1].append(e)
            else:
                groups.append((rule, [e]))
        for rule, changes in groups:
            states.append({"rule": rule, "sign": -1.0, "hqla_level": row.get("hqla_level"), **current})
            for e in changes:
                current[e["field"]] = e["after"]
            states.append({"rule": rule, "sign": 1.0, "hqla_level": row.get("hqla_level"), **current})
    return states, seen


def _count(seen: dict[str, tuple[int, int]], rule: str, step: int, clamped: bool) -> None:
    """Record one trail entry of ``rule``: its first step (a clamp, numbered after every rule of
    the stage, does not place it) and its count of values changed."""
    first, count = seen.get(rule, (LAST, 0))
    seen[rule] = (first if clamped else min(first, step), count + 1)


def deal_deltas(engine, states_by_entity: dict[str, list[dict]]) -> dict[tuple[str, str], dict[str, float]]:
    """{(entity, rule): {component: change}} from replayed position states, with the contribution
    of each state computed by the aggregation stage's ``contribution_terms``."""
    from regcalc_assets.aggregation.logic import EXACT, contribution_terms
    from regcalc_core.dataframes import frame_of_rows, functions_for

    rows = [(entity, s["rule"], s["sign"], s["hqla_level"], *(s[f] for f in DEAL_FIELDS))
            for entity, states in states_by_entity.items() for s in states]
    if not rows:
        return {}
    df = frame_of_rows(engine.session(), rows, "entity_id string, rule string, sign double, hqla_level string, "
                       + ", ".join(f"{f} double" for f in DEAL_FIELDS))
    F, _ = functions_for(df)
    entries = [F.when(present, F.struct(component.alias("component"), (value * F.col("sign")).alias("delta")))
               for present, component, _, value in contribution_terms(F, "")]
    e = "_term"
    exploded = df.select("entity_id", "rule", F.explode(F.filter(F.array(*entries), lambda x: x.isNotNull())).alias(e))
    sums = (exploded.select("entity_id", "rule", F.col(f"{e}.component").alias("component"), F.col(f"{e}.delta").alias("delta"))
            .groupBy("entity_id", "rule", "component")
            .agg(F.sum(F.col("delta").cast(EXACT)).cast("double").alias("delta")))
    out: dict[tuple[str, str], dict[str, float]] = {}
    for r in sums.toArrow().to_pylist():
        out.setdefault((r["entity_id"], r["rule"]), {})[r["component"]] = r["delta"] or 0.0
    return out


def stored_positions(stages, business_date: str, entity: str) -> list[dict] | None:
    """The stored adjusted positions of (date, entity) that a deal-stage rule changed: their
    hqla_level, base fields and trail; None when the partition is not stored."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    import pyarrow as pa

    path = stages.read_dir("adjusted_positions", business_date, entity)
    if path is None:
        return None
    files = sorted(path.glob("*.parquet"))
    if not files:
        return []
    columns = ["hqla_level", *(f"base_{f}" for f in DEAL_FIELDS), "adjustment_trail"]
    table = pa.concat_tables([pq.read_table(str(f), columns=columns) for f in files])
    touched = pc.fill_null(pc.greater(pc.list_value_length(table["adjustment_trail"]), 0), False)
    return table.filter(touched).to_pylist()


def build_waterfalls(warehouse, stages, engine, business_date: str, entities: list[str],
                     base_rows: dict[str, dict], adjusted_rows: dict[str, dict]) -> dict[str, Waterfall]:
    """A waterfall for each entity on ``business_date``; ``base_rows`` / ``adjusted_rows`` are
    the entity's rows of ``regcalc report --base`` / ``regcalc report`` (the ends of the bars)."""
    from regcalc_assets.aggregation.logic import COMPONENTS
    from regcalc_assets.lineage.logic import CENT

    components = warehouse.query(
        "SELECT entity_id, basis, component, amount FROM liquidity_components WHERE business_date = CAST(? AS DATE)",
        [business_date])
    comps: dict[tuple[str, str], dict[str, float]] = {}
    for r in components:
        comps.setdefault((r["entity_id"], r["basis"]), {})[r["component"]] = r["amount"] or 0.0
    trail = warehouse.query(
        "SELECT entity_id, stage, step, rule_id, version, component, field, value_before, value_after, clamped "
        "FROM adjustment_trail WHERE business_date = CAST(? AS DATE) AND stage IN ('aggregation', 'final_calc') "
        "ORDER BY entity_id, stage, step", [business_date])
    plans: dict[str, _Plan] = {}
    states_by_entity: dict[str, list[dict]] = {}
    for entity in entities:
        plan = plans[entity] = _Plan(base={c: comps.get((entity, "base"), {}).get(c, 0.0) for c in COMPONENTS})
        positions = stored_positions(stages, business_date, entity)
        if positions is None:
            plan.notes.append("adjusted positions not stored: the deal-stage rules are shown as one step")
            plan.rules.append((ALL_DEAL_RULES, "deal_enrichment", 0))
            continue
        states, seen = replay_positions(positions)
        states_by_entity[entity] = states
        for rule, (_, count) in sorted(seen.items(), key=lambda kv: (kv[1][0], kv[0])):
            plan.rules.append((rule, "deal_enrichment", count))
    deltas = deal_deltas(engine, states_by_entity)
    for entity, plan in plans.items():
        for rule, _, _ in plan.rules:
            plan.components[rule] = dict(deltas.get((entity, rule), {}))
        for stage in ("aggregation", "final_calc"):
            order: dict[str, tuple[int, int]] = {}
            for t in (t for t in trail if t["entity_id"] == entity and t["stage"] == stage):
                rule = f"{t['rule_id']}@v{t['version']}"
                _count(order, rule, t["step"], t["clamped"])
                target = plan.components if stage == "aggregation" else plan.totals
                key = t["component"] if stage == "aggregation" else t["field"]
                bucket = target.setdefault(rule, {})
                bucket[key] = bucket.get(key, 0.0) + (t["value_after"] or 0.0) - (t["value_before"] or 0.0)
            plan.rules += [(rule, stage, n) for rule, (_, n) in sorted(order.items(), key=lambda kv: (kv[1][0], kv[0]))]
        adjusted = comps.get((entity, "adjusted"), {})
        if ALL_DEAL_RULES in plan.components:  # no stored positions: whatever the components changed before the aggregation rules
            aggregation = {c: sum(plan.components[r].get(c, 0.0) for r, s, _ in plan.rules if s == "aggregation")
                           for c in COMPONENTS}
            change = {c: adjusted.get(c, 0.0) - aggregation[c] - plan.base[c] for c in COMPONENTS}
            if all(abs(v) < CENT for v in change.values()):
                plan.rules = [r for r in plan.rules if r[0] != ALL_DEAL_RULES]
            plan.components[ALL_DEAL_RULES] = change
        reached = _cumulative(plan)[-1][0] if plan.rules else plan.base
        off = {c: reached[c] - adjusted.get(c, 0.0) for c in COMPONENTS if abs(reached[c] - adjusted.get(c, 0.0)) >= CENT}
        if off:
            plan.mismatches.append("the replayed components differ from the stored adjusted components: "
                                   + ", ".join(f"{c} by {v:,.2f}" for c, v in sorted(off.items())))
    ratios = _ratios(engine, plans)
    out = {}
    for entity, plan in plans.items():
        base, adjusted = base_rows.get(entity, {}), adjusted_rows.get(entity, {})
        points = ratios[entity]
        waterfall = Waterfall(entity, business_date, base.get("lcr"), adjusted.get("lcr"), base.get("nsfr"),
                              adjusted.get("nsfr"), notes=list(plan.notes), mismatches=list(plan.mismatches))
        # the ends are the reported figures; the recomputed ones are checked against them
        for name, (lcr, nsfr), row in (("base", points[0], base), ("adjusted", points[-1], adjusted)):
            for ratio, value in (("lcr", lcr), ("nsfr", nsfr)):
                if not _close(value, row.get(ratio)):
                    waterfall.mismatches.append(f"recomputed {name} {ratio.upper()} {value} differs from the "
                                                f"reported {row.get(ratio)}")
        levels = ([(base.get("lcr"), base.get("nsfr"))] + points[1:-1] + [(adjusted.get("lcr"), adjusted.get("nsfr"))]
                  if plan.rules else [(base.get("lcr"), base.get("nsfr"))])
        for k, (rule, stage, changes) in enumerate(plan.rules, start=1):
            waterfall.steps.append(RuleStep(rule, stage, changes, levels[k - 1][0], levels[k][0],
                                            levels[k - 1][1], levels[k][1]))
        out[entity] = waterfall
    return out


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= RATIO_TOLERANCE * max(1.0, abs(b))


def _cumulative(plan: _Plan) -> list[tuple[dict[str, float], dict[str, float]]]:
    """The (components, total deltas) after each rule, in order."""
    components, totals, out = dict(plan.base), dict.fromkeys(FINAL_FIELDS, 0.0), []
    for rule, _, _ in plan.rules:
        for c, d in plan.components.get(rule, {}).items():
            components[c] = components.get(c, 0.0) + d
        for f, d in plan.totals.get(rule, {}).items():
            totals[f] = totals.get(f, 0.0) + d
        out.append((dict(components), dict(totals)))
    return out


def _ratios(engine, plans: dict[str, _Plan]) -> dict[str, list[tuple[float | None, float | None]]]:
    """{entity: [(lcr, nsfr) of state 0 (base), after rule 1, ...]} with the metrics stage's own
    caps and ratios: components pivoted to totals, ``hqla_stock``, the final-stage changes on hqla
    and the totals, then ``ratios``."""
    from regcalc_assets.metrics.logic import TOTALS, hqla_stock, ratios
    from regcalc_core.dataframes import frame_of_rows, functions_for

    rows = []
    for entity, plan in plans.items():
        states = [(plan.base, dict.fromkeys(FINAL_FIELDS, 0.0))] + _cumulative(plan)
        for k, (components, totals) in enumerate(states):
            rows.append((entity, k, *(float(components.get(c, 0.0)) for c in TOTALS.values()),
                         *(float(totals.get(f, 0.0)) for f in FINAL_FIELDS)))
    if not rows:
        return {}
    schema = ", ".join(["entity_id string", "k int", *(f"{c} double" for c in TOTALS), *(f"d_{f} double" for f in FINAL_FIELDS)])
    df = frame_of_rows(engine.session(), rows, schema)
    F, _ = functions_for(df)
    stock = hqla_stock(df)
    adjusted = stock.withColumns({f: F.col(f) + F.col(f"d_{f}") for f in FINAL_FIELDS})
    out: dict[str, list] = {}
    for r in sorted(ratios(adjusted).select("entity_id", "k", "lcr", "nsfr").toArrow().to_pylist(),
                    key=lambda r: (r["entity_id"], r["k"])):
        out.setdefault(r["entity_id"], []).append((r["lcr"], r["nsfr"]))
    return out
