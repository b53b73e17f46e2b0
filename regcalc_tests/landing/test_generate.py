"""The synthetic landing-zone generator: contract schemas, coverage, determinism, bad rows."""

from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from regcalc_assets.landing import generate as gen
from regcalc_assets.landing.generate import generate_landing

GOLDEN_DATE = "business_date=2024-06-28"
FRIDAY = datetime.date(2024, 6, 28)
N = 2_000
NO_COUNTERPARTY = {"CASH", "CENTRAL_BANK_RESERVE", "SECURITY", "EQUITY_CAPITAL", "OTHER_ASSET", "OTHER_LIABILITY"}


def read(root: Path, day: str, name: str) -> pa.Table:
    return pq.read_table(root / f"business_date={day}" / f"{name}.parquet")


def read_csv_typed(path: Path, schema: pa.Schema) -> pa.Table:
    """A CSV file parsed strictly with the contract's types (empty cell = null)."""
    options = pacsv.ConvertOptions(column_types=schema, true_values=["true"], false_values=["false"],
                                   strings_can_be_null=True, null_values=[""])
    return pacsv.read_csv(path, convert_options=options).select(schema.names)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """Three clean business dates from a Friday (so a weekend is crossed), 5 entities, 2,000 positions each."""
    root = tmp_path_factory.mktemp("clean")
    summary = generate_landing(root, FRIDAY, days=3, entities=5, positions=N, seed=11, bad_row_rate=0.0)
    return root, summary


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    root = tmp_path_factory.mktemp("dirty")
    summary = generate_landing(root, FRIDAY, days=1, entities=4, positions=N, seed=5, bad_row_rate=0.02)
    return root, summary


@pytest.mark.parametrize("name", gen.FILES)
def test_parquet_schemas_equal_the_golden_files(clean, name, golden):
    root, summary = clean
    golden = pq.read_schema(golden / "landing" / GOLDEN_DATE / f"{name}.parquet")
    assert gen.SCHEMAS[name].equals(golden)
    for day in summary["dates"]:
        assert pq.read_schema(root / f"business_date={day}" / f"{name}.parquet").equals(golden)
        assert pq.ParquetFile(root / f"business_date={day}" / f"{name}.parquet").metadata.row_group(0) \
            .column(0).compression == "ZSTD"


def test_csv_has_the_golden_header_and_the_same_content_as_parquet(clean, tmp_path, golden):
    root, summary = clean
    generate_landing(tmp_path, FRIDAY, days=3, entities=5, positions=N, seed=11, fmt="csv", bad_row_rate=0.0)
    for day in summary["dates"]:
        for name in gen.FILES:
            path = tmp_path / f"business_date={day}" / f"{name}.csv"
            header = path.open().readline().strip()
            assert header == (golden / "landing_csv" / GOLDEN_DATE / f"{name}.csv").open().readline().strip()
            assert header == ",".join(gen.SCHEMAS[name].names)
            assert read_csv_typed(path, gen.SCHEMAS[name]).equals(read(root, day, name)), (day, name)


