"""Final metrics: HQLA caps, inflow cap, LCR and NSFR, worked out by hand from liquidity-rules.md.

    adj15 = max(L2B - 15/85 x (L1 + L2A), L2B - 15/60 x L1, 0)
    adj40 = max(L2A + L2B - adj15 - 2/3 x L1, 0)
    HQLA  = L1 + L2A + L2B - adj15 - adj40
    capped_inflows = min(total_inflows, 0.75 x total_outflows)
    net_outflows   = total_outflows - capped_inflows
    LCR = HQLA / net_outflows (null when net_outflows = 0);  NSFR = ASF / RSF (null when RSF = 0)

Component amounts are already post-haircut, so hqla_l1/l2a/l2b are the component sums as given.
Every case is one entity (its own entity_id); all cases run in one DataFrame per engine.
"""

from __future__ import annotations

from datetime import date

import pytest

from regcalc_assets.metrics.logic import compute_final_metrics
from regcalc_tests.helpers import mismatches

D = date(2024, 6, 28)
D_PREV = date(2024, 6, 27)

SCHEMA = ("business_date date, entity_id string, reporting_currency string, component string, "
          "amount double")
COMPONENT_OF = {
    "L1": "HQLA_L1", "L2A": "HQLA_L2A", "RMBS": "HQLA_L2B_RMBS", "OTHER": "HQLA_L2B_OTHER",
    "OUT": "OUTFLOWS", "IN": "INFLOWS", "ASF": "ASF", "RSF": "RSF",
}
OUTPUT_COLUMNS = [
    "business_date", "entity_id", "reporting_currency", "hqla_l1", "hqla_l2a", "hqla_l2b",
    "adj15", "adj40", "hqla", "total_outflows", "total_inflows", "capped_inflows",
    "net_outflows", "lcr", "asf", "rsf", "nsfr",
]


def components(entity: str, *, business_date=D, ccy="USD", **amounts) -> list[tuple]:
    """All eight component rows of one (date, entity); unnamed components are 0."""
    assert set(amounts) <= set(COMPONENT_OF), amounts
    return [(business_date, entity, ccy, comp, float(amounts.get(short, 0.0)))
            for short, comp in COMPONENT_OF.items()]


def M(*, l1=0.0, l2a=0.0, l2b=0.0, adj15=0.0, adj40=0.0, hqla=0.0, out=0.0, inf=0.0,
      capped=0.0, net=0.0, lcr=None, asf=0.0, rsf=0.0, nsfr=None, ccy="USD") -> dict:
    return {
        "reporting_currency": ccy, "hqla_l1": l1, "hqla_l2a": l2a, "hqla_l2b": l2b,
        "adj15": adj15, "adj40": adj40, "hqla": hqla, "total_outflows": out,
        "total_inflows": inf, "capped_inflows": capped, "net_outflows": net, "lcr": lcr,
        "asf": asf, "rsf": rsf, "nsfr": nsfr,
    }


