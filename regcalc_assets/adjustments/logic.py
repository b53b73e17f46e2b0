"""The rule compiler: approved rules of one stage applied to a DataFrame (adjustment-rules.md).

Rule values are always bound as literals (``F.lit``), never spliced into SQL text, so a value
that looks like SQL or code is compared as the plain value it is. All rules of a stage compose
into one projection: each rule sees the values the earlier ones left, and a stage costs one
DataFrame operation however many rules it has.
"""

from __future__ import annotations

from regcalc_assets.adjustments.model import STAGE_FIELDS, UNIT_INTERVAL_FIELDS, Rule
from regcalc_assets.lineage.wrapper import traced
from regcalc_assets.sparkapi import functions_for

# contract defaults of the boolean flags (landing-zone.md)
FLAG_DEFAULTS = {"insured": False, "stable_relationship": False, "operational": False, "performing": True}


def ordered(rules: list[Rule]) -> list[Rule]:
    """Priority order: lower first, ties by rule_id."""
    return sorted(rules, key=lambda r: (r.priority, r.rule_id))


def _condition(F, cond, value_of):
    col = value_of(cond.field)
    if cond.field in FLAG_DEFAULTS:
        col = F.coalesce(col, F.lit(FLAG_DEFAULTS[cond.field]))
    op, v = cond.operator, cond.value
    if op == "is_null":
        return col.isNull()
    if op == "not_null":
        return col.isNotNull()
    if op == "in":
        expr = col.isin(*[F.lit(x) for x in v])
    elif op == "not_in":
        expr = ~col.isin(*[F.lit(x) for x in v])
    elif op == "between":
        expr = (col >= F.lit(v[0])) & (col <= F.lit(v[1]))
    else:
        expr = {"==": col.__eq__, "!=": col.__ne__, ">": col.__gt__, ">=": col.__ge__,
                "<": col.__lt__, "<=": col.__le__}[op](F.lit(v))
    return F.coalesce(expr, F.lit(False))  # a condition on a null field is false


def rule_matches(F, rule: Rule, value_of):
    """The rule's date window and all its conditions, on the values as they stand."""
    window = F.col("business_date") >= F.lit(rule.effective_date)
    if rule.expiry_date is not None:
        window = window & (F.col("business_date") <= F.lit(rule.expiry_date))
    cond = window
    for c in rule.conditions:
        cond = cond & _condition(F, c, value_of)
    return cond


def _operate(F, before, adjustment, matches):
    """The value after one adjustment, referencing ``before`` exactly once, so that a chain of
    rules on one field grows linearly (a CASE with ``before`` in two branches would double the
    expression at every rule). A null ``before`` gives null for every operation, ``set`` included."""
    value = F.lit(float(adjustment.value))
    if adjustment.operation == "multiply":
        return before * F.when(matches, value).otherwise(F.lit(1.0))
    if adjustment.operation == "add":
        return before + F.when(matches, value).otherwise(F.lit(0.0))
    # set: before x 0 + v where the rule matches (null stays null), before x 1 + 0 elsewhere
    return before * F.when(matches, F.lit(0.0)).otherwise(F.lit(1.0)) + F.when(matches, value).otherwise(F.lit(0.0))


def clamp(F, field: str, value):
    """Rates, factors and haircut to [0, 1]; amounts to >= 0 (null stays null)."""
    # GREATEST/LEAST skip nulls on both engines, so null is kept explicitly
    bounded = F.greatest(value, F.lit(0.0))
    if field in UNIT_INTERVAL_FIELDS:
        bounded = F.least(bounded, F.lit(1.0))
    return F.when(value.isNotNull(), bounded)


def _out_of_range(F, field: str, value):
    low = value < F.lit(0.0)
    return (low | (value > F.lit(1.0))) if field in UNIT_INTERVAL_FIELDS else low


BASE_PREFIX = "base_"
TRAIL = "adjustment_trail"  # column: the changes the stage's rules made to this row, in order
TRAIL_ENTRY = ("struct<rule_id: string, version: int, step: int, field: string, before: double, "
               "after: double, clamped: boolean>")


