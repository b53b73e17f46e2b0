"""One condition semantics for the factor tables and the adjustment rules, with three back ends.

A condition tests one field: ``field operator value``. Its meaning is the same wherever it is
evaluated:

- a boolean flag of the landing contract that is null takes its contract default first
  (landing-zone.md: ``performing`` null means true; ``insured``, ``stable_relationship`` and
  ``operational`` null mean false);
- ``is_null`` / ``not_null`` test the (defaulted) value for null;
- every other operator on a null value is false, never null;
- ``between`` includes both bounds.

Back ends: ``column`` (a PySpark-API Column, values bound as literals, for the rule compiler),
``sql`` (Spark SQL text, for the versioned factor tables, whose values are trusted data) and
``holds`` (plain Python on one value, for explanations and for deciding which partitions a rule
can touch). The factor tables write conditions as a ``when`` mapping; ``from_when`` reads it.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

# Contract defaults of the boolean flags (landing-zone.md).
FLAG_DEFAULTS = {"performing": True, "insured": False, "stable_relationship": False, "operational": False}
OPERATORS = ("==", "!=", ">", ">=", "<", "<=", "in", "not_in", "between", "is_null", "not_null")
_COMPARE = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt,
            "<=": operator.le}
# the factor tables' bound keys: {"days_to_maturity": {"ge": 30, "lt": 365}}
_WHEN_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: object = None


def from_when(when: dict) -> tuple[Condition, ...]:
    """A factor-table row's ``when`` mapping as conditions (all must hold): a list is ``in``, a
    mapping of ``ge``/``gt``/``le``/``lt`` is one bound each, anything else is ``==``."""
    out = []
    for field, expected in when.items():
        if isinstance(expected, list):
            out.append(Condition(field, "in", tuple(expected)))
        elif isinstance(expected, dict):
            out += [Condition(field, _WHEN_BOUNDS[op], bound) for op, bound in expected.items()]
        else:
            out.append(Condition(field, "==", expected))
    return tuple(out)


# --- Python ---------------------------------------------------------------------------------

def holds(cond: Condition, value) -> bool:
    """Whether the condition holds for ``value`` (the field's value, null as None)."""
    if value is None:
        value = FLAG_DEFAULTS.get(cond.field)
    op, v = cond.operator, cond.value
    if op == "is_null":
        return value is None
    if op == "not_null":
        return value is not None
    if value is None:
        return False
    if op == "in":
        return value in v
    if op == "not_in":
        return value not in v
    if op == "between":
        return v[0] <= value <= v[1]
    return bool(_COMPARE[op](value, v))


# --- PySpark-API Column -----------------------------------------------------------------------

def column(F, cond: Condition, value):
    """The condition on the Column ``value`` (the field as it stands), as a non-null boolean
    Column. Values are bound as literals (``F.lit``), never spliced into SQL text."""
    if cond.field in FLAG_DEFAULTS:
        value = F.coalesce(value, F.lit(FLAG_DEFAULTS[cond.field]))
    op, v = cond.operator, cond.value
    if op == "is_null":
        return value.isNull()
    if op == "not_null":
        return value.isNotNull()
    if op == "in":
        expr = value.isin(*[F.lit(x) for x in v])
    elif op == "not_in":
        expr = ~value.isin(*[F.lit(x) for x in v])
    elif op == "between":
        expr = (value >= F.lit(v[0])) & (value <= F.lit(v[1]))
    else:
        expr = _COMPARE[op](value, F.lit(v))
    return F.coalesce(expr, F.lit(False))


# --- Spark SQL text -----------------------------------------------------------------------------

def sql_literal(value) -> str:
    """A Python value as a Spark SQL literal (numbers as DOUBLE)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return f"CAST({float(value)!r} AS DOUBLE)"
    # Spark SQL escapes with a backslash ('a''b' would be two adjacent literals, 'ab')
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql(cond: Condition) -> str:
    """The condition as Spark SQL over the column named ``cond.field``: a non-null boolean."""
    col = f"`{cond.field}`"
    if cond.field in FLAG_DEFAULTS:
        col = f"COALESCE({col}, {sql_literal(FLAG_DEFAULTS[cond.field])})"
    op, v = cond.operator, cond.value
    if op == "is_null":
        return f"({col} IS NULL)"
    if op == "not_null":
        return f"({col} IS NOT NULL)"
    if op in ("in", "not_in"):
        expr = f"{col} {'NOT ' if op == 'not_in' else ''}IN ({', '.join(sql_literal(x) for x in v)})"
    elif op == "between":
        expr = f"{col} BETWEEN {sql_literal(v[0])} AND {sql_literal(v[1])}"
    else:
        expr = f"{col} {'=' if op == '==' else op} {sql_literal(v)}"
    return f"COALESCE({expr}, FALSE)"


def all_sql(conditions) -> str:
    """Every condition AND-ed, as Spark SQL (TRUE for none)."""
    return " AND ".join(sql(c) for c in conditions) or "TRUE"
