"""The rule compiler on hand-worked rows, on both engines: every operator, operation, clamp,
null semantics, priority order and date window of adjustment-rules.md."""

from __future__ import annotations

import datetime as dt

import pytest

from regcalc_core.compiler import apply_rules
from regcalc_core.rules import parse_rule

D = dt.date(2024, 6, 28)
SCHEMA = ("position_id string, business_date date, product string, maturity_date date, insured boolean, "
          "performing boolean, counterparty_type string, amount double, haircut double, outflow_rate double, "
          "inflow_rate double, asf_factor double, rsf_factor double")
ROWS = [
    # id, date, product, maturity, insured, performing, cpty, amount, haircut, out, in, asf, rsf
    ("SEC_LONG", D, "SECURITY", dt.date(2030, 1, 1), None, None, None, 100.0, 0.0, None, None, None, 0.05),
    ("LOAN_LONG", D, "LOAN", dt.date(2026, 1, 1), None, False, "RETAIL", 200.0, None, None, None, None, 1.0),
    ("LOAN_SHORT", D, "LOAN", dt.date(2024, 7, 10), None, None, "BANK", 300.0, None, None, 1.0, None, 0.15),
    ("DEP", D, "DEPOSIT", None, True, None, "RETAIL", 400.0, None, 0.05, None, 0.95, None),
    ("DEP_NOCP", D, "DEPOSIT", None, None, None, None, 500.0, None, 0.10, None, 0.90, None),
]


@pytest.fixture(scope="module")
def positions(spark):
    return spark.createDataFrame(ROWS, schema=SCHEMA)


def run(positions, *rules, stage="deal_enrichment"):
    parsed = [parse_rule({"stage": stage, "effective_date": "2024-01-01", **r}) for r in rules]
    return {r["position_id"]: r.asDict() for r in apply_rules(positions, parsed, stage).collect()}


def rule(rule_id="R", conditions=(), adjustments=({"field": "amount", "operation": "multiply", "value": 2},), **kw):
    return {"rule_id": rule_id, "conditions": list(conditions), "adjustments": list(adjustments), **kw}


def doubled(out) -> set[str]:
    return {pid for pid, row in out.items() if row["amount"] == 2 * dict((r[0], r[7]) for r in ROWS)[pid]}


@pytest.mark.parametrize(
    "condition, matched",
    [
        ({"field": "product", "operator": "==", "value": "LOAN"}, {"LOAN_LONG", "LOAN_SHORT"}),
        ({"field": "counterparty_type", "operator": "!=", "value": "RETAIL"}, {"LOAN_SHORT"}),  # null never matches
        ({"field": "maturity_date", "operator": ">", "value": "2026-01-01"}, {"SEC_LONG"}),
        ({"field": "maturity_date", "operator": ">=", "value": "2026-01-01"}, {"SEC_LONG", "LOAN_LONG"}),
        ({"field": "amount", "operator": "<", "value": 300}, {"SEC_LONG", "LOAN_LONG"}),
        ({"field": "amount", "operator": "<=", "value": 300}, {"SEC_LONG", "LOAN_LONG", "LOAN_SHORT"}),
        ({"field": "product", "operator": "in", "value": ["SECURITY", "DEPOSIT"]}, {"SEC_LONG", "DEP", "DEP_NOCP"}),
        ({"field": "counterparty_type", "operator": "not_in", "value": ["BANK"]}, {"LOAN_LONG", "DEP"}),
        ({"field": "amount", "operator": "between", "value": [200, 400]}, {"LOAN_LONG", "LOAN_SHORT", "DEP"}),
        ({"field": "maturity_date", "operator": "is_null"}, {"DEP", "DEP_NOCP"}),
        ({"field": "counterparty_type", "operator": "not_null"}, {"LOAN_LONG", "LOAN_SHORT", "DEP"}),
        ({"field": "insured", "operator": "==", "value": False}, {"SEC_LONG", "LOAN_LONG", "LOAN_SHORT", "DEP_NOCP"}),
        ({"field": "performing", "operator": "==", "value": True}, {"SEC_LONG", "LOAN_SHORT", "DEP", "DEP_NOCP"}),
        ({"field": "product", "operator": "==", "value": "LOAN' OR '1'='1"}, set()),  # a value, not SQL
        ({"field": "product", "operator": "in", "value": ["); DROP TABLE x; --", "__import__('os')"]}, set()),
    ],
    ids=lambda v: v.get("operator") + ":" + str(v.get("value")) if isinstance(v, dict) else None,
)
def test_operators(positions, condition, matched):
    assert doubled(run(positions, rule(conditions=[condition]))) == matched