# (case id, business_date, entity components kwargs, expected)
CASES = [
    # No cap binds. L1 100, L2A 20, L2B 5 + 5 = 10.
    # adj15 = max(10 - 15/85*120, 10 - 25, 0) = max(-11.18, -15, 0) = 0
    # adj40 = max(20 + 10 - 0 - 66.67, 0) = 0; HQLA = 130
    # capped = min(50, 150) = 50; net = 150; LCR = 130/150; NSFR = 300/250 = 1.2
    ("hqla/no-cap-binds", D, dict(L1=100, L2A=20, RMBS=5, OTHER=5, OUT=200, IN=50, ASF=300, RSF=250),
     M(l1=100, l2a=20, l2b=10, hqla=130, out=200, inf=50, capped=50, net=150, lcr=130 / 150,
       asf=300, rsf=250, nsfr=1.2)),
    # adj15 binds through the 15/85 term. L1 100, L2A 0, L2B 30 + 20 = 50.
    # adj15 = max(50 - 15/85*100, 50 - 15/60*100, 0) = max(50 - 300/17, 25, 0) = 550/17 = 32.3529
    # adj40 = max(0 + 50 - 550/17 - 200/3, 0) = max(-49.02, 0) = 0
    # HQLA = 150 - 550/17 = 2000/17 = 117.647 (L2B after cap = 300/17 = 15% of HQLA)
    # net = 100 - min(0, 75) = 100; LCR = 20/17; NSFR = 100/100 = 1
    ("hqla/adj15-binds-15/85-term", D,
     dict(L1=100, RMBS=30, OTHER=20, OUT=100, ASF=100, RSF=100),
     M(l1=100, l2b=50, adj15=550 / 17, hqla=2000 / 17, out=100, net=100, lcr=20 / 17,
       asf=100, rsf=100, nsfr=1.0)),
    # adj15 through the 15/85 term with L2A present; adj40 still 0. L1 100, L2A 40, L2B 100.
    # adj15 = max(100 - 15/85*140, 100 - 25, 0) = max(100 - 420/17, 75) = 1280/17 = 75.294
    # adj40 = max(40 + 100 - 1280/17 - 200/3, 0) = max(-1.96, 0) = 0
    # HQLA = 240 - 1280/17 = 2800/17 = 164.706; net = 200; LCR = 14/17
    ("hqla/adj15-binds-15/85-term-with-L2A", D, dict(L1=100, L2A=40, OTHER=100, OUT=200),
     M(l1=100, l2a=40, l2b=100, adj15=1280 / 17, hqla=2800 / 17, out=200, net=200,
       lcr=14 / 17)),
    # adj15 binds through the 15/60 term, and adj40 binds too. L1 100, L2A 60, L2B 40.
    # adj15 = max(40 - 15/85*160, 40 - 25, 0) = max(11.76, 15, 0) = 15
    # adj40 = max(60 + 40 - 15 - 200/3, 0) = 55/3 = 18.333
    # HQLA = 200 - 15 - 55/3 = 500/3 = 166.667 (L1 = 60% of HQLA); LCR = 5/3; NSFR = 0.5
    ("hqla/adj15-binds-15/60-term-and-adj40-binds", D,
     dict(L1=100, L2A=60, OTHER=40, OUT=100, ASF=50, RSF=100),
     M(l1=100, l2a=60, l2b=40, adj15=15, adj40=55 / 3, hqla=500 / 3, out=100, net=100,
       lcr=5 / 3, asf=50, rsf=100, nsfr=0.5)),
    # only adj40 binds. L1 30, L2A 60, L2B 0.
    # adj15 = max(0 - 15/85*90, 0 - 7.5, 0) = 0; adj40 = max(60 - 20, 0) = 40; HQLA = 50
    # capped = min(20, 75) = 20; net = 80; LCR = 50/80 = 0.625
    ("hqla/adj40-binds-alone", D, dict(L1=30, L2A=60, OUT=100, IN=20),
     M(l1=30, l2a=60, adj40=40, hqla=50, out=100, inf=20, capped=20, net=80, lcr=0.625)),
    # no L1 at all: L2A 50, L2B_RMBS 10.
    # adj15 = max(10 - 15/85*50, 10 - 0, 0) = max(1.18, 10, 0) = 10
    # adj40 = max(50 + 10 - 10 - 0, 0) = 50; HQLA = 0; LCR = 0/100 = 0 (not null)
    ("hqla/no-L1-all-capped-away", D, dict(L2A=50, RMBS=10, OUT=100),
     M(l2a=50, l2b=10, adj15=10, adj40=50, hqla=0, out=100, net=100, lcr=0.0)),
    # inflow cap binds: inflows 500 > 0.75 x 400 = 300. net = 100; LCR = 150/100; NSFR = 1.2
    ("lcr/inflow-cap-binds", D, dict(L1=150, OUT=400, IN=500, ASF=120, RSF=100),
     M(l1=150, hqla=150, out=400, inf=500, capped=300, net=100, lcr=1.5, asf=120, rsf=100,
       nsfr=1.2)),
    # inflow cap does not bind: inflows 200 < 300. net = 200; LCR = 0.75
    ("lcr/inflow-cap-not-binding", D, dict(L1=150, OUT=400, IN=200),
     M(l1=150, hqla=150, out=400, inf=200, capped=200, net=200, lcr=0.75)),
    # inflows exactly at 75%: capped = 300 either way; net = 100
    ("lcr/inflow-exactly-75pct", D, dict(L1=150, OUT=400, IN=300),
     M(l1=150, hqla=150, out=400, inf=300, capped=300, net=100, lcr=1.5)),
    # no outflows: net = 0 -> LCR null; NSFR = 100/50 = 2
    ("lcr/null-when-net-outflows-zero", D, dict(L1=150, ASF=100, RSF=50),
     M(l1=150, hqla=150, asf=100, rsf=50, nsfr=2.0)),
    # inflows but no outflows: capped = min(80, 0) = 0, net = 0 -> LCR null
    ("lcr/null-when-only-inflows", D, dict(L1=150, IN=80),
     M(l1=150, hqla=150, inf=80, capped=0, net=0)),
    # RSF = 0 -> NSFR null; LCR = 10/20
    ("nsfr/null-when-rsf-zero", D, dict(L1=10, OUT=20, ASF=500),
     M(l1=10, hqla=10, out=20, net=20, lcr=0.5, asf=500)),
    # ASF = 0, RSF > 0 -> NSFR 0 (not null)
    ("nsfr/zero-when-asf-zero", D, dict(L1=10, OUT=20, RSF=100),
     M(l1=10, hqla=10, out=20, net=20, lcr=0.5, rsf=100, nsfr=0.0)),
    # everything zero: figures 0, both ratios null
    ("ratios/all-zero", D, dict(), M()),
    # reporting currency carried through
    ("currency/GBP-carried-through", D, dict(L1=100, OUT=100, ASF=90, RSF=100),
     M(l1=100, hqla=100, out=100, net=100, lcr=1.0, asf=90, rsf=100, nsfr=0.9, ccy="GBP")),
    # same entity, two business dates: one row each, computed separately
    ("dates/LE-MULTI-previous-day", D_PREV, dict(L1=50, OUT=100, ASF=10, RSF=40),
     M(l1=50, hqla=50, out=100, net=100, lcr=0.5, asf=10, rsf=40, nsfr=0.25)),
    ("dates/LE-MULTI-business-date", D, dict(L1=200, OUT=100, IN=100, ASF=80, RSF=40),
     M(l1=200, hqla=200, out=100, inf=100, capped=75, net=25, lcr=8.0, asf=80, rsf=40,
       nsfr=2.0)),
]


