"""`regcalc rules` as a user runs it: submit, four eyes, list, history, retire, bad files."""

from __future__ import annotations

import pytest

from regcalc_tests.e2e.test_cli import regcalc

pytestmark = pytest.mark.slow


def test_rules_lifecycle_through_the_cli(tmp_path, golden):
    home = tmp_path / "home"
    rules = str(golden / "rules.yaml")
    out = regcalc("rules", "submit", rules, "--user", "analyst_a", home=home).stdout
    assert out.count("awaiting approval") == 3
    refused = regcalc("rules", "approve", "ADJ_2024_001", "--user", "analyst_a", home=home, check=False)
    assert refused.returncode == 2 and "cannot approve" in refused.stderr
    for rule_id in ("ADJ_2024_001", "ADJ_2024_002"):
        regcalc("rules", "approve", rule_id, "--user", "risk_admin", home=home)
    listed = regcalc("rules", "list", home=home).stdout
    assert "ADJ_2024_001  v1  deal_enrichment" in listed and "ADJ_2024_002" in listed and "ADJ_2024_003" not in listed
    regcalc("rules", "retire", "ADJ_2024_002", "--user", "risk_head", home=home)
    assert "ADJ_2024_002" not in regcalc("rules", "list", home=home).stdout
    history = regcalc("rules", "history", "ADJ_2024_002", home=home).stdout.splitlines()
    assert history[0].startswith("v1  approved   by analyst_a") and "approved by risk_admin" in history[0]
    assert history[1].startswith("v2  retired    by risk_head")

    bad = tmp_path / "bad.yaml"
    bad.write_text("- rule_id: NEW_1\n  stage: aggregation\n  effective_date: 2024-01-01\n"
                   "  adjustments: [{field: amount, operation: multiply, value: 2}]\n"
                   "- rule_id: NEW_2\n  stage: final_calc\n  effective_date: 2024-05-01\n  expiry_date: 2024-04-01\n"
                   "  adjustments: [{field: hqla, operation: multiply, value: 2}]\n")
    rejected = regcalc("rules", "submit", str(bad), "--user", "analyst_a", home=home, check=False)
    assert rejected.returncode == 2 and "rule NEW_2: expiry_date 2024-04-01 is before effective_date" in rejected.stderr
    assert regcalc("rules", "history", "NEW_1", home=home, check=False).returncode == 2, "nothing of the file is stored"
