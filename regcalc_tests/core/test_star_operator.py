"""The generic star-schema operator (regcalc_core/star, design document Appendix A) against
hand-worked tables: classification with reasons, surrogate keys computed here with hashlib,
unknown members, SCD2 histories from snapshot dates, bridges, the date dimension, aggregates,
physical design and the spec errors; then properties over generated inputs against a plain
Python model, and the same keys on DuckDB and on Spark."""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import random
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regcalc_core.dataframes import column_types, is_sqlframe
from regcalc_core.errors import RegcalcInputError
from regcalc_core.star.build import build_star, check_unique, date_dimension, key_of
from regcalc_core.star.spec import StarSpec, StarSpecError

D = dt.date
FAR = D(9999, 12, 31)
UNKNOWN = "<unknown>"


def sk(*parts) -> int:
    """The expected surrogate key, worked out here: SHA-256 over the parts (text; a date in ISO;
    None as NUL) joined by 0x1f, its first 15 hex digits as an integer."""
    text = "\x1f".join("\x00" if p is None else p.isoformat() if isinstance(p, dt.date) else p for p in parts)
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:15], 16)


def rows(df, *columns) -> list[dict]:
    """The DataFrame's rows as dicts (only ``columns`` when given), in a stable order."""
    out = [r.asDict() for r in df.collect()]
    if columns:
        out = [{c: r[c] for c in columns} for r in out]
    return sorted(out, key=lambda r: repr(sorted(r.items())))


def ordered(dicts) -> list[dict]:
    return sorted(dicts, key=lambda r: repr(sorted(r.items())))


def rounded(dicts) -> list[dict]:
    """Rows with their floats rounded to 9 places, in a stable order: to compare computed ratios."""
    return ordered([{k: round(v, 9) if isinstance(v, float) else v for k, v in r.items()} for r in dicts])


def test_key_of_is_the_hashlib_definition():
    assert key_of("E001") == sk("E001") == int(hashlib.sha256(b"E001").hexdigest()[:15], 16)
    assert key_of("E001", D(2024, 1, 31)) == sk("E001", "2024-01-31")
    assert key_of("a", None, "b") == int(hashlib.sha256(b"a\x1f\x00\x1fb").hexdigest()[:15], 16)
    assert key_of(7, True) == sk("7", "true")
    assert 0 <= key_of("x") < 2 ** 60


# --- the design document's usage example (Appendix A) --------------------------------------------
DEALS = [
    ("D001", "P001", "E001", 1000000, 0.05, "2024-01-15"),
    ("D002", "P002", "E001", 2000000, 0.03, "2024-01-15"),
    ("D003", "P001", "E002", 1500000, 0.04, "2024-01-16"),
]
DEAL_COLUMNS = ["deal_id", "product_id", "entity_id", "amount", "rate", "date"]
ENTITIES = [("E001", "Entity One", "Banking", "US"), ("E002", "Entity Two", "Insurance", "UK")]
PRODUCTS = [("P001", "Bond", "Fixed Income", "Low"), ("P002", "Loan", "Credit", "Medium")]
DESIGN_SPEC = {
    "tables": {"deals": {"key": ["deal_id"], "date": "date"}, "entities": {"key": ["entity_id"]},
               "products": {"key": ["product_id"]}},
    "relationships": [{"from": "deals.entity_id", "to": "entities.entity_id", "type": "n:1"},
                      {"from": "deals.product_id", "to": "products.product_id", "type": "n:1"}],
    "columns": {"deals": {"amount": "sum", "rate": "avg"}},
    "fact": "deals",
    "date_dimension": {"from": "2024-01-01", "to": "2024-12-31"},
    "aggregates": [["date_key", "entities_key"]],
}
E1, E2, P1, P2 = sk("E001"), sk("E002"), sk("P001"), sk("P002")
EXPECTED_ENTITIES = [
    {"entities_key": -1, "entity_id": UNKNOWN, "entity_name": UNKNOWN, "sector": UNKNOWN, "country": UNKNOWN},
    {"entities_key": E1, "entity_id": "E001", "entity_name": "Entity One", "sector": "Banking", "country": "US"},
    {"entities_key": E2, "entity_id": "E002", "entity_name": "Entity Two", "sector": "Insurance", "country": "UK"},
]
EXPECTED_PRODUCTS = [
    {"products_key": -1, "product_id": UNKNOWN, "product_name": UNKNOWN, "product_type": UNKNOWN, "risk_level": UNKNOWN},
    {"products_key": P1, "product_id": "P001", "product_name": "Bond", "product_type": "Fixed Income", "risk_level": "Low"},
    {"products_key": P2, "product_id": "P002", "product_name": "Loan", "product_type": "Credit", "risk_level": "Medium"},
]
FACT_COLUMNS = ("deal_id", "date_key", "entities_key", "products_key", "amount", "rate")
EXPECTED_FACT = [
    {"deal_id": "D001", "date_key": 20240115, "entities_key": E1, "products_key": P1, "amount": 1000000, "rate": 0.05},
    {"deal_id": "D002", "date_key": 20240115, "entities_key": E1, "products_key": P2, "amount": 2000000, "rate": 0.03},
    {"deal_id": "D003", "date_key": 20240116, "entities_key": E2, "products_key": P1, "amount": 1500000, "rate": 0.04},
]
AGG = "agg_deals_by_date_key_entities_key"


