"""The DuckDB-SQL oracle (benchmarks/baseline_sql.py) against the golden example and hand-built cases."""
from __future__ import annotations

import csv
import datetime as dt
import math
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import baseline_sql  # noqa: E402
from baseline_sql import compute_metrics_sql, position_fields_sql  # noqa: E402

GOLDEN = Path("/work/shared/examples/golden")
GOLDEN_DATE = "2024-06-28"

TEXT = {"business_date", "entity_id", "reporting_currency"}
COUNTS = {"positions_accepted", "positions_quarantined"}


def _close(actual, expected, rel=1e-9, abs_=1e-6) -> bool:
    if expected is None:
        return actual is None
    if actual is None:
        return False
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_)


def _expected_golden() -> list[dict]:
    with open(GOLDEN / "expected_base.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("variant", ["landing", "landing_csv"])
def test_golden_base_figures(variant):
    rows = compute_metrics_sql(str(GOLDEN / variant), GOLDEN_DATE)
    expected = _expected_golden()
    assert [r["entity_id"] for r in rows] == [e["entity_id"] for e in expected]
    for got, exp in zip(rows, expected):
        assert list(got) == list(exp), "keys / key order"
        for k, ev in exp.items():
            gv = got[k]
            if k in TEXT:
                assert gv == ev, k
            elif k in COUNTS:
                assert isinstance(gv, int) and gv == int(ev), k
            else:
                e = None if ev == "" else float(ev)
                assert gv is None or isinstance(gv, float), k
                assert _close(gv, e), f"{got['entity_id']} {k}: {gv} != {e}"


def test_golden_accepts_connection():
    import duckdb

    con = duckdb.connect()
    rows = compute_metrics_sql(str(GOLDEN / "landing"), GOLDEN_DATE, con=con)
    assert len(rows) == 2
    con.execute("SELECT 1").fetchall()  # caller's connection still open and usable
    con.close()


def test_missing_file_is_named(tmp_path):
    src = GOLDEN / "landing" / f"business_date={GOLDEN_DATE}"
    dst = tmp_path / f"business_date={GOLDEN_DATE}"
    dst.mkdir()
    for f in src.iterdir():
        if f.name != "prices.parquet":
            (dst / f.name).write_bytes(f.read_bytes())
    with pytest.raises(FileNotFoundError, match="prices"):
        compute_metrics_sql(str(tmp_path), GOLDEN_DATE)


# ------------------------------------------------------------------------------------------
# hand-built landing zone
# ------------------------------------------------------------------------------------------

D = dt.date(2024, 6, 28)
DS = D.isoformat()


def day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


POS_COLS = ["position_id", "source_system", "entity_id", "counterparty_id", "product", "currency",
            "balance", "quantity", "security_id", "maturity_date", "insured",
            "stable_relationship", "operational", "performing", "risk_weight", "encumbered_until"]
POS_TYPES = {"balance": pa.float64(), "quantity": pa.float64(), "risk_weight": pa.float64(),
             "maturity_date": pa.date32(), "encumbered_until": pa.date32(), "insured": pa.bool_(),
             "stable_relationship": pa.bool_(), "operational": pa.bool_(), "performing": pa.bool_()}


def P(pid, ent, product, ccy="USD", bal=None, cp=None, **kw):
    row = dict.fromkeys(POS_COLS)
    row.update(position_id=pid, source_system=kw.pop("src", "SYS"), entity_id=ent,
               counterparty_id=cp, product=product, currency=ccy, balance=bal)
    mapping = {"qty": "quantity", "sec": "security_id", "mat": "maturity_date",
               "ins": "insured", "stable": "stable_relationship", "op": "operational",
               "perf": "performing", "rw": "risk_weight", "enc": "encumbered_until"}
    for k, v in kw.items():
        row[mapping[k]] = v
    return row


def _table(rows, cols, types=None):
    types = types or {}
    return pa.table({c: pa.array([r.get(c) for r in rows], type=types.get(c, pa.string()))
                     for c in cols})


def _write(root: Path, tables: dict[str, pa.Table]) -> Path:
    folder = root / f"business_date={DS}"
    folder.mkdir(parents=True)
    for name, t in tables.items():
        pq.write_table(t, folder / f"{name}.parquet")
    return root


ENTITIES = [
    dict(entity_id="E1", name="One", reporting_currency="GBP"),
    dict(entity_id="E2", name="Two", reporting_currency="USD"),
    dict(entity_id="E3", name="Three", reporting_currency="EUR"),      # no EUR rate
    dict(entity_id="E4", name="Four", reporting_currency="USD"),       # no positions
    dict(entity_id="E_BAD", name=None, reporting_currency="USD"),      # invalid: no name
    dict(entity_id="E_DUP", name="Dup a", reporting_currency="USD"),   # invalid: duplicated
    dict(entity_id="E_DUP", name="Dup b", reporting_currency="USD"),
]
FX = [dict(currency="USD", usd_per_unit=1.0), dict(currency="GBP", usd_per_unit=1.25),
      dict(currency="JPY", usd_per_unit=0.0064), dict(currency="JPY", usd_per_unit=0.0064),
      dict(currency="CHF", usd_per_unit=-1.0)]
CPS = [dict(counterparty_id="C_RET", counterparty_type="RETAIL"),
       dict(counterparty_id="C_BANK", counterparty_type="BANK"),
       dict(counterparty_id="C_NFC", counterparty_type="NON_FINANCIAL_CORPORATE"),
       dict(counterparty_id="C_CB", counterparty_type="CENTRAL_BANK"),
       dict(counterparty_id="C_SOV", counterparty_type="SOVEREIGN"),
       dict(counterparty_id="C_BADTYPE", counterparty_type="ALIEN"),
       dict(counterparty_id="C_DUP", counterparty_type="BANK"),
       dict(counterparty_id="C_DUP", counterparty_type="BANK")]
SECS = [dict(security_id="S_L1", hqla_level="L1", issuer_type="SOVEREIGN", maturity_date=day(1000)),
        dict(security_id="S_L2A", hqla_level="L2A", issuer_type="CORPORATE", maturity_date=None),
        dict(security_id="S_L2B", hqla_level="L2B_OTHER", issuer_type="CORPORATE", maturity_date=day(2000)),
        dict(security_id="S_NH30", hqla_level="NON_HQLA", issuer_type="CORPORATE", maturity_date=day(30)),
        dict(security_id="S_NH31", hqla_level="NON_HQLA", issuer_type="CORPORATE", maturity_date=day(31)),
        dict(security_id="S_BADLVL", hqla_level="L3", issuer_type="CORPORATE", maturity_date=None),
        dict(security_id="S_NOPRICE", hqla_level="L1", issuer_type="SOVEREIGN", maturity_date=None)]
PRICES = [dict(security_id="S_L1", price=100.0), dict(security_id="S_L2A", price=100.0),
          dict(security_id="S_L2B", price=50.0), dict(security_id="S_NH30", price=10.0),
          dict(security_id="S_NH31", price=10.0), dict(security_id="S_BADLVL", price=1.0)]

POSITIONS = [
    # ---- E1 (GBP): HQLA caps and the inflow cap
    P("A1", "E1", "CASH", "USD", 1250.0),                                   # L1 1000 GBP
    P("A2", "E1", "SECURITY", "GBP", qty=20.0, sec="S_L2A"),                # 2000 -> L2A 1700, RSF .15
    P("A3", "E1", "SECURITY", "GBP", qty=100.0, sec="S_L2B"),               # 5000 -> L2B 2500, RSF .5
    P("A4", "E1", "DEPOSIT", "GBP", 1000.0, "C_SOV", ins=False, op=False),  # out .40, ASF .50
    P("A5", "E1", "DERIVATIVE_NET_INFLOW", "GBP", 1000.0, "C_BANK"),        # in 1.0, RSF 1.0
    # ---- E2 (USD): valid positions
    P("P1", "E2", "CASH", "USD", 1000.0),                                   # L1 1000
    P("P2", "E2", "CASH", "GBP", 800.0),                                    # L1 1000 USD
    P("P3", "E2", "SECURITY", qty=10.0, sec="S_L1", enc=day(0)),            # encumbered (= d): not HQLA, RSF .05 x 1000
    P("P4", "E2", "SECURITY", qty=100.0, sec="S_NH30", mat=day(400)),       # security matures d+30: in 1.0; RSF .5
    P("P5", "E2", "SECURITY", qty=100.0, sec="S_NH31", mat=day(5)),         # d+31: no inflow; RSF .5
    P("P6", "E2", "DEPOSIT", bal=10000.0, cp="C_RET", ins=True, stable=True, mat=day(30)),  # out .05, ASF .95
    P("P7", "E2", "DEPOSIT", bal=10000.0, cp="C_RET", ins=True, stable=True, mat=day(31)),  # no out, ASF .95
    P("P8", "E2", "LOAN", bal=2000.0, cp="C_BANK", mat=day(-5)),            # past maturity r=0: in 1.0, RSF .15
    P("P9", "E2", "LOAN", bal=4000.0, cp="C_NFC", rw=0.35),                 # no maturity: no in, RSF .65
    P("P10", "E2", "LOAN", bal=1000.0, cp="C_NFC", mat=day(10), perf=False),  # non-performing: no in, RSF 1.0
    P("P11", "E2", "LOAN", bal=1000.0, cp="C_BANK", mat=day(10), enc=day(183)),  # in 1.0, RSF max(.15,.5)
    P("P12", "E2", "LOAN", bal=1000.0, cp="C_BANK", mat=day(10), enc=day(182)),  # in 1.0, RSF .15
    P("P13", "E2", "MORTGAGE", bal=1000.0, cp="C_RET", mat=day(10), enc=day(365)),  # in .5, RSF 1.0
    P("P14", "E2", "ISSUED_DEBT", bal=1000.0, cp="C_BANK", mat=day(365)),   # ASF 1.0
    P("P15", "E2", "ISSUED_DEBT", bal=1000.0, cp="C_BANK", mat=day(364)),   # ASF .5
    P("P16", "E2", "ISSUED_DEBT", bal=1000.0, cp="C_BANK", mat=day(182)),   # ASF 0, no out
    P("P17", "E2", "ISSUED_DEBT", bal=1000.0, cp="C_BANK", mat=day(183)),   # ASF .5
    P("P18", "E2", "REPO", bal=1000.0, cp="C_CB", sec="S_NH30", mat=day(5)),  # out 0 (CB), ASF .5 (public)
    P("P19", "E2", "REPO", bal=1000.0, cp="C_BANK"),                        # no collateral: out 1.0, ASF 0
    P("P20", "E2", "REVERSE_REPO", bal=1000.0, cp="C_BANK", sec="S_L1", mat=day(30)),  # in 0, RSF .10
    P("P21", "E2", "OTHER_LIABILITY", bal=1000.0, mat=day(31)),             # no cp needed; no out, ASF 0
    P("P22", "E2", "DERIVATIVE_NET_INFLOW", bal=100.0, cp="C_BANK"),        # in 1.0, RSF 1.0
    # ---- E2: quarantined
    P("Q1", "E2", "CASH", bal=10.0, cp="NOPE"),              # unknown key checked even if not needed
    P("Q2", "E2", "LOAN", bal=-1.0, cp="C_BANK"),            # negative balance
    P("Q3", "E2", "LOAN", bal=10.0, cp="C_BANK", rw=12.6),   # risk weight out of range
    P("DUP", "E2", "LOAN", bal=10.0, cp="C_BANK", src="LOANS"),  # duplicated key: both copies
    P("DUP", "E2", "LOAN", bal=10.0, cp="C_BANK", src="LOANS"),
    P("Q5", "E2", "DEPOSIT", bal=10.0),                      # counterparty required
    P("Q6", "E2", "SECURITY", qty=1.0, sec="S_NOPRICE"),     # no price
    P("Q7", "E2", "SECURITY", sec="S_L1"),                   # no quantity
    P("Q8", "E2", "CASH", "JPY", 10.0),                      # duplicated fx key -> no rate
    P("Q9", "E2", "LOAN", bal=10.0, cp="C_DUP"),             # duplicated counterparty
    P("Q10", "E2", "LOAN", bal=10.0, cp="C_BADTYPE"),        # invalid counterparty type
    P("Q11", "E2", "SWAPTION", bal=10.0, cp="C_BANK"),       # unknown product
    P("Q12", "E2", "SECURITY", qty=1.0, sec="S_BADLVL"),     # invalid security row
    P("Q13", "E2", "LOAN", bal=10.0, cp="C_BANK", sec="NOSEC"),  # unknown security, not needed
    P("Q14", "E2", "CASH", bal=None),                        # balance required
    P(None, "E2", "CASH", bal=10.0),                         # position_id required
    P("Q16", "E2", "CASH", "CHF", 10.0),                     # fx <= 0 -> no rate
    # ---- E3: reporting currency without FX rate -> all quarantined
    P("R1", "E3", "CASH", "USD", 100.0),
    P("R2", "E3", "CASH", "USD", 100.0),
    # ---- no entity's figures
    P("X1", "E_BAD", "CASH", "USD", 100.0),
    P("X2", "E_DUP", "CASH", "USD", 100.0),
    P("X3", "NOWHERE", "CASH", "USD", 100.0),
    P("X4", None, "CASH", "USD", 100.0),
]


@pytest.fixture()
def synthetic(tmp_path):
    return _write(tmp_path, {
        "positions": _table(POSITIONS, POS_COLS, POS_TYPES),
        "counterparties": _table([dict(r, name=None, country=None) for r in CPS],
                                 ["counterparty_id", "counterparty_type", "name", "country"]),
        "securities": _table(SECS, ["security_id", "hqla_level", "issuer_type", "maturity_date"],
                             {"maturity_date": pa.date32()}),
        "entities": _table(ENTITIES, ["entity_id", "name", "reporting_currency", "country",
                                      "parent_entity_id"]),
        "fx_rates": _table(FX, ["currency", "usd_per_unit"], {"usd_per_unit": pa.float64()}),
        "prices": _table(PRICES, ["security_id", "price"], {"price": pa.float64()}),
    })


def _by_entity(rows):
    return {r["entity_id"]: r for r in rows}


def _check(row, **exp):
    for k, v in exp.items():
        assert _close(row[k], v, abs_=1e-9) if k not in COUNTS else row[k] == v, \
            f"{row['entity_id']} {k}: {row[k]} != {v}"


def test_synthetic_entities_and_counts(synthetic):
    rows = compute_metrics_sql(str(synthetic), DS)
    assert [r["entity_id"] for r in rows] == ["E1", "E2", "E3", "E4"]
    by = _by_entity(rows)
    _check(by["E2"], positions_accepted=22, positions_quarantined=17)
    _check(by["E3"], positions_accepted=0, positions_quarantined=2)
    _check(by["E4"], positions_accepted=0, positions_quarantined=0)
    for e in ("E3", "E4"):
        r = by[e]
        for k in baseline_sql.OUTPUT_COLUMNS:
            if k in TEXT or k in COUNTS:
                continue
            if k in ("lcr", "nsfr"):
                assert r[k] is None
            else:
                assert r[k] == 0.0 and isinstance(r[k], float), (e, k)


def test_synthetic_hqla_caps_and_inflow_cap(synthetic):
    e1 = _by_entity(compute_metrics_sql(str(synthetic), DS))["E1"]
    l1, l2a, l2b = 1000.0, 1700.0, 2500.0
    adj15 = l2b - 15 / 60 * l1                  # 2250 (> 2500 - 15/85 x 2700 = 2023.5)
    adj40 = l2a + l2b - adj15 - 2 / 3 * l1      # 1283.33...
    hqla = l1 / 0.6                             # L2 capped at 40 % of the stock
    _check(e1, hqla_l1=l1, hqla_l2a=l2a, hqla_l2b=l2b, adj15=adj15, adj40=adj40, hqla=hqla,
           total_outflows=400.0, total_inflows=1000.0, capped_inflows=300.0,
           net_outflows=100.0, lcr=hqla / 100.0, asf=500.0, rsf=300.0 + 2500.0 + 1000.0,
           nsfr=500.0 / 3800.0, positions_accepted=5, positions_quarantined=0)


def test_synthetic_day_boundaries(synthetic):
    e2 = _by_entity(compute_metrics_sql(str(synthetic), DS))["E2"]
    outflows = 500.0 + 1000.0                                   # P6, P19
    inflows = 1000.0 + 2000.0 + 1000.0 + 1000.0 + 500.0 + 0.0 + 100.0
    asf = 9500.0 + 9500.0 + 1000.0 + 500.0 + 0.0 + 500.0 + 500.0
    rsf = 50.0 + 500.0 + 500.0 + 300.0 + 2600.0 + 1000.0 + 500.0 + 150.0 + 1000.0 + 100.0 + 100.0
    capped = 0.75 * outflows
    _check(e2, hqla_l1=2000.0, hqla_l2a=0.0, hqla_l2b=0.0, adj15=0.0, adj40=0.0, hqla=2000.0,
           total_outflows=outflows, total_inflows=inflows, capped_inflows=capped,
           net_outflows=outflows - capped, lcr=2000.0 / (outflows - capped),
           asf=asf, rsf=rsf, nsfr=asf / rsf)


def test_synthetic_position_fields(synthetic):
    t = position_fields_sql(str(synthetic), DS).to_pylist()
    f = {(r["position_id"], r["entity_id"]): r for r in t}
    p16 = f[("P16", "E2")]
    assert p16["is_valid"] and p16["outflow_rate"] is None and p16["asf_factor"] == 0.0
    assert p16["rsf_factor"] is None and p16["hqla_level"] is None
    p3 = f[("P3", "E2")]
    assert p3["hqla_level"] is None and p3["haircut"] is None and p3["rsf_factor"] == 0.05
    p1 = f[("P1", "E2")]
    assert p1["hqla_level"] == "L1" and p1["haircut"] == 0.0 and p1["rsf_factor"] == 0.0
    p20 = f[("P20", "E2")]
    assert p20["inflow_rate"] == 0.0 and p20["rsf_factor"] == pytest.approx(0.10)
    assert f[("P11", "E2")]["rsf_factor"] == 0.5 and f[("P12", "E2")]["rsf_factor"] == 0.15
    assert not f[("Q1", "E2")]["is_valid"] and f[("Q1", "E2")]["amount"] is None
    assert sum(1 for r in t if r["position_id"] == "DUP" and not r["is_valid"]) == 2


# ------------------------------------------------------------------------------------------
# CSV text parsing
# ------------------------------------------------------------------------------------------

def test_csv_text_rules(tmp_path):
    folder = tmp_path / f"business_date={DS}"
    folder.mkdir()
    files = {
        "entities": "entity_id,name,reporting_currency,country,parent_entity_id\nE,Ent,USD,,\n",
        "fx_rates": "currency,usd_per_unit\nUSD,1\nEUR,abc\n",
        "counterparties": "counterparty_id,counterparty_type,name,country\nC,RETAIL,,\n",
        "securities": "security_id,hqla_level,issuer_type,maturity_date\n"
                      "S1,NON_HQLA,,2024-07-28\nS2,L1,SOVEREIGN,2024-7-28\n",
        "prices": "security_id,price\nS1,10\nS2,10\n",
        "positions": ",".join(POS_COLS) + "\n" + "\n".join([
            # valid: TRUE/False in any case, exponent number
            "V1,S,E,C,DEPOSIT,USD,1e3,,,,TRUE,True,,,,",
            # valid: security maturing exactly in 30 days, null issuer_type -> inflow 1.0, RSF .5
            "V2,S,E,,SECURITY,USD,,10,S1,,,,,,,",
            "B1,S,E,C,DEPOSIT,USD,100,,,,yes,,,,,",           # bad boolean
            "B2,S,E,C,DEPOSIT,USD,100,,,2024-7-01,,,,,,",      # bad date format
            "B3,S,E,C,DEPOSIT,USD,\"1,000\",,,,,,,,,",         # bad number
            "B4,S,E,C,DEPOSIT,EUR,100,,,,,,,,,",               # fx unparseable -> no rate
            "B5,S,E,,SECURITY,USD,,10,S2,,,,,,,",              # security row with bad date
            "B6,S,E,C,DEPOSIT,USD,100,,,2024-02-30,,,,,,",     # not a date
            "B7,S,E,C,DEPOSIT,USD,nan,,,,,,,,,",               # NaN is not a decimal
        ]) + "\n",
    }
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text)
    (row,) = compute_metrics_sql(str(tmp_path), DS)
    _check(row, positions_accepted=2, positions_quarantined=7,
           total_outflows=50.0, asf=950.0, total_inflows=100.0, rsf=50.0)
