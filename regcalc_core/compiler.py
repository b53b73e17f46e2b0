"""The rule compiler: approved rules of one stage applied to a DataFrame (adjustment-rules.md).

Rule values are always bound as literals (``F.lit``), never spliced into SQL text, so a value
that looks like SQL or code is compared as the plain value it is. The rules of a stage compose
into a few projections: each rule sees the values the earlier ones left. Within a projection the
value of a field after each step is an expression over the one before it; a new projection
starts every ``STEPS_PER_PROJECTION`` steps (and before a rule that tests a field the current
projection changed), so the depth of every expression is bounded however many rules a stage has
(the SQL planners of sqlglot, sqlframe, DuckDB and Spark recurse on it).
"""

from __future__ import annotations

from regcalc_core import conditions
from regcalc_core.dataframes import functions_for, is_sqlframe
from regcalc_core.rules import STAGE_FIELDS, UNIT_INTERVAL_FIELDS, Rule


def ordered(rules: list[Rule]) -> list[Rule]:
    """Priority order: lower first, ties by rule_id."""
    return sorted(rules, key=lambda r: (r.priority, r.rule_id))


def rule_matches(F, rule: Rule, value_of):
    """The rule's date window and all its conditions, on the values as they stand."""
    window = F.col("business_date") >= F.lit(rule.effective_date)
    if rule.expiry_date is not None:
        window = window & (F.col("business_date") <= F.lit(rule.expiry_date))
    cond = window
    for c in rule.conditions:
        cond = cond & conditions.column(F, c, value_of(c.field))
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


# steps on one field whose chained expressions share a projection (a match expanded in place
# counts its steps too: see _chain). A larger value deepens the expressions the engines expand,
# a smaller one adds projections, and sqlframe copies the whole plan at each. Measured on DuckDB,
# benchmark rule sets on small frames (compile = apply_rules and SQL generation, all 3 stages):
# 1,000 rules: 32 -> 82 s compile, 1.11 MB SQL; 64 -> 62 s, 1.00 MB; 128 -> 49 s, 0.94 MB but
# twice the run time (DuckDB's expansion); 250 rules at 32: 10 s, 245 KB; 50 rules: 2 s, 67 KB.
STEPS_PER_PROJECTION = 64

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


def _chain(df, stage_rules: list[Rule], changeable, fixed: dict[int, str], matches_of):
    """``df`` with one column per step (``_step_<n>``: the field's value after it) and one per
    rule whose match depends on the values as the earlier rules left them (added to ``fixed``,
    rule index -> match column, which then names the match column of every rule), and the steps
    as (rule, adjustment, match column, column before, column after).

    Within a projection a step's value is an expression over the previous step of its field (as
    a lateral column reference on sqlframe, nested on Spark), so its expanded depth grows with the
    steps. A rule that tests a field changed earlier in the projection has a match that contains
    that field's value, so the value it changes also grows by the size of that match. A new
    projection, whose values start from the columns of the previous one, begins before the size
    of a value would pass STEPS_PER_PROJECTION: expressions stay shallow (every SQL planner
    recurses on them) with few projections."""
    F, _ = functions_for(df)
    # sqlframe keeps a reference to a column of the same projection as a name (DuckDB expands it
    # when binding), so a step refers to the previous one and the SQL grows linearly; Spark turns
    # each such lateral reference into a Project of its own, so there a step nests the previous
    # step's expression (and a match that depends on the chain is inlined) instead
    lateral = is_sqlframe(df)
    columns = {name: name for name in changeable if name in df.columns}  # field -> its latest column
    current = {name: F.col(c) for name, c in columns.items()}  # field -> its value in this projection
    size = dict.fromkeys(columns, 0)  # field -> steps in its value in this projection, matches expanded
    pending, steps = {}, []

    def flush():
        nonlocal df, pending
        if pending:
            df = df.withColumns(pending)
            current.update({name: F.col(c) for name, c in columns.items()})
            size.update(dict.fromkeys(size, 0))
            pending = {}

    def match_size(i, rule):
        return 0 if i in fixed else sum(size.get(c.field, 0) for c in rule.conditions)

    def grown(i, rule):
        sizes = dict(size)
        for adj in rule.adjustments:
            sizes[adj.field] += 1 + match_size(i, rule)
        return max(sizes.values())

    for i, rule in enumerate(stage_rules):
        if grown(i, rule) > STEPS_PER_PROJECTION:
            flush()
        matched = match_size(i, rule)
        condition = F.col(fixed[i]) if i in fixed else None
        if i not in fixed:
            fixed[i] = f"_rule_{i}_matches"
            pending[fixed[i]] = matches_of(rule, lambda name: current.get(name, F.col(name)))
            condition = F.col(fixed[i]) if lateral else pending[fixed[i]]
        for adj in rule.adjustments:
            column = f"_step_{len(steps) + 1}"
            pending[column] = _operate(F, current[adj.field], adj, condition)
            current[adj.field] = F.col(column) if lateral else pending[column]
            size[adj.field] += 1 + matched
            steps.append((rule, adj, fixed[i], columns[adj.field], column))
            columns[adj.field] = column
    flush()
    return df, steps