def design_inputs(spark, deals=DEALS):
    return {"deals": spark.createDataFrame(deals, DEAL_COLUMNS),
            "entities": spark.createDataFrame(ENTITIES, ["entity_id", "entity_name", "sector", "country"]),
            "products": spark.createDataFrame(PRODUCTS, ["product_id", "product_name", "product_type", "risk_level"])}


def test_design_example(spark):
    # each Spark job costs seconds: the natural-key checks run on DuckDB here (and on Spark in
    # test_same_star_on_duckdb_and_spark)
    star = build_star(StarSpec.from_dict(DESIGN_SPEC), design_inputs(spark), check=is_sqlframe(spark))

    assert [(r.table, r.role, r.output) for r in star.roles] == [
        ("deals", "fact", "fact_deals"), ("entities", "dimension", "dim_entities"), ("products", "dimension", "dim_products")]
    reasons = {r.table: r.reason for r in star.roles}
    assert "fact: deals" in reasons["deals"] and "amount, rate" in reasons["deals"]
    assert "one side of deals.entity_id -> entities.entity_id (n:1)" in reasons["entities"]
    assert "one side of deals.product_id -> products.product_id (n:1)" in reasons["products"]
    assert set(star.tables) == {"dim_entities", "dim_products", "dim_date", "fact_deals", AGG}

    assert rows(star.tables["dim_entities"]) == ordered(EXPECTED_ENTITIES)
    assert rows(star.tables["dim_products"]) == ordered(EXPECTED_PRODUCTS)
    fact = rows(star.tables["fact_deals"], *FACT_COLUMNS)
    assert rounded(fact) == rounded(EXPECTED_FACT)
    assert "entity_id" not in star.tables["fact_deals"].columns, "the natural foreign key is replaced by its surrogate"

    agg = {(r["date_key"], r["entities_key"]): r for r in rows(star.tables[AGG])}
    assert set(agg) == {(20240115, E1), (20240116, E2)}
    assert agg[(20240115, E1)] == {"date_key": 20240115, "entities_key": E1, "amount": 3000000,
                                   "rate": pytest.approx(0.04), "row_count": 2}
    assert agg[(20240116, E2)] == {"date_key": 20240116, "entities_key": E2, "amount": 1500000,
                                   "rate": pytest.approx(0.04), "row_count": 1}
    assert all(isinstance(r["amount"], int) for r in agg.values()), "a sum of integers stays an integer"
    assert column_types(star.tables[AGG])["amount"] == column_types(star.tables["fact_deals"])["amount"] == "bigint"

    days = rows(star.tables["dim_date"], "date_key", "year", "month", "day_of_week", "is_business_day")
    assert len(days) == 366 + 1
    assert [r for r in days if r["date_key"] in (-1, 20240115, 20241231)] == ordered([
        {"date_key": -1, "year": None, "month": None, "day_of_week": None, "is_business_day": False},
        {"date_key": 20240115, "year": 2024, "month": 1, "day_of_week": 1, "is_business_day": True},
        {"date_key": 20241231, "year": 2024, "month": 12, "day_of_week": 2, "is_business_day": True}])

    assert star.unknown_members() == {"fact_deals": {"date_key": 0, "entities_key": 0, "products_key": 0}}
    # the distinct foreign keys counted here rather than by one more job (test_physical_design counts them)
    physical = star.physical({"fact_deals": {k: len({r[k] for r in fact}) for k in ("entities_key", "products_key")}})
    assert {n: p.diststyle for n, p in physical.items()} == {
        "dim_entities": "ALL", "dim_products": "ALL", "dim_date": "ALL", "fact_deals": "KEY", AGG: "AUTO"}
    assert physical["fact_deals"].distkey in ("entities_key", "products_key")  # 2 distinct values each
    assert physical["fact_deals"].sortkey[0] == "date_key"
    assert physical[AGG].sortkey[0] == "date_key"


def test_unknown_members_and_no_fact_row_dropped(duckdb_engine):
    spark = duckdb_engine.session()
    deals = [*DEALS, ("D004", None, "E999", 700, 0.01, "2025-02-01")]  # no product, unknown entity, date out of range
    star = build_star(StarSpec.from_dict(DESIGN_SPEC), design_inputs(spark, deals))
    fact = rows(star.tables["fact_deals"], *FACT_COLUMNS)
    assert rounded(fact) == rounded([*EXPECTED_FACT, {"deal_id": "D004", "date_key": -1, "entities_key": -1,
                                                      "products_key": -1, "amount": 700, "rate": 0.01}])
    assert star.unknown_members() == {"fact_deals": {"date_key": 1, "entities_key": 1, "products_key": 1}}
    agg = rows(star.tables[AGG])
    assert sum(r["amount"] for r in agg) == 4500700 and sum(r["row_count"] for r in agg) == 4
    assert {"date_key": -1, "entities_key": -1, "amount": 700, "rate": pytest.approx(0.01), "row_count": 1} in agg


