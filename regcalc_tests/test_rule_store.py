"""The governed rule store on the embedded DuckDB file and on a real PostgreSQL server: four eyes,
versions, retirement under four eyes, the hash chain, and who the actor is."""

from __future__ import annotations

import functools
from pathlib import Path

import duckdb
import psycopg
import pytest
import yaml

from regcalc_core.rules import RuleValidationError
from regcalc_resources.rule_store import BrokenChainError, DuckDBRuleStore, GovernanceError, PostgresRuleStore


class Acting:
    """A store as one person: on DuckDB the named user (recorded as unverified), on PostgreSQL a
    store connected as that login role (the database's session_user)."""

    def __init__(self, store, user=None):
        self.store, self.user = store, user

    def __getattr__(self, name):
        attr = getattr(self.store, name)
        if name in ("submit", "approve", "retire", "acknowledge") and self.user is not None:
            return functools.partial(attr, user=self.user)
        return attr


@pytest.fixture(params=["duckdb", "postgres"])
def kind(request):
    return request.param


@pytest.fixture()
def act(kind, tmp_path, request):
    """``act(user)``: the store acting as ``user``; ``act()``: a reader."""
    if kind == "duckdb":
        store = DuckDBRuleStore(path=str(tmp_path / "rules.duckdb"))
        return lambda user=None: Acting(store, user)
    dsn = request.getfixturevalue("rules_database")
    return lambda user=None: Acting(PostgresRuleStore(dsn=dsn(user or "pipeline")))


def golden_rules(golden) -> list[dict]:
    return yaml.safe_load(Path(golden / "rules.yaml").read_text())


def test_four_eyes_and_versions(act, golden):
    rules = golden_rules(golden)
    act("analyst_a").submit(rules[:1] + rules[2:])
    act("analyst_b").submit(rules[1:2])
    assert act().approved_rules() == []
    with pytest.raises(GovernanceError, match="analyst_a submitted version 1 and cannot approve it"):
        act("analyst_a").approve("ADJ_2024_001")
    for rule_id in ("ADJ_2024_001", "ADJ_2024_002", "ADJ_2024_003"):
        act("risk_admin").approve(rule_id)
    with pytest.raises(GovernanceError, match="not awaiting approval"):
        act("risk_head").approve("ADJ_2024_001")
    approved = act().approved_rules()
    assert [(r.rule_id, r.version, r.approval["user"]) for r in approved] == [
        ("ADJ_2024_001", 1, "risk_admin"), ("ADJ_2024_002", 1, "risk_admin"), ("ADJ_2024_003", 1, "risk_admin")]
    assert approved[0].submitted_by == "analyst_a"


def test_as_of_reproduces_the_rules_in_force(act, golden):
    rule = golden_rules(golden)[1]
    act("analyst_b").submit([rule])
    act("risk_admin").approve(rule["rule_id"])
    act("analyst_b").submit([{**rule, "adjustments": [{"field": "amount", "operation": "multiply", "value": 1.2}]}])
    act("risk_head").approve(rule["rule_id"])
    act("analyst_b").retire(rule["rule_id"])
    act("risk_head").approve(rule["rule_id"])
    history = act().history(rule["rule_id"])
    # the moments of the recorded events themselves, not wall-clock readings between them: as of
    # an event's own time, that event is in force
    t1, t2, t3, t4, t5 = (history[0].approved_at, history[1].submitted_at, history[1].approved_at,
                          history[2].submitted_at, history[2].approved_at)
    assert t1 < t2 < t3 < t4 < t5
    factor = [[r.adjustments[0].value for r in act().approved_rules(t)] for t in (t1, t2, t3, t4, t5)]
    # v2 submitted but not approved at t2: v1 in force; the retirement asked at t4 ends it at t5
    assert factor == [[1.10], [1.10], [1.2], [1.2], []]
    assert [(v.version, v.status) for v in history] == [(1, "approved"), (2, "approved"), (3, "retired")]
    assert history[1].approved_by == "risk_head" and history[0].submitted_by == "analyst_b"