def _last_applied(F, applied: list[tuple]):
    """(rule_id, version) of the last rule that applied, from [(applied, rule_id, version)] in
    order of application; null when none did. One flat COALESCE, not a CASE nested per rule."""
    last = list(reversed(applied))
    return (F.coalesce(*[F.when(a, r) for a, r, _ in last], F.lit(None).cast("string")),
            F.coalesce(*[F.when(a, v) for a, _, v in last], F.lit(None).cast("int")))


def _any(terms: list):
    """The OR of ``terms`` as a balanced tree (depth log n, not n); None for no terms."""
    while len(terms) > 1:
        terms = [terms[k] | terms[k + 1] if k + 1 < len(terms) else terms[k] for k in range(0, len(terms), 2)]
    return terms[0] if terms else None


def apply_rules(df, rules: list[Rule], stage: str, match_columns: dict[str, str] | None = None, scope=None):
    """``df`` with every changeable field of ``stage`` adjusted by the rules, then clamped, and an
    ``adjustment_trail`` column: one entry per changed value (rule_id, version, step, field,
    before, after, clamped). A clamp is an entry with ``clamped`` true, attributed to the last rule
    that applied to the field.

    An operation on a null field leaves it null (``set`` included). Rules outside their
    effective window for a row's business_date do nothing to it. The stage is a few projections
    however many rules it has (see ``_chain``). ``match_columns`` (rule_id -> column) adds, for a
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
    stepped, steps = _chain(flagged, stage_rules, changeable, fixed, matches_of)
    latest = {name: name for name in changeable if name in df.columns}  # field -> column holding its value
    for _, adj, _, _, after in steps:
        latest[adj.field] = after

    # 3. the trail, then the clamp, once, after the last rule
    entries, applied_by = [], {}  # field -> [(applied, rule_id, version)] of the rules that may apply to it
    for number, (rule, adj, matched, before, after) in enumerate(steps, start=1):
        rule_id, version = F.lit(rule.rule_id), F.lit(rule.version)
        entries.append(F.when(F.col(matched), F.when(F.col(after) != F.col(before), _entry(
            F, rule_id, version, number, adj.field, F.col(before), F.col(after), False))))
        # every operation keeps a value null exactly when it was null before the stage
        applied = F.col(matched) & F.col(adj.field).isNotNull()
        applied_by.setdefault(adj.field, []).append((applied, rule_id, version))
    outputs, number = {}, len(steps)
    for name, column in latest.items():
        value = F.col(column)
        clamped = clamp(F, name, value)
        if name in applied_by:
            number += 1
            entries.append(F.when(_out_of_range(F, name, value),
                                  _entry(F, *_last_applied(F, applied_by[name]), number, name, value, clamped, True)))
        outputs[name] = clamped.cast("double")
    index = {r.rule_id: i for i, r in enumerate(stage_rules)}
    flags = {column: F.col(fixed[index[rule_id]]) if rule_id in index else F.lit(False)
             for rule_id, column in (match_columns or {}).items()}
    # most rows match no rule: they skip building the entries (a clamp needs a rule that applied,
    # or a value out of range before the stage, which the contract excludes but is checked too)
    touched = _any([F.col(c) for c in dict.fromkeys(fixed.values())] +
                   [_out_of_range(F, name, F.col(name)) for name in applied_by])
    trail = F.when(F.coalesce(touched, F.lit(False)), _trail(F, entries)).otherwise(_trail(F, []))
    return stepped.select(*[outputs[c].alias(c) if c in outputs else F.col(c) for c in df.columns],
                          trail.alias(TRAIL), *[v.alias(k) for k, v in flags.items()])


def apply_to_adjusted_basis(df, rules: list[Rule], stage: str, match_columns: dict[str, str] | None = None):
    """Rules applied to the rows of the ``adjusted`` basis only; ``base`` rows pass unchanged."""
    F, _ = functions_for(df)
    return apply_rules(df, rules, stage, match_columns, scope=F.col("basis") == F.lit("adjusted"))