def test_classification_without_the_hint():
    spec = StarSpec.from_dict({**DESIGN_SPEC, "fact": None, "aggregates": []})
    roles = {r.table: r for r in spec.classify()}
    assert roles["deals"].role == "fact"
    assert roles["deals"].reason.startswith("many side of deals.entity_id -> entities.entity_id (n:1)")
    assert "holds measures amount, rate" in roles["deals"].reason
    assert roles["entities"].role == roles["products"].role == "dimension"

    factless = StarSpec.from_dict({**DESIGN_SPEC, "fact": None, "columns": {}, "aggregates": []})
    roles = {r.table: r for r in factless.classify()}
    assert roles["deals"].role == "fact" and "factless" in roles["deals"].reason
    assert roles["entities"].role == "dimension"


# --- SCD2 ---------------------------------------------------------------------------------------
SNAPSHOT_COLUMNS = "entity_id string, entity_name string, sector string, country string, snapshot_date date"
SNAPSHOTS = [
    # E1: Banking -> Insurance -> Banking (A -> B -> A: three versions); the Feb snapshot changes only
    # the untracked name, which opens no version
    ("E1", "One", "Banking", "US", D(2024, 1, 31)),
    ("E1", "One plc", "Banking", "US", D(2024, 2, 29)),
    ("E1", "One plc", "Insurance", "US", D(2024, 3, 31)),
    ("E1", "One plc", "Banking", "US", D(2024, 4, 30)),
    # E2: never changes: one version
    ("E2", "Two", "Insurance", "UK", D(2024, 1, 31)),
    ("E2", "Two", "Insurance", "UK", D(2024, 2, 29)),
    ("E2", "Two", "Insurance", "UK", D(2024, 3, 31)),
    # E3: the country changes
    ("E3", "Three", "Banking", "FR", D(2024, 2, 29)),
    ("E3", "Three", "Banking", "DE", D(2024, 3, 31)),
    # E4: a null sector, then a sector: a change
    ("E4", "Four", None, "US", D(2024, 1, 31)),
    ("E4", "Four", None, "US", D(2024, 2, 29)),
    ("E4", "Four", "Banking", "US", D(2024, 3, 31)),
]


def version(eid, name, sector, country, start, end):
    return {"entities_key": sk(eid, start), "entity_id": eid, "entity_name": name, "sector": sector,
            "country": country, "valid_from": start, "valid_to": end, "is_current": end == FAR}


EXPECTED_HISTORY = [
    {"entities_key": -1, "entity_id": UNKNOWN, "entity_name": UNKNOWN, "sector": UNKNOWN, "country": UNKNOWN,
     "valid_from": D(1900, 1, 1), "valid_to": FAR, "is_current": True},
    version("E1", "One plc", "Banking", "US", D(2024, 1, 31), D(2024, 3, 31)),
    version("E1", "One plc", "Insurance", "US", D(2024, 3, 31), D(2024, 4, 30)),
    version("E1", "One plc", "Banking", "US", D(2024, 4, 30), FAR),
    version("E2", "Two", "Insurance", "UK", D(2024, 1, 31), FAR),
    version("E3", "Three", "Banking", "FR", D(2024, 2, 29), D(2024, 3, 31)),
    version("E3", "Three", "Banking", "DE", D(2024, 3, 31), FAR),
    version("E4", "Four", None, "US", D(2024, 1, 31), D(2024, 3, 31)),
    version("E4", "Four", "Banking", "US", D(2024, 3, 31), FAR),
]
SCD2_DEALS = [  # deal, entity, date -> the version it must resolve to (None: the unknown member)
    ("D1", "E1", D(2024, 3, 30), ("E1", D(2024, 1, 31))),
    ("D2", "E1", D(2024, 3, 31), ("E1", D(2024, 3, 31))),  # half-open: the day a version starts is in it
    ("D3", "E1", D(2024, 5, 15), ("E1", D(2024, 4, 30))),
    ("D4", "E1", D(2024, 1, 30), None),                    # before the first version
    ("D5", "E2", D(2024, 12, 31), ("E2", D(2024, 1, 31))),
    ("D6", "E3", D(2024, 3, 1), ("E3", D(2024, 2, 29))),
    ("D7", "E4", D(2024, 2, 1), ("E4", D(2024, 1, 31))),
    ("D8", "E9", D(2024, 3, 1), None),                     # no such entity
    ("D9", None, D(2024, 3, 1), None),                     # no entity at all
]
SCD2_SPEC = {
    "tables": {"deals": {"key": "deal_id", "date": "trade_date"}, "limits": {"key": "limit_id"},
               "entities": {"key": "entity_id"}},
    "relationships": [{"from": "deals.entity_id", "to": "entities.entity_id", "type": "n:1"},
                      {"from": "limits.entity_id", "to": "entities.entity_id", "type": "n:1"}],
    "columns": {"deals": {"amount": "sum"}, "limits": {"limit_amount": "max"}},
    "scd2": {"entities": {"track": ["sector", "country"], "as_of": "snapshot_date"}},
    "date_dimension": {"from": "2024-01-01", "to": "2024-12-31"},
}


