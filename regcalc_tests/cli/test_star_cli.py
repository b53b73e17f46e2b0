"""`regcalc star build --spec SPEC --out DIR`: the design document's example (Appendix A) as CSV
files and a spec, entities kept as SCD2; the classification it prints, the star tables it writes
as Parquet (hand-worked rows, keys computed here with hashlib), a re-run that replaces, and the
errors: one line, exit 2, a previous OUT left as it was."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from regcalc_tests.helpers import regcalc

D = dt.date
FAR = D(9999, 12, 31)
UNKNOWN = "<unknown>"
SPEC = """\
tables:
  deals:    {path: deals.csv, key: [deal_id], date: date}
  entities: {path: entities.csv, key: [entity_id]}
  products: {path: products.csv, key: [product_id]}
relationships:
  - {from: deals.entity_id, to: entities.entity_id, type: "n:1"}
  - {from: deals.product_id, to: products.product_id, type: "n:1"}
columns:
  deals: {amount: sum, rate: avg}
fact: deals
scd2:
  entities: {track: [sector, country], as_of: snapshot_date}
date_dimension: {from: "2024-01-01", to: "2024-12-31"}
aggregates: [[date_key, entities_key]]
"""
DEALS = """\
deal_id,product_id,entity_id,amount,rate,date
D001,P001,E001,1000000,0.05,2024-01-15
D002,P002,E001,2000000,0.03,2024-01-15
D003,P001,E002,1500000,0.04,2024-01-16
"""
# E001 moves from Banking to Insurance on 2024-01-16 (its 2024-01-10 snapshot changes nothing);
# E002 never changes
ENTITIES = """\
entity_id,entity_name,sector,country,snapshot_date
E001,Entity One,Banking,US,2024-01-01
E002,Entity Two,Insurance,UK,2024-01-01
E001,Entity One,Banking,US,2024-01-10
E001,Entity One,Insurance,US,2024-01-16
E002,Entity Two,Insurance,UK,2024-01-16
"""
PRODUCTS = """\
product_id,product_name,product_type,risk_level
P001,Bond,Fixed Income,Low
P002,Loan,Credit,Medium
"""
AGG = "agg_deals_by_date_key_entities_key"
TABLES = ["dim_entities", "dim_products", "dim_date", "fact_deals", AGG]


def sk(*parts: str) -> int:
    """The expected surrogate key: SHA-256 over the parts joined by 0x1f, first 15 hex digits."""
    return int(hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:15], 16)


E1_JAN1, E1_JAN16, E2_JAN1 = sk("E001", "2024-01-01"), sk("E001", "2024-01-16"), sk("E002", "2024-01-01")
P1, P2 = sk("P001"), sk("P002")
EXPECTED_ENTITIES = [
    {"entities_key": -1, "entity_id": UNKNOWN, "entity_name": UNKNOWN, "sector": UNKNOWN, "country": UNKNOWN,
     "valid_from": D(1900, 1, 1), "valid_to": FAR, "is_current": True},
    {"entities_key": E1_JAN1, "entity_id": "E001", "entity_name": "Entity One", "sector": "Banking", "country": "US",
     "valid_from": D(2024, 1, 1), "valid_to": D(2024, 1, 16), "is_current": False},
    {"entities_key": E1_JAN16, "entity_id": "E001", "entity_name": "Entity One", "sector": "Insurance", "country": "US",
     "valid_from": D(2024, 1, 16), "valid_to": FAR, "is_current": True},
    {"entities_key": E2_JAN1, "entity_id": "E002", "entity_name": "Entity Two", "sector": "Insurance", "country": "UK",
     "valid_from": D(2024, 1, 1), "valid_to": FAR, "is_current": True},
]
EXPECTED_PRODUCTS = [
    {"products_key": -1, "product_id": UNKNOWN, "product_name": UNKNOWN, "product_type": UNKNOWN, "risk_level": UNKNOWN},
    {"products_key": P1, "product_id": "P001", "product_name": "Bond", "product_type": "Fixed Income", "risk_level": "Low"},
    {"products_key": P2, "product_id": "P002", "product_name": "Loan", "product_type": "Credit", "risk_level": "Medium"},
]
FACT_COLUMNS = ("deal_id", "date_key", "entities_key", "products_key", "amount", "rate")
EXPECTED_FACT = [  # the deals of 2024-01-15 resolve to E001's version of then, not to its current one
    {"deal_id": "D001", "date_key": 20240115, "entities_key": E1_JAN1, "products_key": P1, "amount": 1000000, "rate": 0.05},
    {"deal_id": "D002", "date_key": 20240115, "entities_key": E1_JAN1, "products_key": P2, "amount": 2000000, "rate": 0.03},
    {"deal_id": "D003", "date_key": 20240116, "entities_key": E2_JAN1, "products_key": P1, "amount": 1500000, "rate": 0.04},
]
EXPECTED_AGG = [
    {"date_key": 20240115, "entities_key": E1_JAN1, "amount": 3000000, "rate": 0.04, "row_count": 2},
    {"date_key": 20240116, "entities_key": E2_JAN1, "amount": 1500000, "rate": 0.04, "row_count": 1},
]


def ordered(dicts) -> list[dict]:
    return sorted(({k: round(v, 9) if isinstance(v, float) else v for k, v in r.items()} for r in dicts),
                  key=lambda r: repr(sorted(r.items())))


def read(out: Path, name: str, *columns: str) -> list[dict]:
    table = pq.read_table(out / name)
    return ordered({c: r[c] for c in columns} if columns else r for r in table.to_pylist())


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file under OUT (hidden ones too), by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def _collect_garbage():
    """Each `star build` leaves Dagster's ephemeral instance (SQLAlchemy connections to an
    in-memory SQLite) to the garbage collector, whose finalizers log a traceback; in Python 3.11
    formatting that traceback calls ast.parse, which corrupts an ast.parse already running when the
    collection started (pytest's late import of hypothesis at the end of the session: "SystemError:
    AST constructor recursion depth mismatch"). Collect at a quiet moment instead."""
    yield
    gc.collect()


@pytest.fixture()
def example(tmp_path) -> Path:
    folder = tmp_path / "example"
    folder.mkdir()
    for name, text in {"spec.yaml": SPEC, "deals.csv": DEALS, "entities.csv": ENTITIES, "products.csv": PRODUCTS}.items():
        (folder / name).write_text(text)
    return folder / "spec.yaml"


def build(spec: Path, out: Path, home: Path, *extra: str, check: bool = True):
    return regcalc("star", "build", "--spec", str(spec), "--out", str(out), *extra, home=home, check=check)


def test_build_prints_the_classification_and_writes_the_star(example, regcalc_home, tmp_path):
    out = tmp_path / "star"
    lines = build(example, out, regcalc_home).stdout.splitlines()

    assert re.fullmatch(r"deals\s+fact\s+named as the fact table \(fact: deals\); holds measures amount, rate", lines[1])
    assert re.fullmatch(r"entities\s+dimension\s+one side of deals\.entity_id -> entities\.entity_id \(n:1\)", lines[2])
    assert re.fullmatch(r"products\s+dimension\s+one side of deals\.product_id -> products\.product_id \(n:1\)", lines[3])
    tables = {line.split()[0]: line for line in lines[5:] if line.strip() and not line.startswith("wrote")}
    assert list(tables) == TABLES
    assert re.search(r"\s4 rows\s+DISTSTYLE ALL SORTKEY\(entities_key\)$", tables["dim_entities"])
    assert re.search(r"\s3 rows\s+DISTSTYLE ALL SORTKEY\(products_key\)$", tables["dim_products"])
    assert re.search(r"\s367 rows\s+DISTSTYLE ALL SORTKEY\(date_key\)$", tables["dim_date"])
    assert re.search(r"\s3 rows\s+DISTSTYLE KEY DISTKEY\((entities_key|products_key)\) SORTKEY\(date_key, \1\)$",
                     tables["fact_deals"])
    assert re.search(r"\s2 rows\s+DISTSTYLE AUTO SORTKEY\(date_key\)$", tables[AGG])
    assert lines[-1] == f"wrote 5 tables under {out}"

    assert sorted(p.name for p in out.iterdir()) == sorted(TABLES), "one directory per table, nothing else"
    assert read(out, "dim_entities") == ordered(EXPECTED_ENTITIES)
    assert read(out, "dim_products") == ordered(EXPECTED_PRODUCTS)
    assert read(out, "fact_deals", *FACT_COLUMNS) == ordered(EXPECTED_FACT)
    assert read(out, AGG) == ordered(EXPECTED_AGG)
    fact_schema, agg_schema = pq.read_schema(next((out / "fact_deals").glob("*.parquet"))), \
        pq.read_schema(next((out / AGG).glob("*.parquet")))
    assert str(agg_schema.field("amount").type) == str(fact_schema.field("amount").type) == "int64"

    days = {r["date_key"]: r for r in pq.read_table(out / "dim_date").to_pylist()}
    assert len(days) == 367 and days[-1]["date"] is None
    assert (days[20240329]["day_of_week"], days[20240329]["is_last_business_day_of_month"]) == (5, True)
    assert (days[20240331]["is_quarter_end"], days[20240331]["is_business_day"]) == (True, False)
    assert (days[20240430]["is_month_end"], days[20240430]["is_quarter_end"]) == (True, False)


def test_json_output_and_a_rerun_replaces(example, regcalc_home, tmp_path):
    out = tmp_path / "star"
    report = json.loads(build(example, out, regcalc_home, "--format", "json").stdout)
    assert [(c["table"], c["role"], c["star_table"]) for c in report["classification"]] == [
        ("deals", "fact", "fact_deals"), ("entities", "dimension", "dim_entities"), ("products", "dimension", "dim_products")]
    assert "one side of deals.entity_id -> entities.entity_id" in report["classification"][1]["reason"]
    assert {n: t["rows"] for n, t in report["tables"].items()} == {
        "dim_entities": 4, "dim_products": 3, "dim_date": 367, "fact_deals": 3, AGG: 2}
    assert {n: t["diststyle"] for n, t in report["tables"].items()} == {
        "dim_entities": "ALL", "dim_products": "ALL", "dim_date": "ALL", "fact_deals": "KEY", AGG: "AUTO"}
    assert report["tables"]["fact_deals"]["distkey"] in ("entities_key", "products_key")
    assert report["tables"]["fact_deals"]["sortkey"][0] == "date_key"
    assert report["unknown_members"] == {"fact_deals": {"date_key": 0, "entities_key": 0, "products_key": 0}}

    # new deals: the second run replaces every table, it does not add to them
    (example.parent / "deals.csv").write_text("deal_id,product_id,entity_id,amount,rate,date\n"
                                              "D001,P001,E001,10,0.05,2024-01-20\n"
                                              "D004,P009,E009,20,0.01,2024-01-20\n")
    text = build(example, out, regcalc_home).stdout
    assert re.search(r"^fact_deals\s+2 rows .*\(2 foreign keys at the unknown member\)$", text, re.M)
    assert read(out, "fact_deals", *FACT_COLUMNS) == ordered([
        {"deal_id": "D001", "date_key": 20240120, "entities_key": E1_JAN16, "products_key": P1, "amount": 10, "rate": 0.05},
        {"deal_id": "D004", "date_key": 20240120, "entities_key": -1, "products_key": -1, "amount": 20, "rate": 0.01}])
    assert read(out, AGG) == ordered([
        {"date_key": 20240120, "entities_key": E1_JAN16, "amount": 10, "rate": 0.05, "row_count": 1},
        {"date_key": 20240120, "entities_key": -1, "amount": 20, "rate": 0.01, "row_count": 1}])
    assert read(out, "dim_entities") == ordered(EXPECTED_ENTITIES)
    assert sorted(p.name for p in out.iterdir()) == sorted(TABLES), "no staging directory left behind"


@pytest.mark.parametrize(("change", "culprit"), [
    (("columns:\n  deals: {amount: sum, rate: avg}", "columns:\n  deals: {amount: sum, notional: sum}"),
     r"table 'deals' has no column 'notional'"),
    (("deals.product_id, to: products.product_id", "deals.product_code, to: products.product_id"),
     r"table 'deals' has no column 'product_code'"),
    (("path: products.csv", "path: products_2024.csv"), r"table 'products': .*products_2024\.csv does not exist"),
    (("to: entities.entity_id", "to: entitys.entity_id"), r"names table 'entitys', which the spec does not define"),
], ids=["missing measure column", "missing key column", "missing file", "missing table"])
def test_a_bad_spec_exits_2_with_one_line(example, regcalc_home, tmp_path, change, culprit):
    example.write_text(SPEC.replace(*change))
    result = build(example, tmp_path / "star", regcalc_home, check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(culprit, lines[0]), lines
    assert not (tmp_path / "star").exists() or not any((tmp_path / "star").iterdir())


def test_a_failing_build_leaves_the_previous_out_untouched(example, regcalc_home, tmp_path, monkeypatch):
    out = tmp_path / "star"
    build(example, out, regcalc_home)
    before = snapshot(out)

    # bad data: a product twice
    (example.parent / "products.csv").write_text(PRODUCTS + "P001,Bond bis,Fixed Income,Low\n")
    result = build(example, out, regcalc_home, check=False)
    assert result.returncode == 2
    assert re.search(r"'products'.*product_id.*not unique.*product_id='P001' \(2 rows\)", result.stderr)
    assert snapshot(out) == before

    # a failure while writing, after some tables are written
    (example.parent / "products.csv").write_text(PRODUCTS)
    (example.parent / "deals.csv").write_text(DEALS + "D004,P002,E002,5,0.02,2024-02-01\n")
    from regcalc_resources.engine import DuckDBEngine

    written, write_table = [], DuckDBEngine.write_table

    def fail_on_the_third(self, df, dest_dir):
        written.append(dest_dir)
        if len(written) == 3:
            raise OSError("No space left on device")
        return write_table(self, df, dest_dir)

    monkeypatch.setattr(DuckDBEngine, "write_table", fail_on_the_third)
    result = build(example, out, regcalc_home, check=False)
    assert result.returncode == 1 and "No space left on device" in result.stderr
    assert len(written) == 3
    assert snapshot(out) == before, "nothing of the failed build is in OUT, not even a staging directory"
