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
    bad = dict(GOOD, entity_id="LE_X", basis="base", capped_inflows=80.0, hqla_l2a=200.0, hqla=320.0, lcr=-1.0)
    failures = contract_failures([GOOD, bad])
    assert any(f.startswith("lcr:") for f in failures)
    assert any("inflow_cap" in f for f in failures)
    assert any("level2_within_40_percent" in f for f in failures)


def test_level2_share_is_a_property_of_the_base_figures():
    """A final-stage rule changes hqla after the caps (liquidity-rules.md, 'Adjusted figures'): an
    adjusted row whose Level 2 share passes 40% that way is lawful; a base row never is."""
    # L2 after caps 60, hqla lowered by a final rule from 160 to 140: 60 > 0.4 x 140 = 56
    lowered = dict(GOOD, hqla=140.0, lcr=5.6)
    assert contract_failures([lowered]) == []
    failures = contract_failures([dict(lowered, basis="base")])
    assert any("level2_within_40_percent" in f for f in failures)


def test_non_finite_figures_fail_naming_the_entity():
    """A figure that overflowed to inf (a rule multiplying by 1e308 twice) or became NaN fails the
    contract; a null ratio (zero denominator) does not."""
    inf = dict(GOOD, entity_id="LE_INF", hqla=float("inf"), lcr=float("inf"))
    nan = dict(GOOD, entity_id="LE_NAN", asf=float("nan"))
    assert contract_failures([dict(GOOD, lcr=None)]) == []
    failures = contract_failures([inf, nan])
    assert "hqla: not finite (value inf) for entity LE_INF, adjusted" in failures
    assert "lcr: not finite (value inf) for entity LE_INF, adjusted" in failures
    assert "asf: not finite (value nan) for entity LE_NAN, adjusted" in failures