def _entry(F, rule_id, version, step: int, field: str, before, after, clamped: bool):
    return F.struct(
        rule_id.alias("rule_id"), version.alias("version"), F.lit(step).alias("step"), F.lit(field).alias("field"),
        before.cast("double").alias("before"), after.cast("double").alias("after"), F.lit(clamped).alias("clamped"),
    )


def _trail(F, entries):
    """Non-null entries as an array (typed, empty when there are none)."""
    if not entries:
        entries = [F.lit(None).cast(TRAIL_ENTRY)]
    return F.filter(F.array(*entries), lambda e: e.isNotNull())


def with_base_values(df, stage: str, extra: dict | None = None):
    """Copy each field the stage's rules may change to ``base_<field>``, so base figures survive
    (and add the ``extra`` columns in the same projection)."""
    F, _ = functions_for(df)
    return df.withColumns({**{BASE_PREFIX + f: F.col(f) for f in STAGE_FIELDS[stage][1] if f in df.columns},
                           **(extra or {})})


def apply_rules(df, rules: list[Rule], stage: str, match_columns: dict[str, str] | None = None, scope=None):
    """``df`` with every changeable field of ``stage`` adjusted by the rules, then clamped, and an
    ``adjustment_trail`` column: one entry per changed value (rule_id, version, step, field,
    before, after, clamped). A clamp is an entry with ``clamped`` true, attributed to the last rule
    that applied to the field.

    An operation on a null field leaves it null (``set`` included). Rules outside their
    effective window for a row's business_date do nothing to it. The whole stage is one
    projection however many rules it has. ``match_columns`` (rule_id -> column) adds, for a
    preview, whether each of those rules matched the row, on the values as it saw them.
    ``scope`` (a boolean Column) limits every rule to the rows where it holds.
    """
    F, _ = functions_for(df)
    changeable = STAGE_FIELDS[stage][1]
    stage_rules = ordered([r for r in rules if r.stage == stage])
    if not stage_rules:
        return df.withColumns({TRAIL: _trail(F, []), **{c: F.lit(False) for c in (match_columns or {}).values()}})

    # 1. one boolean column per rule whose conditions test no changeable field: its match is
    #    fixed by the row, so the chain below refers to a column instead of repeating the test
    fixed = {i: f"_rule_{i}_matches" for i, r in enumerate(stage_rules)
             if not any(c.field in changeable for c in r.conditions)}
    def matches_of(rule, value_of):
        m = rule_matches(F, rule, value_of)
        return m if scope is None else (m & F.coalesce(scope, F.lit(False)))

    flagged = df.withColumns({fixed[i]: matches_of(stage_rules[i], F.col) for i in fixed}) if fixed else df

    # 2. every rule in priority order, each seeing the values the earlier ones left: the value of
    #    a field after each step is a column of its own, so the trail and the clamp refer to it
    current = {name: F.col(name) for name in changeable if name in df.columns}  # chained expressions
    latest = {name: name for name in current}  # field -> column holding its value so far
    step_columns, steps = {}, []

    def value_of(name):
        return current.get(name, F.col(name))

    for i, rule in enumerate(stage_rules):
        if i not in fixed:
            fixed[i] = f"_rule_{i}_matches"
            step_columns[fixed[i]] = matches_of(rule, value_of)
        for adj in rule.adjustments:
            column = f"_step_{len(steps) + 1}"
            current[adj.field] = _operate(F, current[adj.field], adj, F.col(fixed[i]))
            step_columns[column] = current[adj.field]
            steps.append((rule, adj, fixed[i], latest[adj.field], column))
            latest[adj.field] = column
    stepped = flagged.withColumns(step_columns)

    # 3. the trail, then the clamp, once, after the last rule
    entries, last_rule = [], {}  # field -> (rule_id, version) of the last rule that applied to it
    for number, (rule, adj, matched, before, after) in enumerate(steps, start=1):
        rule_id, version = F.lit(rule.rule_id), F.lit(rule.version)
        entries.append(F.when(F.col(matched), F.when(F.col(after) != F.col(before), _entry(
            F, rule_id, version, number, adj.field, F.col(before), F.col(after), False))))
        # every operation keeps a value null exactly when it was null before the stage
        applied = F.col(matched) & F.col(adj.field).isNotNull()
        prev = last_rule.get(adj.field, (F.lit(None).cast("string"), F.lit(None).cast("int")))
        last_rule[adj.field] = (F.when(applied, rule_id).otherwise(prev[0]), F.when(applied, version).otherwise(prev[1]))
    outputs, number = {}, len(steps)
    for name, column in latest.items():
        value = F.col(column)
        clamped = clamp(F, name, value)
        if name in last_rule:
            number += 1
            entries.append(F.when(_out_of_range(F, name, value),
                                  _entry(F, *last_rule[name], number, name, value, clamped, True)))
        outputs[name] = clamped.cast("double")
    index = {r.rule_id: i for i, r in enumerate(stage_rules)}
    flags = {column: F.col(fixed[index[rule_id]]) if rule_id in index else F.lit(False)
             for rule_id, column in (match_columns or {}).items()}
    # most rows match no rule: they skip building the entries (a clamp needs a rule that applied,
    # or a value out of range before the stage, which the contract excludes but is checked too)
    touched = None
    for term in [F.col(c) for c in dict.fromkeys(fixed.values())] + [
            _out_of_range(F, name, F.col(name)) for name in last_rule]:
        touched = term if touched is None else (touched | term)
    trail = F.when(F.coalesce(touched, F.lit(False)), _trail(F, entries)).otherwise(_trail(F, []))
    return stepped.select(*[outputs[c].alias(c) if c in outputs else F.col(c) for c in df.columns],
                          trail.alias(TRAIL), *[v.alias(k) for k, v in flags.items()])