def assert_history_invariants(dim_rows, nk="entity_id", key="entities_key"):
    """Per natural key: versions meet (no gap, no overlap), the last ends 9999-12-31, exactly one
    is current; plus the unknown member."""
    members = defaultdict(list)
    for r in dim_rows:
        if r[key] != -1:
            members[r[nk]].append(r)
    for versions in members.values():
        versions.sort(key=lambda r: r["valid_from"])
        for a, b in zip(versions, versions[1:]):
            assert a["valid_from"] < a["valid_to"] == b["valid_from"], (a, b)
        assert versions[-1]["valid_to"] == FAR
        assert [r["is_current"] for r in versions] == [False] * (len(versions) - 1) + [True]
    unknown = [r for r in dim_rows if r[key] == -1]
    assert len(unknown) == 1 and (unknown[0]["valid_from"], unknown[0]["valid_to"], unknown[0]["is_current"]) == (
        D(1900, 1, 1), FAR, True)


def scd2_inputs(spark, snapshots):
    return {"entities": spark.createDataFrame(snapshots, SNAPSHOT_COLUMNS),
            "deals": spark.createDataFrame([(d, e, t, 10 * i) for i, (d, e, t, _) in enumerate(SCD2_DEALS, 1)],
                                           "deal_id string, entity_id string, trade_date date, amount bigint"),
            "limits": spark.createDataFrame([("L1", "E1", 5.0), ("L2", "E3", 6.0), ("L3", "E7", 7.0)],
                                            "limit_id string, entity_id string, limit_amount double")}


def test_scd2_history_and_resolution_by_date(duckdb_engine):
    spark = duckdb_engine.session()
    spec = StarSpec.from_dict(SCD2_SPEC)
    star = build_star(spec, scd2_inputs(spark, SNAPSHOTS))
    dim = rows(star.tables["dim_entities"])
    assert dim == ordered(EXPECTED_HISTORY)
    assert_history_invariants(dim)

    fact = {r["deal_id"]: r for r in rows(star.tables["fact_deals"])}
    assert set(fact) == {d for d, *_ in SCD2_DEALS}, "no fact row dropped"
    for deal, _, day, target in SCD2_DEALS:
        assert fact[deal]["entities_key"] == (sk(*target) if target else -1), deal
        assert fact[deal]["date_key"] == day.year * 10000 + day.month * 100 + day.day
    # a fact without a date resolves to the current version
    limits = {r["limit_id"]: r["entities_key"] for r in rows(star.tables["fact_limits"])}
    assert limits == {"L1": sk("E1", "2024-04-30"), "L2": sk("E3", "2024-03-31"), "L3": -1}
    assert star.unknown_members() == {"fact_deals": {"date_key": 0, "entities_key": 3},
                                      "fact_limits": {"entities_key": 1}}

    # the same history and the same keys whatever order the snapshots arrive in
    again = build_star(spec, scd2_inputs(spark, list(reversed(SNAPSHOTS))))
    assert rows(again.tables["dim_entities"]) == dim
    assert {r["deal_id"]: r for r in rows(again.tables["fact_deals"])} == fact


def test_scd2_one_snapshot_per_key_and_date(duckdb_engine):
    spark = duckdb_engine.session()
    doubled = [*SNAPSHOTS, ("E2", "Two bis", "Banking", "UK", D(2024, 2, 29))]
    with pytest.raises(StarSpecError, match=r"'entities'.*entity_id, snapshot_date.*'E2'.*(2024-02-29|2024, 2, 29).*2 rows"):
        build_star(StarSpec.from_dict(SCD2_SPEC), scd2_inputs(spark, doubled))


# --- bridges ------------------------------------------------------------------------------------
BRIDGE_SPEC = {
    "tables": {"deals": {"key": "deal_id"}, "counterparties": {"key": "cpty_id"},
               "deal_cpty": {"key": ["deal_id", "cpty_id"]}},
    "relationships": [{"from": "deals.deal_id", "to": "counterparties.cpty_id", "type": "n:n", "via": "deal_cpty"}],
    "columns": {"deals": {"amount": "sum"}},
    "fact": "deals",
}