def test_a_retirement_takes_effect_only_when_someone_else_approves_it(act, golden):
    rule = golden_rules(golden)[1]
    act("analyst_a").submit([rule])
    act("risk_admin").approve(rule["rule_id"])
    retirement = act("analyst_a").retire(rule["rule_id"])
    assert (retirement.version, retirement.status) == (2, "retirement pending")
    assert [r.rule_id for r in act().approved_rules()] == [rule["rule_id"]], "still in force until approved"
    with pytest.raises(GovernanceError, match="analyst_a retired version 2 and cannot approve it"):
        act("analyst_a").approve(rule["rule_id"])
    with pytest.raises(GovernanceError, match="already awaits approval"):
        act("analyst_b").retire(rule["rule_id"])
    act("risk_admin").approve(rule["rule_id"])
    assert act().approved_rules() == []
    with pytest.raises(GovernanceError, match="already retired"):
        act("analyst_b").retire(rule["rule_id"])


def test_an_unapproved_resubmission_does_not_revive_a_retired_rule(act, golden):
    rule = golden_rules(golden)[1]
    act("analyst_a").submit([rule])
    act("risk_admin").approve(rule["rule_id"])
    act("analyst_a").retire(rule["rule_id"])
    act("risk_head").approve(rule["rule_id"])
    act("analyst_a").submit([rule])
    assert act().approved_rules() == [], "v1 was retired; v3 awaits approval"
    act("risk_head").approve(rule["rule_id"])
    [in_force] = act().approved_rules()
    assert (in_force.version, in_force.approval["user"]) == (3, "risk_head")


def test_padded_or_differently_cased_names_are_one_person_and_empty_names_nobody(act, kind, golden):
    rule = golden_rules(golden)[1]
    act("analyst_a").submit([rule])
    for same in ("analyst_a ", " Analyst_A", "analyst_a\u00a0"):
        with pytest.raises(GovernanceError, match="analyst_a submitted version 1 and cannot approve it"):
            act("analyst_a").approve(rule["rule_id"], user=same) if kind == "duckdb" else \
                act("analyst_a").store.approve(rule["rule_id"], user=same)
    for nobody in ("", "   ", "\t"):
        with pytest.raises(GovernanceError, match="empty identity"):
            act("risk_admin").store.approve(rule["rule_id"], user=nobody)
    assert act().history(rule["rule_id"])[-1].status == "submitted"


def test_an_invalid_rule_stores_nothing_of_its_file(act, golden):
    rules = golden_rules(golden)
    bad = {**rules[2], "rule_id": "ADJ_BAD", "adjustments": [{"field": "hqla", "operation": "multiply", "value": -1}]}
    with pytest.raises(RuleValidationError, match="rule ADJ_BAD: adjustment 1 .*negative multiplier"):
        act("analyst_a").submit([rules[0], bad])
    assert act().rule_ids() == []


def test_values_that_look_like_sql_are_stored_as_plain_values(act):
    sneaky = "x'); DROP TABLE rule_events; --"
    act("a").submit([{"rule_id": "R-1", "stage": "aggregation", "effective_date": "2024-01-01", "description": sneaky,
                      "conditions": [{"field": "entity_id", "operator": "==", "value": sneaky}],
                      "adjustments": [{"field": "amount", "operation": "add", "value": 1}]}])
    act("b").approve("R-1")
    [rule] = act().approved_rules()
    assert rule.description == sneaky and rule.conditions[0].value == sneaky