@traced("deal_adjustments")
def adjust_positions(enriched, rules: list[Rule], extra: dict | None = None):
    """Enriched positions after the deal_enrichment rules, with the ``base_`` values kept."""
    return apply_rules(with_base_values(enriched, "deal_enrichment", extra), rules, "deal_enrichment")


def apply_to_adjusted_basis(df, rules: list[Rule], stage: str):
    """Rules applied to the rows of the ``adjusted`` basis only; ``base`` rows pass unchanged."""
    F, _ = functions_for(df)
    return apply_rules(df, rules, stage, scope=F.col("basis") == F.lit("adjusted"))


TRAIL_COLUMNS = [
    "business_date", "entity_id", "stage", "step", "rule_id", "version", "row_key", "source_system", "position_id",
    "component", "field", "value_before", "value_after", "clamped",
]


def _flat_stage_trail(df, stage: str, row_key, keys: dict):
    """One row per entry of ``df``'s adjustment_trail column, keyed by the row it changed."""
    F, _ = functions_for(df)
    entry = "_entry"
    exploded = df.where(F.size(F.col(TRAIL)) > F.lit(0)).select(
        "business_date", "entity_id", row_key.alias("row_key"),
        *[(col if col is not None else F.lit(None).cast("string")).alias(name) for name, col in keys.items()],
        F.explode(F.col(TRAIL)).alias(entry),
    )
    return exploded.select(
        "business_date", "entity_id", F.lit(stage).alias("stage"), F.col(f"{entry}.step").alias("step"),
        F.col(f"{entry}.rule_id").alias("rule_id"), F.col(f"{entry}.version").alias("version"), "row_key",
        *keys, F.col(f"{entry}.field").alias("field"), F.col(f"{entry}.before").alias("value_before"),
        F.col(f"{entry}.after").alias("value_after"), F.col(f"{entry}.clamped").alias("clamped"),
    )


def adjustment_trail(adjusted_positions, components, metrics):
    """The trails of the three stages as one table, one row per changed value (TRAIL_COLUMNS).
    The row key is ``source_system/position_id`` for a position, the component's name for an
    aggregation row, and the entity for the final totals."""
    F, _ = functions_for(adjusted_positions)
    none = None  # a key that the stage's rows do not have
    deal = _flat_stage_trail(
        adjusted_positions, "deal_enrichment", F.concat_ws("/", F.col("source_system"), F.col("position_id")),
        {"source_system": F.col("source_system"), "position_id": F.col("position_id"), "component": none})
    aggregation = _flat_stage_trail(components, "aggregation", F.col("component"),
                                    {"source_system": none, "position_id": none, "component": F.col("component")})
    final = _flat_stage_trail(metrics, "final_calc", F.col("entity_id"),
                              {"source_system": none, "position_id": none, "component": none})
    return deal.unionByName(aggregation).unionByName(final).select(*TRAIL_COLUMNS)