def test_spec_example_rule(positions):
    out = run(positions, {
        "rule_id": "ADJ_2024_001",
        "conditions": [{"field": "product", "operator": "in", "value": ["SECURITY", "LOAN"]},
                       {"field": "maturity_date", "operator": ">", "value": "2025-01-01"}],
        "adjustments": [{"field": "rsf_factor", "operation": "multiply", "value": 0.95},
                        {"field": "haircut", "operation": "add", "value": 0.05}],
        "effective_date": "2024-01-15", "expiry_date": "2024-12-31",
    })
    assert out["SEC_LONG"]["rsf_factor"] == pytest.approx(0.0475) and out["SEC_LONG"]["haircut"] == pytest.approx(0.05)
    assert out["LOAN_LONG"]["rsf_factor"] == pytest.approx(0.95) and out["LOAN_LONG"]["haircut"] is None
    assert out["LOAN_SHORT"]["rsf_factor"] == pytest.approx(0.15)  # matures before 2025: untouched


def test_operations_and_null_fields_stay_null(positions):
    out = run(positions, rule(adjustments=[
        {"field": "outflow_rate", "operation": "set", "value": 0.3},
        {"field": "asf_factor", "operation": "add", "value": -0.1},
        {"field": "amount", "operation": "add", "value": 5},
    ]))
    assert out["DEP"]["outflow_rate"] == pytest.approx(0.3) and out["SEC_LONG"]["outflow_rate"] is None
    assert out["DEP"]["asf_factor"] == pytest.approx(0.85) and out["LOAN_LONG"]["asf_factor"] is None
    assert out["DEP_NOCP"]["amount"] == pytest.approx(505.0)


# haircut 0 -> 0.9 -> 1.2 and amount down by 350: clamps after the last rule
CLAMPING_RULES = (
    rule("R1", adjustments=[{"field": "haircut", "operation": "add", "value": 0.9},
                            {"field": "amount", "operation": "add", "value": -350}]),
    rule("R2", adjustments=[{"field": "haircut", "operation": "add", "value": 0.3},
                            {"field": "inflow_rate", "operation": "multiply", "value": 3}]),
)


def test_clamps_after_the_last_rule(positions):
    out = run(positions, *CLAMPING_RULES)
    assert out["SEC_LONG"]["haircut"] == 1.0  # 0 + 0.9 + 0.3 = 1.2 -> 1
    assert out["SEC_LONG"]["amount"] == 0.0 and out["LOAN_SHORT"]["amount"] == 0.0 and out["DEP"]["amount"] == 50.0
    assert out["LOAN_SHORT"]["inflow_rate"] == 1.0  # 3.0 -> 1


def test_priority_order_and_later_rules_see_earlier_values(positions):
    first = rule("Z_FIRST", priority=10, adjustments=[{"field": "outflow_rate", "operation": "multiply", "value": 2}])
    second = rule("A_SECOND", priority=20,
                  conditions=[{"field": "outflow_rate", "operator": ">", "value": 0.15}],
                  adjustments=[{"field": "outflow_rate", "operation": "set", "value": 0.5}])
    out = run(positions, second, first)
    assert out["DEP"]["outflow_rate"] == pytest.approx(0.10)  # 0.05 * 2, not above 0.15
    assert out["DEP_NOCP"]["outflow_rate"] == pytest.approx(0.5)  # 0.10 * 2 = 0.2 > 0.15 -> set
    # ties by rule_id: A before B
    a = rule("A", adjustments=[{"field": "amount", "operation": "add", "value": 10}])
    b = rule("B", adjustments=[{"field": "amount", "operation": "multiply", "value": 2}])
    assert run(positions, b, a)["DEP"]["amount"] == pytest.approx((400 + 10) * 2)


def test_date_window(positions):
    later = rule(effective_date="2024-07-01")
    expired = rule(effective_date="2024-01-01", expiry_date="2024-06-27")
    last_day = rule(effective_date="2024-06-28", expiry_date="2024-06-28")
    assert doubled(run(positions, later)) == set()
    assert doubled(run(positions, expired)) == set()
    assert len(doubled(run(positions, last_day))) == len(ROWS)