def test_bridge_weights(duckdb_engine):
    spark = duckdb_engine.session()
    links = [("D1", "C1"), ("D1", "C2"), ("D1", "C3"), ("D2", "C1"), ("D2", "C1"), ("D3", "C9"), ("D3", "C2")]
    star = build_star(StarSpec.from_dict(BRIDGE_SPEC), {
        "deals": spark.createDataFrame([("D1", 90), ("D2", 50), ("D3", 40), ("D4", 30)], "deal_id string, amount bigint"),
        "counterparties": spark.createDataFrame([("C1", "Acme"), ("C2", "Bolt"), ("C3", "Crux")], "cpty_id string, name string"),
        "deal_cpty": spark.createDataFrame(links, "deal_id string, cpty_id string")})

    roles = {r.table: r for r in star.roles}
    assert (roles["deal_cpty"].role, roles["deal_cpty"].output) == ("bridge", "bridge_deal_cpty")
    assert "links deals and counterparties" in roles["deal_cpty"].reason
    assert roles["deals"].role == "fact" and roles["counterparties"].role == "dimension"

    third = 1 / 3
    assert rounded(rows(star.tables["bridge_deal_cpty"])) == rounded([
        {"deal_id": "D1", "deals_key": sk("D1"), "counterparties_key": sk("C1"), "weight": third},
        {"deal_id": "D1", "deals_key": sk("D1"), "counterparties_key": sk("C2"), "weight": third},
        {"deal_id": "D1", "deals_key": sk("D1"), "counterparties_key": sk("C3"), "weight": third},
        {"deal_id": "D2", "deals_key": sk("D2"), "counterparties_key": sk("C1"), "weight": 1.0},  # the link twice: once
        {"deal_id": "D3", "deals_key": sk("D3"), "counterparties_key": -1, "weight": 0.5},         # C9: unknown
        {"deal_id": "D3", "deals_key": sk("D3"), "counterparties_key": sk("C2"), "weight": 0.5},
        {"deal_id": "D4", "deals_key": sk("D4"), "counterparties_key": -1, "weight": 1.0},         # no link at all
    ])
    fact = rows(star.tables["fact_deals"], "deals_key", "deal_id", "amount")
    assert fact == ordered([{"deals_key": sk(d), "deal_id": d, "amount": a} for d, a in
                            [("D1", 90), ("D2", 50), ("D3", 40), ("D4", 30)]])
    # allocated through the bridge, every fact row's amount is counted exactly once
    weights = defaultdict(float)
    for r in rows(star.tables["bridge_deal_cpty"]):
        weights[r["deals_key"]] += r["weight"]
    assert weights == pytest.approx({r["deals_key"]: 1.0 for r in fact})
    assert star.unknown_members()["bridge_deal_cpty"] == {"counterparties_key": 2}
    bridge = star.physical()["bridge_deal_cpty"]
    assert (bridge.diststyle, bridge.distkey) == ("KEY", "deals_key")


# --- the date dimension -------------------------------------------------------------------------
QUARTER = {month: quarter for quarter, months in enumerate([(1, 2, 3), (4, 5, 6), (7, 8, 9), (10, 11, 12)], 1)
           for month in months}

def test_date_dimension(duckdb_engine):
    days = {r["date_key"]: r for r in rows(date_dimension(duckdb_engine.session(), D(2023, 12, 1), D(2024, 12, 31)))}
    assert len(days) == 31 + 366 + 1
    assert days[-1]["date"] is None and not days[-1]["is_business_day"]

    fri = days[20240329]
    assert (fri["date"], fri["year"], fri["quarter"], fri["month"], fri["day"], fri["day_of_week"]) == (
        D(2024, 3, 29), 2024, 1, 3, 29, 5)
    assert fri["is_business_day"] and fri["is_last_business_day_of_month"]
    assert not fri["is_month_end"] and not fri["is_quarter_end"]
    sun = days[20240331]
    assert sun["day_of_week"] == 7 and sun["is_month_end"] and sun["is_quarter_end"]
    assert not sun["is_business_day"] and not sun["is_last_business_day_of_month"]
    assert days[20240628]["is_last_business_day_of_month"] and days[20240628]["day_of_week"] == 5
    assert days[20240630]["is_quarter_end"] and days[20240630]["day_of_week"] == 7
    assert days[20240101]["day_of_week"] == 1 and days[20240101]["quarter"] == 1
    assert days[20240229]["is_month_end"] and not days[20240229]["is_quarter_end"]  # leap year
    assert days[20241231]["is_quarter_end"] and days[20241231]["is_last_business_day_of_month"]  # a Tuesday
    assert days[20241130]["is_month_end"] and not days[20241130]["is_business_day"]
    assert days[20241129]["is_last_business_day_of_month"]

    # every day against the calendar module
    for key, r in days.items():
        if key == -1:
            continue
        day = r["date"]
        last = calendar.monthrange(day.year, day.month)[1]
        weekdays_after = [d for d in range(day.day + 1, last + 1) if calendar.weekday(day.year, day.month, d) < 5]
        business = calendar.weekday(day.year, day.month, day.day) < 5
        assert key == int(day.strftime("%Y%m%d"))
        assert (r["year"], r["quarter"], r["month"], r["day"]) == (day.year, QUARTER[day.month], day.month, day.day)
        assert r["day_of_week"] == calendar.weekday(day.year, day.month, day.day) + 1
        assert r["is_month_end"] == (day.day == last)
        assert r["is_quarter_end"] == (day.day == last and day.month in (3, 6, 9, 12))
        assert r["is_business_day"] == business
        assert r["is_last_business_day_of_month"] == (business and not weekdays_after), day


