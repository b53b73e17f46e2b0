"""Rule volume (issue 11, item 8): hundreds of rules on one field, and 1,000 rules across the three
stages, compile (no RecursionError) and give exactly what applying the rules one after another
gives. The expected values and trail come from a plain-Python reading of adjustment-rules.md
('Semantics'), written here independently of the compiler."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from regcalc_core.compiler import TRAIL, apply_rules
from regcalc_core.rules import STAGE_FIELDS, parse_rule

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the benchmarks' rule sets
from benchmarks.rule_sets import benchmark_rules  # noqa: E402

D = dt.date(2024, 6, 28)
UNIT = {"haircut", "outflow_rate", "inflow_rate", "asf_factor", "rsf_factor"}
FLAGS = {"insured": False, "stable_relationship": False, "operational": False, "performing": True}
SPARK_TYPES = {"string": "string", "number": "double", "date": "date", "boolean": "boolean"}


# -- the reference: each rule in priority order on the values the earlier ones left -----------

def _holds(cond, values) -> bool:
    v = values.get(cond.field)
    if v is None and cond.field in FLAGS:
        v = FLAGS[cond.field]
    if cond.operator == "is_null":
        return v is None
    if cond.operator == "not_null":
        return v is not None
    if v is None:
        return False
    x = cond.value
    return {"==": lambda: v == x, "!=": lambda: v != x, ">": lambda: v > x, ">=": lambda: v >= x,
            "<": lambda: v < x, "<=": lambda: v <= x, "in": lambda: v in x, "not_in": lambda: v not in x,
            "between": lambda: x[0] <= v <= x[1]}[cond.operator]()


def reference(rows: list[dict], rules, stage: str) -> list[tuple[dict, list[tuple]]]:
    """Per row: the values after the stage and its trail (rule_id, version, step, field, before,
    after, clamped), worked out one rule at a time."""
    changeable = [f for f in STAGE_FIELDS[stage][1] if f in rows[0]]
    stage_rules = sorted((r for r in rules if r.stage == stage), key=lambda r: (r.priority, r.rule_id))
    fields_with_steps = [f for f in changeable if any(a.field == f for r in stage_rules for a in r.adjustments)]
    total_steps = sum(len(r.adjustments) for r in stage_rules)
    out = []
    for row in rows:
        values, trail, last, step = dict(row), [], {}, 0
        for rule in stage_rules:
            matched = (rule.effective_date <= values["business_date"]
                       and (rule.expiry_date is None or values["business_date"] <= rule.expiry_date)
                       and all(_holds(c, values) for c in rule.conditions))
            for adj in rule.adjustments:
                step += 1
                before = values[adj.field]
                if not matched or before is None:
                    continue
                after = {"multiply": lambda: before * adj.value, "add": lambda: before + adj.value,
                         "set": lambda: adj.value}[adj.operation]()
                values[adj.field] = after
                last[adj.field] = (rule.rule_id, rule.version)
                if after != before:
                    trail.append((rule.rule_id, rule.version, step, adj.field, before, after, False))
        for number, name in enumerate(fields_with_steps, start=total_steps + 1):
            v = values[name]
            if v is None:
                continue
            bounded = min(max(v, 0.0), 1.0) if name in UNIT else max(v, 0.0)
            if bounded != v:
                trail.append((*last.get(name, (None, None)), number, name, v, bounded, True))
            values[name] = bounded
        out.append((values, trail))
    return out


def compiled(spark, rows: list[dict], rules, stage: str) -> list[tuple[dict, list[tuple]]]:
    """The same, through the compiler on the engine."""
    testable = STAGE_FIELDS[stage][0]
    names = [n for n in testable if n in rows[0]] + [n for n in rows[0] if n not in testable]
    schema = ", ".join(f"{n} {SPARK_TYPES[testable.get(n, 'string')]}" for n in names)
    df = spark.createDataFrame([tuple(r[n] for n in names) for r in rows], schema=schema)
    got = {}
    for row in apply_rules(df, rules, stage).collect():
        d = row.asDict(recursive=True)
        trail = [(e["rule_id"], e["version"], e["step"], e["field"], e["before"], e["after"], e["clamped"])
                 for e in d.pop(TRAIL)]
        got[d["row_id"]] = (d, sorted(trail, key=lambda e: e[2]))
    return [got[r["row_id"]] for r in rows]


def assert_same(expected, actual, fields):
    for (want, want_trail), (got, got_trail) in zip(expected, actual, strict=True):
        assert {f: got[f] for f in fields} == {f: want[f] for f in fields}, got["row_id"]
        assert got_trail == want_trail, got["row_id"]


# -- 300 rules on one field, on both engines ------------------------------------------------

def one_field_rules(n: int) -> list:
    """``n`` rules on ``amount`` (plus a few on ``outflow_rate`` to be clamped): no condition,
    a fixed condition (product), and conditions on ``amount`` itself, which each see the value
    the earlier rules left; multiply, add and set; priorities that interleave the rule ids."""
    raws = []
    for k in range(n):
        conditions = [
            [],
            [{"field": "product", "operator": "==", "value": "LOAN"}],
            [{"field": "amount", "operator": ">", "value": 1000.5 + k}],
            [{"field": "amount", "operator": "between", "value": [10.0, 5000.0]},
             {"field": "product", "operator": "in", "value": ["DEPOSIT", "LOAN"]}],
        ][k % 4]
        if k % 50 == 7:
            adjustment = {"field": "amount", "operation": "set", "value": 900.0 + k}
        elif k % 3 == 0:
            adjustment = {"field": "amount", "operation": "multiply", "value": [1.01, 0.995, 1.003][k % 9 // 3]}
        else:
            adjustment = {"field": "amount", "operation": "add", "value": [-7.5, 3.25, -1.0, 12.0][k % 4]}
        adjustments = [adjustment]
        if k % 60 == 5:
            adjustments.append({"field": "outflow_rate", "operation": "add", "value": 0.4})
        raws.append({"rule_id": f"VOL_{k:03d}", "stage": "deal_enrichment", "effective_date": "2024-01-01",
                     "priority": 100 + (k * 7) % 5, "conditions": conditions, "adjustments": adjustments})
    return [parse_rule(r) for r in raws]


ONE_FIELD_ROWS = [
    {"row_id": "LOAN_BIG", "business_date": D, "product": "LOAN", "amount": 2_000_000.0, "outflow_rate": 0.5},
    {"row_id": "LOAN_SMALL", "business_date": D, "product": "LOAN", "amount": 40.0, "outflow_rate": None},
    {"row_id": "DEP_MID", "business_date": D, "product": "DEPOSIT", "amount": 1200.0, "outflow_rate": 0.1},
    {"row_id": "SEC_TINY", "business_date": D, "product": "SECURITY", "amount": 3.0, "outflow_rate": 0.0},
    {"row_id": "NULL_AMOUNT", "business_date": D, "product": "LOAN", "amount": None, "outflow_rate": 0.05},
]


def test_300_rules_on_one_field_as_applied_one_after_another(spark):
    rules = one_field_rules(300)
    expected = reference(ONE_FIELD_ROWS, rules, "deal_enrichment")
    # the reference is not trivial: every kind of rule changes something, a clamp is recorded
    trails = [t for _, t in expected]
    assert len(trails[0]) > 200 and any(e[6] for t in trails for e in t)
    assert {e[0] for t in trails for e in t if e[0] and int(e[0][4:]) % 4 == 2}, "a condition on the changed field matched"
    assert expected[4][0]["amount"] is None and not [e for e in trails[4] if e[3] == "amount"]
    assert_same(expected, compiled(spark, ONE_FIELD_ROWS, rules, "deal_enrichment"), ["amount", "outflow_rate"])


# -- 1,000 rules across the three stages (the benchmark's mix), on DuckDB ---------------------

def deal_rows() -> list[dict]:
    products = ["LOAN", "MORTGAGE", "SECURITY", "DEPOSIT", "REVERSE_REPO", "BORROWING", "ISSUED_DEBT", "CASH"]
    counterparties = ["NON_FINANCIAL_CORPORATE", "RETAIL", "SMALL_BUSINESS", "BANK", "OTHER_FINANCIAL", "SOVEREIGN"]
    currencies = ["USD", "EUR", "GBP", "JPY", "CHF"]
    rows = []
    for i in range(24):
        row = dict.fromkeys(STAGE_FIELDS["deal_enrichment"][0])
        row.update({
            "row_id": f"P{i:02d}", "position_id": f"P{i:02d}", "source_system": "S", "entity_id": f"LE_{i % 20 + 1:03d}",
            "product": products[i % 8], "currency": currencies[i % 5], "counterparty_type": counterparties[i % 6],
            "business_date": D, "maturity_date": D + dt.timedelta(days=9 * i), "days_to_maturity": 9.0 * i,
            "insured": True if i % 7 == 0 else None, "performing": False if i % 5 == 0 else None,
            "security_hqla_level": "L2A" if i % 2 else None, "balance": 1e6 * (i + 1),
            "amount": 7e6 if i % 6 == 5 else 1e5 * (i + 1), "haircut": 0.15 if i % 2 else None,
            "outflow_rate": 0.1 if i % 3 else None, "inflow_rate": 0.5 if i % 4 == 1 else None,
            "asf_factor": 0.9 if i % 2 == 0 else None, "rsf_factor": 0.65 if i % 3 != 2 else 0.98,
        })
        rows.append(row)
    return rows


COMPONENTS = ["HQLA_L1", "HQLA_L2A", "HQLA_L2B_RMBS", "HQLA_L2B_OTHER", "OUTFLOWS", "INFLOWS", "ASF", "RSF"]
ENTITIES = [f"LE_{i:03d}" for i in range(1, 21)]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF"]
STAGE_ROWS = {
    "deal_enrichment": deal_rows,
    "aggregation": lambda: [{"row_id": f"{e}/{c}", "business_date": D, "entity_id": e, "component": c,
                             "reporting_currency": CURRENCIES[k % 5], "amount": 1000.0 * (k + 1) + j}
                            for k, e in enumerate(ENTITIES) for j, c in enumerate(COMPONENTS)],
    "final_calc": lambda: [{"row_id": e, "business_date": D, "entity_id": e, "reporting_currency": CURRENCIES[k % 5],
                            "hqla": 100.0 + k, "total_outflows": 80.0, "total_inflows": 30.0, "asf": 500.0, "rsf": 400.0}
                           for k, e in enumerate(ENTITIES)],
}


@pytest.mark.parametrize("stage", list(STAGE_ROWS))
def test_1000_rules_across_the_stages_compile_and_apply(duckdb_engine, stage):
    rules = [parse_rule(r) for r in benchmark_rules(1000)]
    assert len(rules) == 1000 and {r.stage for r in rules} == set(STAGE_ROWS)
    rows = STAGE_ROWS[stage]()
    expected = reference(rows, rules, stage)
    assert sum(len(t) for _, t in expected) > len(rows), "the rules change the rows"
    actual = compiled(duckdb_engine.session(), rows, rules, stage)
    assert_same(expected, actual, [f for f in STAGE_FIELDS[stage][1] if f in rows[0]])