def test_a_large_file_is_stored_in_one_batch_with_the_right_versions(act):
    """1,200 rules (more than one insert batch), 200 of them already stored twice: each gets the
    next version of its own history, and the stored events read back as submitted."""
    def body(k, factor):
        return {"rule_id": f"VOL_{k:04d}", "stage": "aggregation", "effective_date": "2024-01-01",
                "adjustments": [{"field": "amount", "operation": "multiply", "value": factor}]}

    act("analyst_a").submit([body(k, 1.5) for k in range(200)])
    act("analyst_a").submit([body(k, 1.25) for k in range(200)])
    stored = act("analyst_b").submit([body(k, 2.0) for k in range(1200)])
    assert [(r.rule_id, r.version, r.submitted_by) for r in stored] == [
        (f"VOL_{k:04d}", 3 if k < 200 else 1, "analyst_b") for k in range(1200)]
    assert len(act().rule_ids()) == 1200
    history = act().history("VOL_0007")
    assert [(v.version, v.status, v.submitted_by, v.body["adjustments"][0]["value"]) for v in history] == [
        (1, "submitted", "analyst_a", 1.5), (2, "submitted", "analyst_a", 1.25), (3, "submitted", "analyst_b", 2.0)]
    act("risk_admin").approve("VOL_1199")
    [rule] = act().approved_rules()
    assert (rule.rule_id, rule.version, rule.adjustments[0].value) == ("VOL_1199", 1, 2.0)
    assert act().verify() == (1601, act().events()[-1].hash, None)


def test_a_bad_rule_late_in_a_large_file_stores_nothing(act):
    rules = [{"rule_id": f"VOL_{k:04d}", "stage": "final_calc", "effective_date": "2024-01-01",
              "adjustments": [{"field": "hqla", "operation": "add", "value": 1}]} for k in range(700)]
    rules[650]["adjustments"][0]["value"] = "a lot"
    with pytest.raises(RuleValidationError, match="rule VOL_0650: adjustment 1"):
        act("analyst_a").submit(rules)
    assert act().rule_ids() == []


def test_an_impact_is_acknowledged_by_an_approver_who_made_none_of_its_rules(act, golden):
    rule = golden_rules(golden)[1]
    act("analyst_a").submit([rule])
    act("risk_admin").approve(rule["rule_id"])
    impact = {"lcr_change_points": 15.2}
    with pytest.raises(GovernanceError, match="analyst_a made a version of rule ADJ_2024_002 and cannot acknowledge"):
        act("analyst_a").acknowledge("2024-06-28", "LE_UK", [rule["rule_id"]], impact)
    ack = act("risk_head").acknowledge("2024-06-28", "LE_UK", [rule["rule_id"]], impact)
    assert (ack.business_date, ack.entity_id, ack.actor, ack.rule_ids, ack.body) == (
        "2024-06-28", "LE_UK", "risk_head", ("ADJ_2024_002",), impact)
    assert act().acknowledgments("2024-06-28", "LE_EU") == []
    assert act().rule_ids() == ["ADJ_2024_002"], "an acknowledgment is not a rule"


# -- the hash chain: edits behind the store's back -------------------------------------------------
def _chain_of_four(act, golden):
    rules = golden_rules(golden)
    act("analyst_a").submit(rules[:2])
    act("risk_admin").approve(rules[0]["rule_id"])
    act("risk_admin").approve(rules[1]["rule_id"])
    assert act().verify()[2] is None


TAMPERING = {
    "edited": ("UPDATE {t} SET actor = 'risk_head' WHERE seq = 3", "event 3 .*content does not match its hash"),
    "deleted": ("DELETE FROM {t} WHERE seq = 2", "event 3 .*expected sequence number 2.*removed"),
    "reordered": ("UPDATE {t} SET seq = 0 WHERE seq = 3; UPDATE {t} SET seq = 3 WHERE seq = 4; "
                  "UPDATE {t} SET seq = 4 WHERE seq = 0", "event 3 .*does not link to the event before it"),
    "inserted": ("INSERT INTO {t} SELECT 5, rule_id, 2, 'approve', 'risk_head', true, acted_at, body, hash, "
                 "'0' FROM {t} WHERE seq = 4", "event 5 .*content does not match its hash"),
}


def _tamper(kind, act, request, sql):
    if kind == "duckdb":
        con = duckdb.connect(act().store.path)
        for statement in sql.format(t="rule_events").split("; "):
            con.execute(statement)
        con.close()
        return
    # as the superuser, with the append-only triggers bypassed as only a superuser can
    dsn = request.getfixturevalue("rules_database")("postgres")
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute("SET session_replication_role = replica")
        for statement in sql.format(t="regcalc_rules.rule_events").split("; "):
            con.execute(statement)