# --- physical design ----------------------------------------------------------------------------
def test_physical_design(duckdb_engine):
    spark = duckdb_engine.session()
    deals = [("D1", "P001", "E001", 1, 0.1, "2024-01-15"), ("D2", "P002", "E001", 2, 0.1, "2024-01-16"),
             ("D3", "P001", "E001", 3, 0.1, "2024-01-17"), ("D4", "P002", "E001", 4, 0.1, "2024-01-18")]
    spec = StarSpec.from_dict({**DESIGN_SPEC, "aggregates": [["date_key", "products_key"], ["entities_key"]]})
    star = build_star(spec, design_inputs(spark, deals))
    physical = star.physical()
    fact = physical["fact_deals"]
    # date_key has the most distinct values (4, products 2, entities 1), but a fact is never distributed on it
    assert (fact.diststyle, fact.distkey, fact.sortkey) == ("KEY", "products_key", ("date_key", "products_key"))
    assert "products_key" in fact.reason and "2 distinct" in fact.reason
    for name in ("dim_entities", "dim_products", "dim_date"):
        assert (physical[name].diststyle, physical[name].distkey) == ("ALL", None)
    assert physical["dim_date"].sortkey == ("date_key",)
    assert physical["agg_deals_by_date_key_products_key"].diststyle == "AUTO"
    assert physical["agg_deals_by_date_key_products_key"].sortkey[0] == "date_key"
    assert physical["agg_deals_by_entities_key"].diststyle == "AUTO"
    assert "date_key" not in physical["agg_deals_by_entities_key"].sortkey
    given = star.physical({"fact_deals": {"date_key": 10_000, "entities_key": 50, "products_key": 3}})
    assert given["fact_deals"].distkey == "entities_key"


# --- errors -------------------------------------------------------------------------------------
def spec_error(doc) -> str:
    with pytest.raises(StarSpecError) as exc:
        StarSpec.from_dict(doc)
    return str(exc.value)


def test_spec_errors():
    assert issubclass(StarSpecError, RegcalcInputError)
    rels = DESIGN_SPEC["relationships"]
    missing = spec_error({**DESIGN_SPEC, "relationships": [*rels, {"from": "deals.book", "to": "books.book_id", "type": "n:1"}]})
    assert "'books'" in missing and "deals.book -> books.book_id" in missing
    assert "'ledger'" in spec_error({**DESIGN_SPEC, "fact": "ledger"})

    cycle = spec_error({"tables": {"a": {"key": "a_id"}, "b": {"key": "b_id"}, "c": {"key": "c_id"}},
                        "relationships": [{"from": "a.b_id", "to": "b.b_id", "type": "n:1"},
                                          {"from": "b.c_id", "to": "c.c_id", "type": "n:1"},
                                          {"from": "c.a_id", "to": "a.a_id", "type": "n:1"}]})
    assert "cycle" in cycle and "a -> b -> c -> a" in cycle

    no_via = spec_error({**BRIDGE_SPEC, "relationships": [{"from": "deals.deal_id", "to": "counterparties.cpty_id",
                                                           "type": "n:n"}]})
    assert "n:n" in no_via and "via" in no_via
    cardinality = spec_error({**DESIGN_SPEC, "relationships": [{**rels[0], "type": "n:m"}]})
    assert "'n:m'" in cardinality and "deals.entity_id" in cardinality
    one_side = spec_error({**DESIGN_SPEC, "relationships": [{**rels[0], "to": "entities.sector"}]})
    assert "entities.sector" in one_side and "natural key" in one_side
    assert "'median'" in spec_error({**DESIGN_SPEC, "columns": {"deals": {"amount": "median"}}})


def test_data_errors(duckdb_engine):
    spark = duckdb_engine.session()
    spec = StarSpec.from_dict(DESIGN_SPEC)
    inputs = design_inputs(spark)

    with pytest.raises(StarSpecError, match=r"table 'products' of the spec was not given"):
        build_star(spec, {n: df for n, df in inputs.items() if n != "products"})

    bad_column = StarSpec.from_dict({**DESIGN_SPEC, "columns": {"deals": {"amount": "sum", "notional": "sum"}}})
    with pytest.raises(StarSpecError, match=r"table 'deals' has no column 'notional'"):
        build_star(bad_column, inputs)
    bad_fk = StarSpec.from_dict({**DESIGN_SPEC, "relationships": [
        {"from": "deals.counterparty", "to": "entities.entity_id", "type": "n:1"}], "aggregates": []})
    with pytest.raises(StarSpecError, match=r"table 'deals' has no column 'counterparty'"):
        build_star(bad_fk, inputs)

    doubled = spark.createDataFrame([*ENTITIES, ("E001", "Entity One bis", "Banking", "US")],
                                    ["entity_id", "entity_name", "sector", "country"])
    with pytest.raises(StarSpecError) as exc:
        build_star(spec, {**inputs, "entities": doubled})
    message = str(exc.value)
    assert "'entities'" in message and "entity_id" in message and "not unique" in message
    assert "entity_id='E001' (2 rows)" in message and "E002" not in message


