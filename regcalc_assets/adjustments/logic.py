"""The rule compiler: approved rules of one stage applied to a DataFrame (adjustment-rules.md).

Rule values are always bound as literals (``F.lit``), never spliced into SQL text, so a value
that looks like SQL or code is compared as the plain value it is. All rules of a stage compose
into one projection: each rule sees the values the earlier ones left, and a stage costs one
DataFrame operation however many rules it has.
"""

from __future__ import annotations

from regcalc_assets.adjustments.model import STAGE_FIELDS, UNIT_INTERVAL_FIELDS, Rule
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


def _operate(F, current, adjustment):
    value = F.lit(adjustment.value)
    if adjustment.operation == "multiply":
        return current * value
    if adjustment.operation == "add":
        return current + value
    return value  # set


def clamp(F, field: str, value):
    """Rates, factors and haircut to [0, 1]; amounts to >= 0 (null stays null)."""
    # GREATEST/LEAST skip nulls on both engines, so null is kept explicitly
    bounded = F.greatest(value, F.lit(0.0))
    if field in UNIT_INTERVAL_FIELDS:
        bounded = F.least(bounded, F.lit(1.0))
    return F.when(value.isNotNull(), bounded)


BASE_PREFIX = "base_"


def with_base_values(df, stage: str):
    """Copy each field the stage's rules may change to ``base_<field>``, so base figures survive."""
    F, _ = functions_for(df)
    return df.withColumns({BASE_PREFIX + f: F.col(f) for f in STAGE_FIELDS[stage][1] if f in df.columns})


def apply_rules(df, rules: list[Rule], stage: str):
    """``df`` with every changeable field of ``stage`` adjusted by the rules, then clamped.

    An operation on a null field leaves it null (``set`` included). Rules outside their
    effective window for a row's business_date do nothing to it.
    """
    F, _ = functions_for(df)
    changeable = STAGE_FIELDS[stage][1]
    current = {name: F.col(name) for name in changeable if name in df.columns}

    def value_of(name):
        return current.get(name, F.col(name))

    for rule in ordered([r for r in rules if r.stage == stage]):
        matches = rule_matches(F, rule, value_of)
        for adj in rule.adjustments:
            before = current[adj.field]
            current[adj.field] = F.when(matches & before.isNotNull(), _operate(F, before, adj)).otherwise(before)
    if not rules:
        return df
    return df.withColumns({name: clamp(F, name, expr).cast("double") for name, expr in current.items()})


def apply_to_adjusted_basis(df, rules: list[Rule], stage: str):
    """Rules applied to the rows of the ``adjusted`` basis only; ``base`` rows pass unchanged."""
    if not rules:
        return df
    F, _ = functions_for(df)
    adjusted = F.col("basis") == F.lit("adjusted")
    return df.where(~adjusted).unionByName(apply_rules(df.where(adjusted), rules, stage))