@pytest.mark.parametrize("tampering", sorted(TAMPERING))
def test_an_edit_behind_the_stores_back_breaks_the_chain_and_every_read_of_the_rules(act, kind, golden, request,
                                                                                     tampering):
    _chain_of_four(act, golden)
    sql, where = TAMPERING[tampering]
    _tamper(kind, act, request, sql)
    count, _, problem = act().verify()
    assert problem is not None and __import__("re").search(where, problem), problem
    with pytest.raises(BrokenChainError, match="history broken at event"):
        act().approved_rules()
    with pytest.raises(BrokenChainError, match="history broken at event"):
        act("analyst_b").submit(golden_rules(golden)[2:3])


# -- PostgreSQL: the database knows who acts, and the application roles cannot write ------------
def test_postgres_identity_is_the_login_role_and_the_database_enforces_four_eyes(rules_database, golden):
    alice, bob = (PostgresRuleStore(dsn=rules_database(role)) for role in ("alice", "bob"))
    rule = golden_rules(golden)[1]
    [stored] = alice.submit([rule])
    assert stored.submitted_by == "alice"
    with pytest.raises(GovernanceError, match="acting as bob is refused"):
        alice.approve(rule["rule_id"], user="bob")
    with pytest.raises(GovernanceError, match="permission denied for function approve_rule"):
        alice.approve(rule["rule_id"])
    with psycopg.connect(rules_database("alice"), autocommit=True) as con:  # bypassing the code
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="approve_rule"):
            con.execute("SELECT regcalc_rules.approve_rule(%s)", [rule["rule_id"]])
        for sql in ("UPDATE regcalc_rules.rule_events SET actor = 'bob'", "DELETE FROM regcalc_rules.rule_events",
                    "INSERT INTO regcalc_rules.rule_events SELECT * FROM regcalc_rules.rule_events"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                con.execute(sql)
    with psycopg.connect(rules_database("mallory"), autocommit=True) as con:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("SELECT regcalc_rules.submit_rules('[]'::jsonb)")
    bob.approve(rule["rule_id"])
    with psycopg.connect(rules_database("postgres"), autocommit=True) as con:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):  # even the owner
            con.execute("UPDATE regcalc_rules.rule_events SET actor = 'mallory'")
        recorded = con.execute("SELECT action, actor, actor_verified FROM regcalc_rules.rule_events ORDER BY seq").fetchall()
    assert recorded == [("submit", "alice", True), ("approve", "bob", True)]
    [v] = bob.history(rule["rule_id"])
    assert (v.submitted_by, v.approved_by, v.unverified_maker, v.unverified_approver) == ("alice", "bob", False, False)


def test_postgres_a_person_with_both_roles_still_cannot_approve_their_own(rules_database, golden):
    carol = PostgresRuleStore(dsn=rules_database("carol"))
    rule = golden_rules(golden)[1]
    carol.submit([rule])
    with psycopg.connect(rules_database("carol"), autocommit=True) as con:  # the database's own check
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="carol submitted version 1"):
            con.execute("SELECT regcalc_rules.approve_rule(%s)", [rule["rule_id"]])


def test_a_postgres_store_that_was_never_set_up_says_how_to_set_it_up(postgres_uri):
    with pytest.raises(GovernanceError, match="not set up: run `regcalc rules init-db --apply`"):
        PostgresRuleStore(dsn=postgres_uri).approved_rules()


def test_the_embedded_store_acts_as_the_os_account_and_marks_named_users_unverified(tmp_path, golden):
    import getpass

    store = DuckDBRuleStore(path=str(tmp_path / "rules.duckdb"))
    rule = golden_rules(golden)[1]
    [stored] = store.submit([rule])
    assert stored.submitted_by == getpass.getuser().lower()
    store.approve(rule["rule_id"], user="risk_admin")
    [v] = store.history(rule["rule_id"])
    assert (v.unverified_maker, v.unverified_approver) == (False, True)
    assert [e.actor_verified for e in store.events()] == [True, False]