def test_weekends_are_skipped(tmp_path):
    saturday = datetime.date(2024, 6, 29)
    summary = generate_landing(tmp_path, saturday, days=2, entities=1, positions=10, seed=1)
    assert summary["dates"] == ["2024-07-01", "2024-07-02"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["business_date=2024-07-01", "business_date=2024-07-02"]
    assert gen.business_dates(FRIDAY, 3) == [FRIDAY, datetime.date(2024, 7, 1), datetime.date(2024, 7, 2)]


def test_every_date_has_all_files_and_the_requested_number_of_positions(clean):
    root, summary = clean
    assert summary["dates"] == ["2024-06-28", "2024-07-01", "2024-07-02"]
    for day in summary["dates"]:
        assert sorted(p.name for p in (root / f"business_date={day}").iterdir()) == sorted(
            f"{name}.parquet" for name in gen.FILES)
        assert read(root, day, "positions").num_rows == N == summary["rows"][day]["positions"]
        for name in gen.FILES[1:]:
            assert read(root, day, name).num_rows == summary["rows"][day][name]
    assert read(root, "2024-06-28", "entities").column("entity_id").to_pylist() == [f"LE_00{i}" for i in range(1, 6)]


def test_every_product_counterparty_type_hqla_level_and_issuer_type_occurs(clean):
    root, summary = clean
    for day in summary["dates"]:
        positions = read(root, day, "positions").to_pandas()
        counterparties = read(root, day, "counterparties").to_pandas()
        securities = read(root, day, "securities").to_pandas()
        assert set(positions["product"]) == set(gen.PRODUCTS)
        types = positions.merge(counterparties, on="counterparty_id")["counterparty_type"]
        assert set(types) == set(counterparties["counterparty_type"]) == set(gen.CP_TYPES)
        assert set(securities["hqla_level"]) == set(gen.HQLA_LEVELS)
        assert set(securities["issuer_type"].dropna()) == set(gen.ISSUER_TYPES)
        assert positions["currency"].nunique() >= 4
        assert {"LOANS", "DEPOSITS", "TREASURY", "MARKETS"} == set(positions["source_system"])


def test_maturities_and_encumbrances_straddle_the_30_day_6_month_and_1_year_limits(clean):
    root, summary = clean
    for day in summary["dates"]:
        p = read(root, day, "positions").to_pandas()
        d = datetime.date.fromisoformat(day)
        r = p["maturity_date"].dropna().map(lambda m: (m - d).days)
        assert {30, 31, 182, 183, 364, 365} <= set(r)
        assert (r < 0).any() and p["maturity_date"].isna().any()
        e = p["encumbered_until"].dropna().map(lambda m: (m - d).days)
        assert 0 in set(e) and (e < 183).any() and e.between(183, 364).any() and (e >= 365).any()
        assert {182, 183, 364, 365} <= set(e)
        assert set(p.loc[p["encumbered_until"].notna(), "product"]) <= {"SECURITY", "LOAN", "MORTGAGE", "CASH"}


def test_product_rules_and_flags(clean):
    root, _ = clean
    p = read(root, "2024-06-28", "positions").to_pandas()
    prices = set(read(root, "2024-06-28", "prices").column("security_id").to_pylist())
    held = p[p["product"] == "SECURITY"]
    assert held["security_id"].notna().all() and held["quantity"].notna().all() and held["balance"].isna().all()
    assert set(held["security_id"]) <= prices
    others = p[p["product"] != "SECURITY"]
    assert others["balance"].notna().all() and others["quantity"].isna().all()
    repos = p[p["product"].isin(["REPO", "REVERSE_REPO"])]
    assert repos["security_id"].notna().any() and repos["security_id"].isna().any()
    assert p.loc[~p["product"].isin(NO_COUNTERPARTY), "counterparty_id"].notna().all()
    lending = p[p["product"].isin(["LOAN", "MORTGAGE"])]
    assert (lending["performing"] == False).any()  # noqa: E712 - non-performing loans occur
    rw = p["risk_weight"].dropna().astype(float)
    assert rw.between(0, 1.5).all() and rw.nunique() > 3
    for flag in ("insured", "stable_relationship", "operational"):
        deposits = p.loc[p["product"] == "DEPOSIT", flag]
        assert deposits.isna().any() and (deposits == True).any() and (deposits == False).any()  # noqa: E712
    sizes = p["entity_id"].value_counts()
    assert sizes["LE_001"] > 2 * sizes["LE_005"]
    entities = read(root, "2024-06-28", "entities").to_pandas()
    assert entities["reporting_currency"].nunique() == 5 and entities["parent_entity_id"].notna().any()


def test_a_clean_delivery_breaks_no_rule(clean):
    root, summary = clean
    assert summary["bad_rows_injected"] == 0 and set(summary["rows_to_quarantine"].values()) == {0}
    for day in summary["dates"]:
        assert broken_rows(root, day) == {}


def test_same_seed_same_files_different_seed_different_positions(clean, tmp_path):
    root, summary = clean
    again = generate_landing(tmp_path / "again", FRIDAY, days=3, entities=5, positions=N, seed=11, bad_row_rate=0.0)
    other = generate_landing(tmp_path / "other", FRIDAY, days=1, entities=5, positions=N, seed=12, bad_row_rate=0.0)
    assert again == {**summary, "root": str(tmp_path / "again")}
    for day in summary["dates"]:
        for name in gen.FILES:
            assert read(tmp_path / "again", day, name).equals(read(root, day, name))
    assert not read(tmp_path / "other", "2024-06-28", "positions").equals(read(root, "2024-06-28", "positions"))
    assert read(root, "2024-06-28", "entities").equals(read(root, "2024-07-01", "entities"))
    assert not read(root, "2024-06-28", "fx_rates").equals(read(root, "2024-07-01", "fx_rates"))


def test_bad_rows_break_the_contract_in_every_way_and_are_counted(dirty):
    root, summary = dirty
    found = broken_rows(root, "2024-06-28")
    assert set(found) == set(gen.BAD_KINDS)
    assert sum(summary["bad_rows_by_kind"].values()) == summary["bad_rows_injected"] == round(N * 0.02)
    assert len(set().union(*found.values())) == summary["rows_to_quarantine"]["2024-06-28"]
    assert read(root, "2024-06-28", "positions").num_rows == N


def test_csv_bad_rows_include_unparseable_dates_numbers_and_booleans(tmp_path):
    summary = generate_landing(tmp_path, FRIDAY, days=1, entities=2, positions=N, seed=3, fmt="csv", bad_row_rate=0.03)
    assert all(summary["bad_rows_by_kind"][kind] > 0 for kind in gen.BAD_KINDS + gen.CSV_BAD_KINDS)
    path = tmp_path / "business_date=2024-06-28" / "positions.csv"
    with pytest.raises(pa.ArrowInvalid):
        read_csv_typed(path, gen.SCHEMAS["positions"])
    text = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={name: pa.string() for name in gen.SCHEMAS["positions"].names})).to_pandas()
    assert len(text) == N

    def unparseable(column, parse):
        return int((text[column].ne("") & parse(text[column]).isna()).sum())

    def as_date(s):
        return pd.to_datetime(s.where(s.str.fullmatch(r"\d{4}-\d{2}-\d{2}")), format="%Y-%m-%d", errors="coerce")

    def as_number(s):
        return pd.to_numeric(s.where(s.str.fullmatch(r"-?\d+(\.\d+)?")), errors="coerce")

    def as_bool(s):
        return s.str.lower().map({"true": True, "false": False})

    counts = summary["bad_rows_by_kind"]
    dates = unparseable("maturity_date", as_date) + unparseable("encumbered_until", as_date)
    assert dates == counts["unparseable_date"]
    assert unparseable("balance", as_number) + unparseable("quantity", as_number) == counts["unparseable_number"]
    assert sum(unparseable(c, as_bool) for c in ("insured", "stable_relationship", "operational", "performing")) \
        == counts["unparseable_boolean"]