def _entity(case_id: str) -> str:
    return "LE-MULTI" if case_id.startswith("dates/") else case_id


def _key(case) -> tuple:
    return (case[1], _entity(case[0]))


ROWS = [row for case in CASES
        for row in components(_entity(case[0]), business_date=case[1], ccy=case[3]["reporting_currency"],
                              **case[2])]


def _collect(df) -> dict:
    rows = [r.asDict() for r in df.collect()]
    by_key = {(r["business_date"], r["entity_id"]): r for r in rows}
    assert len(by_key) == len(rows), "more than one row per (business_date, entity_id)"
    return by_key


@pytest.fixture(scope="module")
def metrics(spark):
    out = compute_final_metrics(spark.createDataFrame(ROWS, schema=SCHEMA))
    return {"columns": list(out.columns), "rows": _collect(out)}


def _mismatches(actual: dict, expected: dict) -> list[str]:
    return mismatches(actual, expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_final_metrics(metrics, case):
    actual = metrics["rows"].get(_key(case))
    assert actual is not None, f"no output row for {_key(case)}"
    bad = _mismatches(actual, case[3])
    assert not bad, f"{case[0]}: " + "; ".join(bad)


def test_one_row_per_date_and_entity_with_all_columns(metrics):
    missing = [c for c in OUTPUT_COLUMNS if c not in metrics["columns"]]
    assert not missing, f"missing output columns: {missing}"
    assert set(metrics["rows"]) == {_key(case) for case in CASES}


def test_missing_components_count_as_zero(spark):
    """Only some components delivered for an entity: the others are 0 ("figures 0").

    L1 100, OUTFLOWS 50 only -> HQLA 100, capped 0, net 50, LCR 2.0, ASF 0, RSF 0, NSFR null.
    """
    rows = [(D, "LE-SPARSE", "USD", "HQLA_L1", 100.0), (D, "LE-SPARSE", "USD", "OUTFLOWS", 50.0)]
    got = _collect(compute_final_metrics(spark.createDataFrame(rows, schema=SCHEMA)))
    expected = M(l1=100, hqla=100, out=50, net=50, lcr=2.0)
    bad = _mismatches(got[(D, "LE-SPARSE")], expected)
    assert not bad, "; ".join(bad)

