"""`regcalc rules` as a user runs it: submit, four eyes, list, history, retire, bad files."""

from __future__ import annotations

import pytest

from regcalc_tests.helpers import regcalc

pytestmark = pytest.mark.slow


def test_rules_lifecycle_through_the_cli(tmp_path, golden):
    home = tmp_path / "home"
    rules = str(golden / "rules.yaml")
    out = regcalc("rules", "submit", rules, "--as-user-unverified", "--user", "analyst_a", home=home).stdout
    assert out.count("awaiting approval") == 3
    refused = regcalc("rules", "approve", "ADJ_2024_001", "--as-user-unverified", "--user", "analyst_a", home=home, check=False)
    assert refused.returncode == 2 and "cannot approve" in refused.stderr
    for rule_id in ("ADJ_2024_001", "ADJ_2024_002"):
        regcalc("rules", "approve", rule_id, "--as-user-unverified", "--user", "risk_admin", home=home)
    listed = regcalc("rules", "list", home=home).stdout
    assert "ADJ_2024_001  v1  deal_enrichment" in listed and "ADJ_2024_002" in listed and "ADJ_2024_003" not in listed
    asked = regcalc("rules", "retire", "ADJ_2024_002", "--as-user-unverified", "--user", "risk_head", home=home).stdout
    assert "awaiting approval" in asked and "stays in force" in asked
    assert "ADJ_2024_002" in regcalc("rules", "list", home=home).stdout, "a retirement takes a second person"
    own = regcalc("rules", "approve", "ADJ_2024_002", "--as-user-unverified", "--user", "risk_head", home=home, check=False)
    assert own.returncode == 2 and "risk_head retired version 2 and cannot approve it" in own.stderr
    regcalc("rules", "approve", "ADJ_2024_002", "--as-user-unverified", "--user", "risk_admin", home=home)
    assert "ADJ_2024_002" not in regcalc("rules", "list", home=home).stdout
    history = regcalc("rules", "history", "ADJ_2024_002", home=home).stdout.splitlines()
    assert history[0].startswith("v1  approved            by analyst_a (unverified)"), history
    assert "approved by risk_admin (unverified)" in history[0]
    assert history[1].startswith("v2  retired             by risk_head (unverified)")
    assert "events, chain intact" in regcalc("rules", "verify", home=home).stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("- rule_id: NEW_1\n  stage: aggregation\n  effective_date: 2024-01-01\n"
                   "  adjustments: [{field: amount, operation: multiply, value: 2}]\n"
                   "- rule_id: NEW_2\n  stage: final_calc\n  effective_date: 2024-05-01\n  expiry_date: 2024-04-01\n"
                   "  adjustments: [{field: hqla, operation: multiply, value: 2}]\n")
    rejected = regcalc("rules", "submit", str(bad), "--as-user-unverified", "--user", "analyst_a", home=home, check=False)
    assert rejected.returncode == 2 and "rule NEW_2: expiry_date 2024-04-01 is before effective_date" in rejected.stderr
    assert regcalc("rules", "history", "NEW_1", home=home, check=False).returncode == 2, "nothing of the file is stored"


def _figures(path):
    import csv

    with open(path, newline="") as fh:
        return {row["entity_id"]: row for row in csv.DictReader(fh)}


def _warehouse_rows(home):
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall()))
                for t in ("liquidity_metrics", "liquidity_components", "adjustment_trail")}
    finally:
        con.close()


def test_preview_shows_matches_and_figures_before_approval_and_writes_nothing(tmp_path, golden, regcalc_home,
                                                                              monkeypatch):
    """Previewing the three golden rules on the base-only results: 'now' is expected_base.csv,
    'with' is expected_adjusted.csv; the matched rows are worked out from the golden files."""
    import json

    from regcalc_cli.eod import run_eod
    from regcalc_cli.instance import get_instance
    from regcalc_cli.preview import PreviewError, preview
    from regcalc_resources import build_resources, build_rule_store
    from regcalc_tests.e2e.test_cli import storage_digest

    home = regcalc_home
    monkeypatch.setenv("REGCALC_ENGINE", "duckdb")
    assert run_eod(get_instance(), "2024-06-28", str(golden / "landing")).success
    storage, warehouse = storage_digest(home / "storage"), _warehouse_rows(home)

    rows = json.loads(regcalc("rules", "preview", str(golden / "rules.yaml"), "--format", "json", home=home).stdout)
    matched = {(r["rule_id"], r["entity_id"]): r["rows_matched"] for r in rows}
    # ADJ_2024_001: SECURITY/LOAN maturing after 2025-01-01 (UK-0003/4/5/7/20, US-0029/30/31);
    # ADJ_2024_002: LE_UK's OUTFLOWS component; ADJ_2024_003: the USD entity's totals
    assert matched == {("ADJ_2024_001", "LE_UK"): 5, ("ADJ_2024_001", "LE_US"): 3,
                       ("ADJ_2024_002", "LE_UK"): 1, ("ADJ_2024_003", "LE_US"): 1}
    base, adjusted = _figures(golden / "expected_base.csv"), _figures(golden / "expected_adjusted.csv")
    for r in rows:
        for metric in ("lcr", "nsfr"):
            assert r[f"{metric}_now"] == pytest.approx(float(base[r["entity_id"]][metric]), rel=1e-9)
            assert r[f"{metric}_with_rule"] == pytest.approx(float(adjusted[r["entity_id"]][metric]), rel=1e-9)
    assert storage_digest(home / "storage") == storage and _warehouse_rows(home) == warehouse
    assert regcalc("rules", "history", "ADJ_2024_001", home=home, check=False).returncode == 2, "a file preview stores nothing"

    # a stored rule awaiting approval, by id: only the final-stage buffer on LE_US's HQLA
    only_final = tmp_path / "final.yaml"
    only_final.write_text((golden / "rules.yaml").read_text().split("- rule_id: ADJ_2024_003")[0].split("# One")[0]
                          + "- rule_id: ADJ_2024_003" + (golden / "rules.yaml").read_text().split("- rule_id: ADJ_2024_003")[1])
    regcalc("rules", "submit", str(only_final), "--as-user-unverified", "--user", "analyst_a", home=home)
    resources, store = build_resources(), build_rule_store()
    stages, engine = resources["stages"], resources["engine"]
    [row] = preview(stages, engine, store, "ADJ_2024_003", ["2024-06-28"])
    us = base["LE_US"]
    assert (row["entity_id"], row["rows_matched"]) == ("LE_US", 1)
    assert row["lcr_with_rule"] == pytest.approx(0.97 * float(us["hqla"]) / float(us["net_outflows"]), rel=1e-9)
    assert row["nsfr_with_rule"] == pytest.approx(float(us["nsfr"]), rel=1e-9)
    with pytest.raises(PreviewError, match="no stored results for 2024-07-01"):
        preview(stages, engine, store, "ADJ_2024_003", ["2024-07-01"])
