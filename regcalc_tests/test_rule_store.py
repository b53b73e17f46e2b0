"""The governed rule store on the embedded DuckDB file and on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from regcalc_core.rules import RuleValidationError
from regcalc_resources.rule_store import DuckDBRuleStore, GovernanceError, PostgresRuleStore


@pytest.fixture(params=["duckdb", "postgres"])
def store(request, tmp_path):
    if request.param == "duckdb":
        return DuckDBRuleStore(path=str(tmp_path / "rules.duckdb"))
    import psycopg

    uri = request.getfixturevalue("postgres_uri")
    with psycopg.connect(uri, autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS rule_events")
    return PostgresRuleStore(dsn=uri)


def golden_rules(golden) -> list[dict]:
    return yaml.safe_load(Path(golden / "rules.yaml").read_text())


def test_four_eyes_and_versions(store, golden):
    rules = golden_rules(golden)
    store.submit(rules[:1] + rules[2:], "analyst_a")
    store.submit(rules[1:2], "analyst_b")
    assert store.approved_rules() == []
    with pytest.raises(GovernanceError, match="analyst_a submitted version 1 and cannot approve it"):
        store.approve("ADJ_2024_001", "analyst_a")
    for rule_id in ("ADJ_2024_001", "ADJ_2024_002", "ADJ_2024_003"):
        store.approve(rule_id, "risk_admin")
    with pytest.raises(GovernanceError, match="not awaiting approval"):
        store.approve("ADJ_2024_001", "risk_head")
    approved = store.approved_rules()
    assert [(r.rule_id, r.version, r.approval["user"]) for r in approved] == [
        ("ADJ_2024_001", 1, "risk_admin"), ("ADJ_2024_002", 1, "risk_admin"), ("ADJ_2024_003", 1, "risk_admin")]
    assert approved[0].submitted_by == "analyst_a"


def test_as_of_reproduces_the_rules_in_force(store, golden):
    rule = golden_rules(golden)[1]
    store.submit([rule], "analyst_b")
    store.approve(rule["rule_id"], "risk_admin")
    store.submit([{**rule, "adjustments": [{"field": "amount", "operation": "multiply", "value": 1.2}]}], "analyst_b")
    store.approve(rule["rule_id"], "risk_head")
    store.retire(rule["rule_id"], "risk_head")
    history = store.history(rule["rule_id"])
    # the moments of the recorded events themselves, not wall-clock readings between them: as of
    # an event's own time, that event is in force
    t1, t2, t3, t4 = history[0].approved_at, history[1].submitted_at, history[1].approved_at, history[2].submitted_at
    assert t1 < t2 < t3 < t4
    factor = [[r.adjustments[0].value for r in store.approved_rules(t)] for t in (t1, t2, t3, t4)]
    assert factor == [[1.10], [1.10], [1.2], []]  # v2 submitted but not approved at t2: v1 still in force
    assert [(v.version, v.status) for v in history] == [(1, "approved"), (2, "approved"), (3, "retired")]
    assert history[1].approved_by == "risk_head" and history[0].submitted_by == "analyst_b"


def test_an_invalid_rule_stores_nothing_of_its_file(store, golden):
    rules = golden_rules(golden)
    bad = {**rules[2], "rule_id": "ADJ_BAD", "adjustments": [{"field": "hqla", "operation": "multiply", "value": -1}]}
    with pytest.raises(RuleValidationError, match="rule ADJ_BAD: adjustment 1 .*negative multiplier"):
        store.submit([rules[0], bad], "analyst_a")
    assert store.rule_ids() == []


def test_values_that_look_like_sql_are_stored_as_plain_values(store):
    sneaky = "x'); DROP TABLE rule_events; --"
    store.submit([{"rule_id": "R-1", "stage": "aggregation", "effective_date": "2024-01-01", "description": sneaky,
                   "conditions": [{"field": "entity_id", "operator": "==", "value": sneaky}],
                   "adjustments": [{"field": "amount", "operation": "add", "value": 1}]}], "a")
    store.approve("R-1", "b")
    [rule] = store.approved_rules()
    assert rule.description == sneaky and rule.conditions[0].value == sneaky


def test_a_large_file_is_stored_in_one_batch_with_the_right_versions(store):
    """1,200 rules (more than one insert batch), 200 of them already stored twice: each gets the
    next version of its own history, and the stored events read back as submitted."""
    def body(k, factor):
        return {"rule_id": f"VOL_{k:04d}", "stage": "aggregation", "effective_date": "2024-01-01",
                "adjustments": [{"field": "amount", "operation": "multiply", "value": factor}]}

    store.submit([body(k, 1.5) for k in range(200)], "analyst_a")
    store.submit([body(k, 1.25) for k in range(200)], "analyst_a")
    stored = store.submit([body(k, 2.0) for k in range(1200)], "analyst_b")
    assert [(r.rule_id, r.version, r.submitted_by) for r in stored] == [
        (f"VOL_{k:04d}", 3 if k < 200 else 1, "analyst_b") for k in range(1200)]
    assert len(store.rule_ids()) == 1200
    history = store.history("VOL_0007")
    assert [(v.version, v.status, v.submitted_by, v.body["adjustments"][0]["value"]) for v in history] == [
        (1, "submitted", "analyst_a", 1.5), (2, "submitted", "analyst_a", 1.25), (3, "submitted", "analyst_b", 2.0)]
    store.approve("VOL_1199", "risk_admin")
    [rule] = store.approved_rules()
    assert (rule.rule_id, rule.version, rule.adjustments[0].value) == ("VOL_1199", 1, 2.0)


def test_a_bad_rule_late_in_a_large_file_stores_nothing(store):
    rules = [{"rule_id": f"VOL_{k:04d}", "stage": "final_calc", "effective_date": "2024-01-01",
              "adjustments": [{"field": "hqla", "operation": "add", "value": 1}]} for k in range(700)]
    rules[650]["adjustments"][0]["value"] = "a lot"
    with pytest.raises(RuleValidationError, match="rule VOL_0650: adjustment 1"):
        store.submit(rules, "analyst_a")
    assert store.rule_ids() == []