def test_aggregation_and_final_stages(spark):
    comps = spark.createDataFrame(
        [(D, "LE_UK", "GBP", "OUTFLOWS", 100.0), (D, "LE_UK", "GBP", "INFLOWS", 50.0), (D, "LE_US", "USD", "OUTFLOWS", 10.0)],
        "business_date date, entity_id string, reporting_currency string, component string, amount double")
    out = apply_rules(comps, [parse_rule({
        "rule_id": "ADJ_2024_002", "stage": "aggregation", "effective_date": "2024-06-01",
        "conditions": [{"field": "entity_id", "operator": "==", "value": "LE_UK"},
                       {"field": "component", "operator": "==", "value": "OUTFLOWS"}],
        "adjustments": [{"field": "amount", "operation": "multiply", "value": 1.10}]})], "aggregation").collect()
    assert sorted(r["amount"] for r in out) == pytest.approx([10.0, 50.0, 110.0])
    totals = spark.createDataFrame([(D, "LE_US", "USD", 100.0, 5.0), (D, "LE_UK", "GBP", 200.0, 7.0)],
                                   "business_date date, entity_id string, reporting_currency string, hqla double, rsf double")
    out = apply_rules(totals, [parse_rule({
        "rule_id": "ADJ_2024_003", "stage": "final_calc", "effective_date": "2024-06-28", "expiry_date": "2024-09-30",
        "conditions": [{"field": "reporting_currency", "operator": "==", "value": "USD"}],
        "adjustments": [{"field": "hqla", "operation": "multiply", "value": 0.97}]})], "final_calc").collect()
    assert {r["entity_id"]: r["hqla"] for r in out} == pytest.approx({"LE_US": 97.0, "LE_UK": 200.0})


def trail(out, pid):
    """(rule_id, version, field, before, after, clamped) of a row's trail, in step order."""
    entries = sorted(out[pid]["adjustment_trail"], key=lambda e: e["step"])
    return [(e["rule_id"], e["version"], e["field"], e["before"], e["after"], e["clamped"]) for e in entries]


def test_trail_records_every_changed_value_and_every_clamp(positions):
    out = run(positions, *CLAMPING_RULES)
    # SEC_LONG: haircut 0 -> 0.9 -> 1.2, clamped to 1 (attributed to R2, the last rule on it);
    # amount 100 -> -250, clamped to 0 (R1); inflow_rate is null, so nothing is recorded for it
    assert trail(out, "SEC_LONG") == [
        ("R1", 1, "haircut", 0.0, pytest.approx(0.9), False),
        ("R1", 1, "amount", 100.0, -250.0, False),
        ("R2", 1, "haircut", pytest.approx(0.9), pytest.approx(1.2), False),
        ("R1", 1, "amount", -250.0, 0.0, True),
        ("R2", 1, "haircut", pytest.approx(1.2), 1.0, True),
    ]
    assert trail(out, "LOAN_SHORT") == [
        ("R1", 1, "amount", 300.0, -50.0, False),
        ("R2", 1, "inflow_rate", 1.0, 3.0, False),
        ("R1", 1, "amount", -50.0, 0.0, True),
        ("R2", 1, "inflow_rate", 3.0, 1.0, True),
    ]
    assert trail(out, "DEP") == [("R1", 1, "amount", 400.0, 50.0, False)]  # in range: no clamp


def test_trail_has_no_entry_for_a_value_the_rule_left_as_it_was(positions):
    out = run(positions,
              rule("SAME", conditions=[{"field": "product", "operator": "==", "value": "DEPOSIT"}],
                   adjustments=[{"field": "outflow_rate", "operation": "set", "value": 0.05},
                                {"field": "amount", "operation": "multiply", "value": 1}]),
              rule("LATE", effective_date="2024-07-01"))
    assert trail(out, "DEP") == []  # 0.05 set to 0.05, amount x 1; LATE not yet effective
    assert trail(out, "DEP_NOCP") == [("SAME", 1, "outflow_rate", 0.10, 0.05, False)]
    assert trail(out, "SEC_LONG") == []  # not a deposit


def test_trail_without_rules_is_empty(positions):
    assert all(row["adjustment_trail"] == [] for row in run(positions).values())


def test_trail_of_the_adjusted_basis_only(spark):
    from regcalc_core.compiler import apply_to_adjusted_basis

    comps = spark.createDataFrame(
        [(D, "LE_UK", "base", "OUTFLOWS", 100.0), (D, "LE_UK", "adjusted", "OUTFLOWS", 100.0)],
        "business_date date, entity_id string, basis string, component string, amount double")
    out = apply_to_adjusted_basis(comps, [parse_rule({
        "rule_id": "ADD_ON", "stage": "aggregation", "effective_date": "2024-06-01", "version": 3,
        "adjustments": [{"field": "amount", "operation": "add", "value": 25}]})], "aggregation").collect()
    by_basis = {r["basis"]: r for r in out}
    assert by_basis["base"]["amount"] == 100.0 and by_basis["base"]["adjustment_trail"] == []
    [entry] = by_basis["adjusted"]["adjustment_trail"]
    assert (entry["rule_id"], entry["version"], entry["field"], entry["before"], entry["after"], entry["clamped"]) == \
        ("ADD_ON", 3, "amount", 100.0, 125.0, False)
