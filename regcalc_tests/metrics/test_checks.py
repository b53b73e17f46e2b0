"""The pandera contract on final metrics accepts spec-consistent rows and names what breaks it."""

from __future__ import annotations

from regcalc_assets.metrics.checks import contract_failures

GOOD = dict(
    entity_id="LE_UK", basis="adjusted", reporting_currency="GBP", hqla_l1=100.0, hqla_l2a=40.0, hqla_l2b=20.0, adj15=0.0,
    adj40=0.0, hqla=160.0, total_outflows=100.0, total_inflows=80.0, capped_inflows=75.0, net_outflows=25.0,
    lcr=6.4, asf=10.0, rsf=0.0, nsfr=None,
)


def test_consistent_rows_pass():
    assert contract_failures([GOOD]) == []


def test_violations_are_named():
    bad = dict(GOOD, entity_id="LE_X", capped_inflows=80.0, hqla_l2a=200.0, hqla=320.0, lcr=-1.0)
    failures = contract_failures([GOOD, bad])
    assert any(f.startswith("lcr:") for f in failures)
    assert any("inflow_cap" in f for f in failures)
    assert any("level2_within_40_percent" in f for f in failures)
