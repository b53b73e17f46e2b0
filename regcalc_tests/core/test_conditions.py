"""One condition semantics: the Python, Column and SQL back ends agree on every operator, on null
values and on the contract defaults of the flags, on both engines."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from regcalc_core import conditions
from regcalc_core.conditions import Condition, from_when, holds

# field -> values to test it on (None included), and the Arrow type of the column
FIELDS = {
    "amount": (pa.float64(), [None, -1.0, 0.0, 5.0, 10.0, 250.5]),
    "product": (pa.string(), [None, "LOAN", "DEPOSIT", "it's"]),
    "maturity_date": (pa.date32(), [None, dt.date(2024, 6, 28), dt.date(2025, 1, 1)]),
    "insured": (pa.bool_(), [None, True, False]),      # a flag: null means false
    "performing": (pa.bool_(), [None, True, False]),   # a flag: null means true
    "encumbered": (pa.bool_(), [None, True, False]),   # derived, not a flag: null stays null
}
CASES = [
    Condition("amount", ">", 5.0), Condition("amount", ">=", 5.0), Condition("amount", "<", 5.0),
    Condition("amount", "<=", 0.0), Condition("amount", "==", 10.0), Condition("amount", "!=", 10.0),
    Condition("amount", "between", (0.0, 10.0)), Condition("amount", "is_null"), Condition("amount", "not_null"),
    Condition("product", "in", ("LOAN", "it's")), Condition("product", "not_in", ("LOAN",)),
    Condition("product", "==", "DEPOSIT"), Condition("product", "is_null"),
    Condition("maturity_date", "<", dt.date(2024, 12, 31)), Condition("maturity_date", "is_null"),
    Condition("insured", "==", False), Condition("insured", "is_null"), Condition("performing", "==", True),
    Condition("performing", "!=", True), Condition("encumbered", "==", False), Condition("encumbered", "not_null"),
]


def _frame(engine, field):
    kind, values = FIELDS[field]
    table = pa.table({"row": pa.array(range(len(values)), pa.int64()), field: pa.array(values, kind)})
    return engine.from_arrow(table), values


@pytest.mark.parametrize("cond", CASES, ids=lambda c: f"{c.field} {c.operator} {c.value}")
def test_back_ends_agree(engine, cond):
    df, values = _frame(engine, cond.field)
    from regcalc_core.dataframes import functions_for

    F, _ = functions_for(df)
    got = df.select("row", conditions.column(F, cond, F.col(cond.field)).alias("by_column"),
                    F.expr(conditions.sql(cond)).alias("by_sql")).collect()
    by_row = {r["row"]: (r["by_column"], r["by_sql"]) for r in got}
    expected = [holds(cond, v) for v in values]
    assert [by_row[i][0] for i in range(len(values))] == expected
    assert [by_row[i][1] for i in range(len(values))] == expected


def test_flag_defaults_and_nulls_in_python():
    assert holds(Condition("performing", "==", True), None)        # null performing means true
    assert not holds(Condition("insured", "==", True), None)       # null insured means false
    assert not holds(Condition("insured", "is_null"), None)        # a flag is never null after its default
    assert holds(Condition("encumbered", "is_null"), None)
    assert not holds(Condition("amount", "!=", 1.0), None)         # any comparison on null is false
    assert not holds(Condition("amount", "not_in", (1.0,)), None)


def test_factor_table_when_mapping():
    conds = from_when({"product": ["LOAN", "MORTGAGE"], "days_to_maturity": {"ge": 30, "lt": 365}, "insured": True})
    assert conds == (Condition("product", "in", ("LOAN", "MORTGAGE")), Condition("days_to_maturity", ">=", 30),
                     Condition("days_to_maturity", "<", 365), Condition("insured", "==", True))
    assert conditions.all_sql(()) == "TRUE"
