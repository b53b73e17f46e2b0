"""`regcalc rules` governance on the command line (issue 16): who acts, `verify`, `init-db`, and a
PostgreSQL store used without --user. In-process through click's CliRunner."""

from __future__ import annotations

import duckdb
import psycopg
import pytest
from click.testing import CliRunner

from regcalc_cli.main import cli
from regcalc_tests.test_rules_input import RULE, assert_one_line_error, home, invoke  # noqa: F401 - fixture

RULE_YAML = ("rule_id: GOV_1\nstage: aggregation\neffective_date: 2024-01-01\n"
             "adjustments: [{field: amount, operation: multiply, value: 2}]\n")


@pytest.fixture()
def rule_file(tmp_path):
    path = tmp_path / "rule.yaml"
    path.write_text(RULE_YAML)
    return str(path)


def test_a_named_user_needs_as_user_unverified_on_the_embedded_store(home, rule_file):
    code, _, err = invoke("rules", "submit", rule_file, "--user", "alice")
    assert_one_line_error(code, err, "--user names someone the system has not authenticated", "--as-user-unverified")
    code, out, err = invoke("rules", "submit", rule_file)  # as the OS account: verified
    assert code == 0, err
    import getpass

    assert f"by {getpass.getuser().lower()}," in out
    code, out, err = invoke("rules", "approve", "GOV_1", "--as-user-unverified", "--user", "  Bob ")
    assert (code, out.strip()) == (0, "approved GOV_1 version 1 by bob"), err
    code, out, _ = invoke("rules", "history", "GOV_1")
    assert "approved by bob (unverified)" in out and f"by {getpass.getuser().lower()} at" in out


def test_verify_names_the_first_broken_event_and_the_eod_refuses_to_run(home, rule_file, golden):
    invoke("rules", "submit", rule_file, "--as-user-unverified", "--user", "alice")
    invoke("rules", "approve", "GOV_1", "--as-user-unverified", "--user", "bob")
    code, out, _ = invoke("rules", "verify")
    assert code == 0 and "2 events, chain intact" in out
    con = duckdb.connect(str(home / "rules.duckdb"))  # a direct approval, as issue 16 found one could
    con.execute("INSERT INTO rule_events SELECT 3, 'GOV_1', 2, 'approve', 'mallory', true, acted_at, body, hash, "
                "'forged' FROM rule_events WHERE seq = 2")
    con.close()
    code, _, err = invoke("rules", "verify")
    assert code == 1 and "history broken at event 3 (approve GOV_1 v2 by mallory" in err
    code, _, err = invoke("rules", "list")
    assert_one_line_error(code, err, "history broken at event 3")
    code, out, err = invoke("eod", "--date", "2024-06-28", "--landing", str(golden / "landing"))
    assert_one_line_error(code, err, "history broken at event 3")


def test_init_db_prints_the_set_up_sql(home):
    code, out, _ = invoke("rules", "init-db")
    assert code == 0
    for needed in ("'regcalc_analyst', 'regcalc_approver'", "CREATE ROLE %I NOLOGIN", "SECURITY DEFINER",
                   "GRANT EXECUTE ON FUNCTION regcalc_rules.approve_rule(text) TO regcalc_approver"):
        assert needed in out
    assert "GRANT INSERT" not in out and "GRANT UPDATE" not in out and "GRANT DELETE" not in out
    code, _, err = invoke("rules", "init-db", "--apply")
    assert_one_line_error(code, err, "set REGCALC_RULES_DSN")


def test_a_postgres_store_works_without_user_and_records_the_login_roles(home, rule_file, rules_database,
                                                                        postgres_uri, monkeypatch):
    monkeypatch.setenv("REGCALC_RULES_DSN", rules_database("alice"))
    code, out, err = invoke("rules", "submit", rule_file)
    assert code == 0 and "by alice" in out, err
    code, _, err = invoke("rules", "approve", "GOV_1", "--as-user-unverified", "--user", "bob")
    assert_one_line_error(code, err, "acting as bob is refused")
    code, _, err = invoke("rules", "approve", "GOV_1")
    assert_one_line_error(code, err, "permission denied for function approve_rule")
    monkeypatch.setenv("REGCALC_RULES_DSN", rules_database("bob"))
    code, out, err = invoke("rules", "approve", "GOV_1")
    assert (code, out.strip()) == (0, "approved GOV_1 version 1 by bob"), err
    code, out, _ = invoke("rules", "history", "GOV_1")
    assert out.startswith("v1  approved            by alice at") and "approved by bob at" in out
    code, out, _ = invoke("rules", "verify")
    assert code == 0 and "2 events, chain intact" in out
    with psycopg.connect(rules_database("postgres"), autocommit=True) as con:  # a superuser's edit
        con.execute("SET session_replication_role = replica")
        con.execute("UPDATE regcalc_rules.rule_events SET actor = 'carol' WHERE seq = 2")
    code, _, err = invoke("rules", "verify")
    assert code == 1 and "event 2 (approve GOV_1 v1 by carol" in err and "does not match its hash" in err