# --- properties -----------------------------------------------------------------------------------
PROPERTY_SPEC = {
    "tables": {"deals": {"key": "deal_id", "date": "trade_date"}, "entities": {"key": "entity_id"}},
    "relationships": [{"from": "deals.entity_id", "to": "entities.entity_id", "type": "n:1"}],
    "columns": {"deals": {"amount": "sum"}},
    "scd2": {"entities": {"track": ["sector", "country"], "as_of": "snapshot_date"}},
    "date_dimension": {"from": "2024-01-01", "to": "2024-12-31"},
}
ENTITY_IDS = ["E1", "E2", "E3", "E4", "E5"]
snapshot_rows = st.lists(
    st.tuples(st.sampled_from(ENTITY_IDS), st.dates(D(2024, 1, 1), D(2024, 1, 31)),
              st.sampled_from(["n1", "n2"]), st.sampled_from(["A", "B", None]), st.sampled_from(["US", "UK"])),
    min_size=5, max_size=40, unique_by=lambda s: (s[0], s[1]))
deal_rows = st.lists(st.tuples(st.sampled_from([*ENTITY_IDS, "EX", None]), st.dates(D(2023, 12, 25), D(2024, 2, 10)),
                               st.integers(-1000, 1000)), min_size=5, max_size=40)


def model_history(snapshots) -> list[dict]:
    """SCD2 in plain Python: per entity, snapshots by date; a version opens where the tracked
    attributes differ from the previous snapshot's; untracked attributes from its latest snapshot."""
    by_entity = defaultdict(list)
    for s in snapshots:
        by_entity[s[0]].append(s)
    out = []
    for eid, snaps in by_entity.items():
        versions = []
        for _, day, name, sector, country in sorted(snaps, key=lambda s: s[1]):
            if versions and (versions[-1]["sector"], versions[-1]["country"]) == (sector, country):
                versions[-1]["entity_name"] = name
            else:
                versions.append({"entity_id": eid, "entity_name": name, "sector": sector, "country": country,
                                 "valid_from": day})
        for v, following in zip(versions, [*versions[1:], None]):
            v["valid_to"] = following["valid_from"] if following else FAR
            v["is_current"] = following is None
            v["entities_key"] = sk(eid, v["valid_from"])
        out += versions
    return out


def model_fact(deals, history) -> list[dict]:
    out = []
    for i, (eid, day, amount) in enumerate(deals):
        match = [v["entities_key"] for v in history if v["entity_id"] == eid and v["valid_from"] <= day < v["valid_to"]]
        assert len(match) <= 1
        out.append({"deal_id": f"D{i}", "entities_key": match[0] if match else -1, "amount": amount,
                    "date_key": int(day.strftime("%Y%m%d")) if day.year == 2024 else -1})
    return out


def property_inputs(spark, snapshots, deals, shuffle: random.Random | None = None):
    deals = [(f"D{i}", eid, day, amount) for i, (eid, day, amount) in enumerate(deals)]
    snapshots = list(snapshots)
    if shuffle:
        shuffle.shuffle(snapshots)
        shuffle.shuffle(deals)
    snapshots = [(eid, name, sector, country, day) for eid, day, name, sector, country in snapshots]
    return {"entities": spark.createDataFrame(snapshots, SNAPSHOT_COLUMNS),
            "deals": spark.createDataFrame(deals, "deal_id string, entity_id string, trade_date date, amount bigint")}


def check_against_model(star, snapshots, deals):
    dim = rows(star.tables["dim_entities"])
    assert_history_invariants(dim)
    history = model_history(snapshots)
    assert [r for r in dim if r["entities_key"] != -1] == ordered(history)
    fact = rows(star.tables["fact_deals"], "deal_id", "entities_key", "amount", "date_key")
    assert len(fact) == len(deals), "fact rows preserved"
    members = {r["entities_key"] for r in dim}
    assert all(r["entities_key"] in members for r in fact), "every foreign key is a member or -1"
    assert fact == ordered(model_fact(deals, history))
    return dim, fact


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(snapshots=snapshot_rows, deals=deal_rows, order=st.randoms(use_true_random=False))
def test_properties_against_a_model(duckdb_engine, snapshots, deals, order):
    """Whatever the snapshots and deals, in whatever order they arrive: the model's history (so
    contiguous versions, one current per key, keys of natural key + valid_from), every fact row
    kept, each pointing at the version valid on its date or at -1."""
    spark = duckdb_engine.session()
    star = build_star(StarSpec.from_dict(PROPERTY_SPEC), property_inputs(spark, snapshots, deals, order))
    check_against_model(star, snapshots, deals)