def test_chunked_generation_writes_one_row_group_per_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "CHUNK_ROWS", 700)
    summary = generate_landing(tmp_path, FRIDAY, days=1, entities=3, positions=N, seed=9, bad_row_rate=0.01)
    path = tmp_path / "business_date=2024-06-28" / "positions.parquet"
    assert pq.ParquetFile(path).num_row_groups == 3
    assert pq.read_table(path).num_rows == N
    assert summary["bad_rows_injected"] == round(N * 0.01)
    broken = set().union(*broken_rows(tmp_path, "2024-06-28").values())
    assert len(broken) == summary["rows_to_quarantine"]["2024-06-28"]


def broken_rows(root: Path, day: str) -> dict[str, set[int]]:
    """A minimal contract check of the parquet delivery: the row numbers breaking each rule."""
    p = read(root, day, "positions").to_pandas()
    cps = set(read(root, day, "counterparties").column("counterparty_id").to_pylist())
    secs = set(read(root, day, "securities").column("security_id").to_pylist())
    fx = set(read(root, day, "fx_rates").column("currency").to_pylist())
    key = p[["position_id", "source_system"]]
    rules = {
        "unknown_product": ~p["product"].isin(gen.PRODUCTS),
        "negative_amount": (p["balance"].astype(float) < 0) | (p["quantity"].astype(float) < 0),
        "unknown_counterparty": p["counterparty_id"].notna() & ~p["counterparty_id"].isin(cps),
        "risk_weight_out_of_range": p["risk_weight"].astype(float) > 12.5,
        "duplicate_key": key.duplicated(keep=False),
        "currency_without_fx": ~p["currency"].isin(fx),
        "unknown_security": p["security_id"].notna() & ~p["security_id"].isin(secs),
    }
    return {rule: set(p.index[mask]) for rule, mask in rules.items() if mask.any()}