def generated(seed: int, entities: int, snapshots: int, deals: int):
    """Seeded snapshots (entity, date, name, sector, country) and deals (entity, date, amount)."""
    rnd = random.Random(seed)
    ids = [f"E{i}" for i in range(entities)]
    days = sorted({D(2024, 1, 1) + dt.timedelta(days=rnd.randrange(60)) for _ in range(snapshots)})
    snaps = {(rnd.choice(ids), rnd.choice(days)): (rnd.choice(["n1", "n2"]), rnd.choice(["A", "B", None]),
                                                   rnd.choice(["US", "UK"])) for _ in range(snapshots)}
    snaps = [(eid, day, *attrs) for (eid, day), attrs in snaps.items()]
    facts = [(rnd.choice([*ids, "EX", None]), D(2023, 12, 20) + dt.timedelta(days=rnd.randrange(90)),
              rnd.randrange(-500, 500)) for _ in range(deals)]
    return snaps, facts


CROSS_SPEC = {
    **PROPERTY_SPEC,
    "tables": {**PROPERTY_SPEC["tables"], "counterparties": {"key": "cpty_id"},
               "deal_cpty": {"key": ["deal_id", "cpty_id"]}},
    "relationships": [*PROPERTY_SPEC["relationships"],
                      {"from": "deals.deal_id", "to": "counterparties.cpty_id", "type": "n:n", "via": "deal_cpty"}],
    "columns": {"deals": {"amount": "sum"}},
    "fact": "deals",
}


def cross_inputs(spark, snaps, facts, shuffle: random.Random | None):
    inputs = property_inputs(spark, snaps, facts, shuffle)
    rnd = random.Random(len(facts))  # deals D0.. (and two that are not in the fact) with C0, C1 or C2 (unknown)
    links = sorted({(f"D{rnd.randrange(len(facts) + 2)}", rnd.choice(["C0", "C1", "C2"])) for _ in range(25)})
    if shuffle:
        shuffle.shuffle(links)
    inputs["counterparties"] = spark.createDataFrame([("C0", "x"), ("C1", "y")], "cpty_id string, name string")
    inputs["deal_cpty"] = spark.createDataFrame(links, "deal_id string, cpty_id string")
    return inputs


def star_rows(star, names) -> dict[str, list]:
    """The tables ``names`` as sorted rows, floats rounded."""
    return {name: sorted(repr(sorted((k, round(v, 9) if isinstance(v, float) else v) for k, v in r.asDict().items()))
                         for r in star.tables[name].collect()) for name in names}


@pytest.mark.spark
def test_same_star_on_duckdb_and_spark(duckdb_engine, spark_engine):
    """One small generated star (SCD2, unknown members, a bridge) on both engines, the rows given
    in different orders: the same tables, the same keys. Few Spark actions (each costs seconds):
    the build skips its natural-key checks on Spark, and one check runs on its own."""
    snaps, facts = generated(5, entities=4, snapshots=12, deals=15)
    spec = StarSpec.from_dict(CROSS_SPEC)
    on_duckdb = build_star(spec, cross_inputs(duckdb_engine.session(), snaps, facts, None))
    check_against_model(on_duckdb, snaps, facts)
    names = ["dim_entities", "fact_deals", "bridge_deal_cpty"]
    expected = star_rows(on_duckdb, names)
    assert any("('entities_key', -1)" in r for r in expected["fact_deals"])
    weights = defaultdict(float)
    for r in rows(on_duckdb.tables["bridge_deal_cpty"]):
        weights[r["deal_id"]] += r["weight"]
    assert {d for d, w in weights.items() if w != pytest.approx(1.0)} == set()
    assert {f"D{i}" for i in range(len(facts))} <= set(weights), "every deal is in the bridge"
    spark = spark_engine.session()
    on_spark = build_star(spec, cross_inputs(spark, snaps, facts, random.Random(1)), check=False)
    assert star_rows(on_spark, names) == expected
    doubled = spark.createDataFrame([("E1", "x"), ("E2", "y"), ("E1", "z")], "entity_id string, name string")
    with pytest.raises(StarSpecError, match=r"dimension 'entities'.*entity_id='E1' \(2 rows\)"):
        check_unique(doubled, ["entity_id"], "dimension 'entities'")


@pytest.mark.parametrize("case", ["design", "scd2", "bridge"])
def test_large_dimensions_are_joined_to_the_same_keys(duckdb_engine, monkeypatch, case):
    """Past LOOKUP_LIMIT members a dimension is joined instead of inlined as a CASE: the same
    tables, keys included (several joins in one fact, one of them by date on an SCD2 version)."""
    import regcalc_core.star.build as build

    spark = duckdb_engine.session()
    if case == "design":
        spec, make = StarSpec.from_dict(DESIGN_SPEC), lambda: design_inputs(spark)
    elif case == "scd2":
        spec, make = StarSpec.from_dict(SCD2_SPEC), lambda: scd2_inputs(spark, SNAPSHOTS)
    else:
        snaps, facts = generated(3, entities=4, snapshots=10, deals=12)
        spec, make = StarSpec.from_dict(CROSS_SPEC), lambda: cross_inputs(spark, snaps, facts, None)
    inlined = build_star(spec, make())
    names = sorted(inlined.tables)
    expected = star_rows(inlined, names)
    monkeypatch.setattr(build, "LOOKUP_LIMIT", 0)
    joined = build_star(spec, make())
    assert star_rows(joined, names) == expected
