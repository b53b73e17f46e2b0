"""Independent DuckDB-SQL implementation of the base (unadjusted) LCR / NSFR calculation.

Used for two things:

* the speed baseline of the EOD benchmark (one set-based SQL statement over the landing zone);
* an oracle that tests compare the regcalc pipeline against on generated data.

It is written directly from the two specification documents
(``landing-zone.md``: input contract and quarantine rules, ``liquidity-rules.md``: the LCR / NSFR
factor tables) and deliberately shares no code with the pipeline.

    compute_metrics_sql(landing_root, business_date, con=None) -> list[dict]

reads ``<landing_root>/business_date=<date>/{positions,counterparties,securities,entities,
fx_rates,prices}.{parquet|csv}``, validates every row per the contract, derives every
calculation field (amount, hqla_level, haircut, outflow_rate, inflow_rate, asf_factor,
rsf_factor) with SQL ``CASE`` expressions that transcribe the factor tables row by row (first
matching row wins), and aggregates to one row per valid entity.

CLI::

    python benchmarks/baseline_sql.py --landing DIR --date YYYY-MM-DD

Interpretation choices where the spec is not explicit (see module constants / comments):

* value checks (parseable, balance / quantity >= 0, risk_weight in 0..12.5) apply to every
  non-null value, whatever the product (also a SECURITY's ignored balance);
* ``securities.issuer_type`` may be null (its column is declared nullable); only a non-null
  unknown value invalidates the security (``STRICT_NULL_ISSUER_TYPE`` flips this);
* an empty string in a string column is treated as null (what an empty CSV cell is);
* numbers in CSV are plain decimals with optional sign / exponent; NaN and infinities are
  unparseable;
* if both ``X.parquet`` and ``X.csv`` exist, the parquet file is read.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import re
import sys
from pathlib import Path
from typing import Any

import duckdb

# --------------------------------------------------------------------------------------------
# contract constants
# --------------------------------------------------------------------------------------------

FILES = ("positions", "counterparties", "securities", "entities", "fx_rates", "prices")

PRODUCTS = (
    # assets
    "CASH", "CENTRAL_BANK_RESERVE", "SECURITY", "LOAN", "MORTGAGE", "REVERSE_REPO",
    "DEPOSIT_PLACED", "DERIVATIVE_NET_INFLOW", "OTHER_ASSET",
    # liabilities
    "DEPOSIT", "REPO", "BORROWING", "ISSUED_DEBT", "DERIVATIVE_NET_OUTFLOW", "EQUITY_CAPITAL",
    "OTHER_LIABILITY",
    # off balance sheet
    "CREDIT_FACILITY", "LIQUIDITY_FACILITY",
)
COUNTERPARTY_OPTIONAL = (
    "CASH", "CENTRAL_BANK_RESERVE", "SECURITY", "EQUITY_CAPITAL", "OTHER_ASSET", "OTHER_LIABILITY",
)
COUNTERPARTY_TYPES = (
    "RETAIL", "SMALL_BUSINESS", "NON_FINANCIAL_CORPORATE", "SOVEREIGN", "CENTRAL_BANK", "PSE",
    "MDB", "BANK", "OTHER_FINANCIAL", "OTHER",
)
HQLA_LEVELS = ("L1", "L2A", "L2B_RMBS", "L2B_OTHER", "NON_HQLA")
ISSUER_TYPES = (
    "SOVEREIGN", "CENTRAL_BANK", "PSE", "MDB", "BANK", "CORPORATE", "COVERED_BOND", "RMBS", "EQUITY",
)

# The securities table declares issuer_type nullable; the "Bad input" section lists
# "null or unknown ... issuer_type". We follow the column table (null allowed) by default.
STRICT_NULL_ISSUER_TYPE = False

# column kinds: s = string, n = decimal number, d = date, b = boolean
SCHEMAS: dict[str, dict[str, str]] = {
    "positions": {
        "position_id": "s", "source_system": "s", "entity_id": "s", "counterparty_id": "s",
        "product": "s", "currency": "s", "balance": "n", "quantity": "n", "security_id": "s",
        "maturity_date": "d", "insured": "b", "stable_relationship": "b", "operational": "b",
        "performing": "b", "risk_weight": "n", "encumbered_until": "d",
    },
    # only the columns the calculation needs are required; others (names, countries) are unused
    "counterparties": {"counterparty_id": "s", "counterparty_type": "s"},
    "securities": {"security_id": "s", "hqla_level": "s", "issuer_type": "s", "maturity_date": "d"},
    "entities": {"entity_id": "s", "name": "s", "reporting_currency": "s"},
    "fx_rates": {"currency": "s", "usd_per_unit": "n"},
    "prices": {"security_id": "s", "price": "n"},
}

OUTPUT_COLUMNS = (
    "business_date", "entity_id", "reporting_currency", "hqla_l1", "hqla_l2a", "hqla_l2b",
    "adj15", "adj40", "hqla", "total_outflows", "total_inflows", "capped_inflows",
    "net_outflows", "lcr", "asf", "rsf", "nsfr", "positions_accepted", "positions_quarantined",
)
COUNT_COLUMNS = ("positions_accepted", "positions_quarantined")
TEXT_COLUMNS = ("business_date", "entity_id", "reporting_currency")

_NUMBER_RE = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


def _q(s: str) -> str:
    """SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def _ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _in(values) -> str:
    return "(" + ", ".join(_q(v) for v in values) + ")"


# --------------------------------------------------------------------------------------------
# reading + parsing
# --------------------------------------------------------------------------------------------

def _locate(folder: Path, name: str) -> Path:
    for ext in (".parquet", ".csv"):
        p = folder / f"{name}{ext}"
        if p.is_file():
            return p
    raise FileNotFoundError(f"missing landing file {name}.parquet / {name}.csv in {folder}")


def _source(con: duckdb.DuckDBPyConnection, path: Path, kinds: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Return (FROM-clause table function, {column: duckdb type}) for one landing file."""
    if path.suffix == ".parquet":
        src = f"read_parquet({_q(str(path))})"
    else:
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                header = next(csv.reader(fh))
        except StopIteration:
            raise ValueError(f"cannot read {path}: empty file (no header row)") from None
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"cannot read {path}: {exc}") from exc
        cols = ", ".join(f"{_q(h)}: 'VARCHAR'" for h in header)
        src = (f"read_csv({_q(str(path))}, header=true, delim=',', quote='\"', escape='\"', "
               f"auto_detect=false, columns={{{cols}}})")
    try:
        desc = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"cannot read {path}: {exc}") from exc
    types = {row[0]: str(row[1]).upper() for row in desc}
    missing = [c for c in kinds if c not in types]
    if missing:
        raise ValueError(f"cannot read {path}: missing column(s) {', '.join(missing)}")
    return src, types


def _raw_expr(col: str, dtype: str, kind: str) -> str:
    """Level 1: the raw value, as text (empty string = null) unless it is already typed."""
    c = _ident(col)
    base = dtype.split("(")[0]
    if kind == "n" and (base in _NUMERIC_TYPES):
        return c
    if kind == "d" and (base == "DATE" or base.startswith("TIMESTAMP")):
        return c
    if kind == "b" and base == "BOOLEAN":
        return c
    if base == "VARCHAR":
        return f"NULLIF({c}, '')"
    return f"NULLIF(CAST({c} AS VARCHAR), '')"


def _parsed_expr(col: str, dtype: str, kind: str) -> str:
    """Level 2: the typed value; null when raw is null or unparseable."""
    r = _ident(col + "__raw")
    base = dtype.split("(")[0]
    if kind == "s":
        return r
    if kind == "n":
        if base in _NUMERIC_TYPES:
            v = f"CAST({r} AS DOUBLE)"
        else:
            v = f"CASE WHEN regexp_full_match({r}, {_q(_NUMBER_RE)}) THEN TRY_CAST({r} AS DOUBLE) END"
        return f"CASE WHEN isfinite({v}) THEN {v} END"
    if kind == "d":
        if base == "DATE":
            return r
        if base.startswith("TIMESTAMP"):
            return f"CAST({r} AS DATE)"
        return f"CASE WHEN regexp_full_match({r}, {_q(_DATE_RE)}) THEN TRY_CAST({r} AS DATE) END"
    if kind == "b":
        if base == "BOOLEAN":
            return r
        return f"CASE lower({r}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"
    raise AssertionError(kind)


def _table_cte(name: str, src: str, types: dict[str, str], kinds: dict[str, str]) -> str:
    """CTE body giving, per column X: X (typed, null if unparseable) and X__bad (unparseable)."""
    raw = ", ".join(f"{_raw_expr(c, types[c], k)} AS {_ident(c + '__raw')}" for c, k in kinds.items())
    parsed = ", ".join(f"{_parsed_expr(c, types[c], k)} AS {_ident(c)}" for c, k in kinds.items())
    bad = ", ".join(
        f"({_ident(c)} IS NULL AND {_ident(c + '__raw')} IS NOT NULL) AS {_ident(c + '__bad')}"
        for c, k in kinds.items() if k != "s"
    )
    raws = ", ".join(_ident(c + "__raw") for c in kinds)
    inner = f"SELECT {parsed}, {raws} FROM (SELECT {raw} FROM {src})"
    return f"SELECT *{', ' + bad if bad else ''} FROM ({inner})"


# --------------------------------------------------------------------------------------------
# the SQL
# --------------------------------------------------------------------------------------------

def build_sql(con: duckdb.DuckDBPyConnection, landing_root: str | Path, business_date: str,
              *, detail: bool = False) -> str:
    """Build the single SQL statement. detail=True returns one row per position instead of
    the per-entity figures (calculation fields + is_valid), for debugging / tests."""
    if not re.fullmatch(_DATE_RE, business_date or ""):
        raise ValueError(f"business_date must be YYYY-MM-DD, got {business_date!r}")
    _dt.date.fromisoformat(business_date)
    folder = Path(landing_root) / f"business_date={business_date}"
    if not folder.is_dir():
        raise FileNotFoundError(f"landing folder not found: {folder}")

    ctes: dict[str, str] = {}
    for name in FILES:
        src, types = _source(con, _locate(folder, name), SCHEMAS[name])
        ctes[f"{name}_raw"] = _table_cte(name, src, types, SCHEMAS[name])

    d = f"DATE {_q(business_date)}"
    RSME = _in(("RETAIL", "SMALL_BUSINESS"))
    PUBLIC = _in(("NON_FINANCIAL_CORPORATE", "SOVEREIGN", "CENTRAL_BANK", "PSE", "MDB"))
    FI = _in(("BANK", "OTHER_FINANCIAL"))
    issuer_ok = (f"issuer_type IN {_in(ISSUER_TYPES)}" if STRICT_NULL_ISSUER_TYPE
                 else f"(issuer_type IS NULL OR issuer_type IN {_in(ISSUER_TYPES)})")

    # ---- the product list, with "counterparty_id required?" (landing-zone.md)
    ctes["products"] = "SELECT * FROM (VALUES " + ", ".join(
        f"({_q(p)}, {'TRUE' if p in COUNTERPARTY_OPTIONAL else 'FALSE'})" for p in PRODUCTS
    ) + ") AS t(product, cp_optional)"

    # ---- reference data: a key is valid only if it occurs once and its row keeps the contract.
    # (bool_and ignores NULLs, hence the COALESCEs.)
    ctes["cp_valid"] = f"""
        SELECT counterparty_id, any_value(counterparty_type) AS counterparty_type,
               -- counterparty groups (liquidity-rules.md notation), on the small table
               any_value(counterparty_type) IN {RSME} AS rsme,
               any_value(counterparty_type) IN {PUBLIC} AS pub,
               any_value(counterparty_type) IN {FI} AS fi,
               any_value(counterparty_type) = 'OTHER' AS oth
        FROM counterparties_raw WHERE counterparty_id IS NOT NULL
        GROUP BY counterparty_id
        HAVING count(*) = 1
           AND bool_and(COALESCE(counterparty_type IN {_in(COUNTERPARTY_TYPES)}, FALSE))"""
    ctes["sec_valid"] = f"""
        SELECT security_id, any_value(hqla_level) AS hqla_level,
               any_value(issuer_type) AS issuer_type, any_value(maturity_date) AS maturity_date
        FROM securities_raw WHERE security_id IS NOT NULL
        GROUP BY security_id
        HAVING count(*) = 1
           AND bool_and(COALESCE(hqla_level IN {_in(HQLA_LEVELS)} AND {issuer_ok}
                                 AND NOT maturity_date__bad, FALSE))"""
    ctes["ent_valid"] = """
        SELECT entity_id, any_value(reporting_currency) AS reporting_currency
        FROM entities_raw WHERE entity_id IS NOT NULL
        GROUP BY entity_id
        HAVING count(*) = 1
           AND bool_and(name IS NOT NULL AND reporting_currency IS NOT NULL)"""
    ctes["fx_valid"] = """
        SELECT currency, any_value(usd_per_unit) AS usd_per_unit
        FROM fx_rates_raw WHERE currency IS NOT NULL
        GROUP BY currency
        HAVING count(*) = 1 AND bool_and(COALESCE(usd_per_unit > 0, FALSE))"""
    ctes["px_valid"] = """
        SELECT security_id, any_value(price) AS price
        FROM prices_raw WHERE security_id IS NOT NULL
        GROUP BY security_id
        HAVING count(*) = 1 AND bool_and(COALESCE(price > 0, FALSE))"""
    # small joins done once on the reference side: the entity's reporting-currency rate and
    # the security's price
    ctes["ent_fx"] = """
        SELECT e.entity_id, e.reporting_currency, f.usd_per_unit AS fx_rep
        FROM ent_valid e LEFT JOIN fx_valid f ON e.reporting_currency = f.currency"""
    ctes["sec_px"] = """
        SELECT s.security_id, s.hqla_level, s.issuer_type, s.maturity_date, x.price
        FROM sec_valid s LEFT JOIN px_valid x ON s.security_id = x.security_id"""
    # duplicated (position_id, source_system): a cheap 64-bit hash pass finds candidate keys,
    # the exact string comparison then runs on the (tiny) candidate set only.
    ctes["dup_hash"] = """
        SELECT h FROM (
            SELECT hash(position_id, source_system) AS h
            FROM positions_raw WHERE position_id IS NOT NULL AND source_system IS NOT NULL)
        GROUP BY h HAVING count(*) > 1"""
    ctes["dup_keys"] = """
        SELECT position_id, source_system
        FROM positions_raw
        WHERE position_id IS NOT NULL AND source_system IS NOT NULL
          AND hash(position_id, source_system) IN (SELECT h FROM dup_hash)
        GROUP BY position_id, source_system HAVING count(*) > 1"""

    # ---- positions joined to reference data, with the validity verdict
    ctes["pos"] = f"""
        SELECT p.position_id, p.source_system, p.entity_id, p.counterparty_id, p.product,
               p.currency, p.balance, p.quantity, p.security_id, p.maturity_date, p.insured,
               p.stable_relationship, p.operational, p.performing, p.risk_weight,
               p.encumbered_until,
               e.reporting_currency, cp.counterparty_type AS cpt,
               cp.rsme AS cp_rsme, cp.pub AS cp_pub, cp.fi AS cp_fi, cp.oth AS cp_oth,
               pr.cp_optional,
               s.hqla_level AS sec_level, s.issuer_type AS sec_issuer,
               s.maturity_date AS sec_maturity, s.price, fxp.usd_per_unit AS fx_pos,
               e.fx_rep,
               COALESCE(
                   p.position_id IS NOT NULL AND p.source_system IS NOT NULL
               AND p.entity_id IS NOT NULL AND p.product IS NOT NULL AND p.currency IS NOT NULL
               AND pr.product IS NOT NULL
               AND NOT (p.balance__bad OR p.quantity__bad OR p.risk_weight__bad
                        OR p.maturity_date__bad OR p.encumbered_until__bad OR p.insured__bad
                        OR p.stable_relationship__bad OR p.operational__bad
                        OR p.performing__bad)
               AND e.entity_id IS NOT NULL
               AND (p.counterparty_id IS NOT NULL OR pr.cp_optional)
               AND (p.counterparty_id IS NULL OR cp.counterparty_id IS NOT NULL)
               AND (p.security_id IS NULL OR s.security_id IS NOT NULL)
               AND (p.product <> 'SECURITY'
                    OR (p.security_id IS NOT NULL AND p.quantity IS NOT NULL
                        AND s.price IS NOT NULL))
               AND (p.product = 'SECURITY' OR p.balance IS NOT NULL)
               AND (p.balance IS NULL OR p.balance >= 0)
               AND (p.quantity IS NULL OR p.quantity >= 0)
               AND (p.risk_weight IS NULL OR (p.risk_weight >= 0 AND p.risk_weight <= 12.5))
               AND fxp.usd_per_unit IS NOT NULL AND e.fx_rep IS NOT NULL
               AND dk.position_id IS NULL,
               FALSE) AS is_valid
        FROM positions_raw p
        LEFT JOIN dup_keys dk
               ON p.position_id = dk.position_id AND p.source_system = dk.source_system
        LEFT JOIN products pr ON p.product = pr.product
        LEFT JOIN ent_fx e ON p.entity_id = e.entity_id
        LEFT JOIN cp_valid cp ON p.counterparty_id = cp.counterparty_id
        LEFT JOIN sec_px s ON p.security_id = s.security_id
        LEFT JOIN fx_valid fxp ON p.currency = fxp.currency"""

    # ---- derived notation (liquidity-rules.md "Notation"). amount is null for quarantined
    # rows, so they contribute to no figure (their calculation fields are never used).
    ctes["f"] = f"""
        SELECT entity_id, position_id, source_system, product, is_valid, cpt, risk_weight,
               sec_level, sec_issuer,
               CASE WHEN is_valid THEN
                   CASE WHEN product = 'SECURITY' THEN quantity * price ELSE balance END
                   * fx_pos / fx_rep END AS amount,
               CASE WHEN maturity_date IS NOT NULL
                    THEN greatest(maturity_date - {d}, 0) END AS r,
               -- SECURITY: the security's own maturity_date (securities table)
               CASE WHEN sec_maturity IS NOT NULL
                    THEN greatest(sec_maturity - {d}, 0) END AS rs,
               COALESCE(encumbered_until >= {d}, FALSE) AS enc,
               encumbered_until - {d} AS e,
               COALESCE(insured, FALSE) AS ins,
               COALESCE(insured, FALSE) AND COALESCE(stable_relationship, FALSE) AS stable,
               COALESCE(operational, FALSE) AS op,
               COALESCE(performing, TRUE) AS perf,
               COALESCE(cp_rsme, FALSE) AS rsme,
               COALESCE(cp_pub, FALSE) AS pub,
               COALESCE(cp_fi, FALSE) AS fi,
               COALESCE(cp_oth, FALSE) AS oth,
               COALESCE(sec_level, 'NON_HQLA') AS coll
        FROM pos"""
    # within 30 days (needs a maturity) / maturity null or within 30 days / NSFR buckets:
    # b = 0 '<6m' (r < 183), 1 '6m-1y' (183 <= r < 365), 2 '>=1y' (r >= 365), null: no maturity
    ctes["g"] = """
        SELECT *,
               COALESCE(r <= 30, FALSE) AS w30,
               (r IS NULL OR r <= 30) AS nw30,
               COALESCE(rs <= 30, FALSE) AS sw30,
               (r IS NULL OR r < 365) AS lt1y,
               CASE WHEN r < 183 THEN 0 WHEN r < 365 THEN 1 WHEN r >= 365 THEN 2 END AS b
        FROM f"""

    # ---- calculation fields: the factor tables, row by row, first match wins.
    # The outer CASE only dispatches on product; the inner CASE lists that product's rows in
    # table order (rows naming several products are repeated under each of them), which is
    # the same first-match result as one flat CASE over the whole table.
    ctes["calc"] = """
        SELECT *,
            -- LCR: stock of HQLA (unencumbered CASH / CBR at L1, SECURITY at its level)
            CASE WHEN enc THEN NULL
                 WHEN product IN ('CASH', 'CENTRAL_BANK_RESERVE') THEN 'L1'
                 WHEN product = 'SECURITY' AND sec_level <> 'NON_HQLA' THEN sec_level
            END AS hqla_level,
            -- LCR: outflow rates
            CASE
            WHEN product = 'DEPOSIT' THEN CASE
                WHEN nw30 AND rsme AND stable THEN 0.05
                WHEN nw30 AND rsme AND NOT stable THEN 0.10
                WHEN nw30 AND NOT rsme AND op AND ins THEN 0.05
                WHEN nw30 AND NOT rsme AND op AND NOT ins THEN 0.25
                WHEN nw30 AND pub AND NOT op AND ins THEN 0.20
                WHEN nw30 AND pub AND NOT op AND NOT ins THEN 0.40
                WHEN nw30 AND (fi OR oth) AND NOT op THEN 1.00 END
            WHEN product = 'REPO' THEN CASE
                WHEN nw30 AND cpt = 'CENTRAL_BANK' THEN 0.00
                WHEN nw30 AND coll = 'L1' THEN 0.00
                WHEN nw30 AND coll = 'L2A' THEN 0.15
                WHEN nw30 AND coll = 'L2B_RMBS' THEN 0.25
                WHEN nw30 AND coll IN ('L2B_OTHER', 'NON_HQLA')
                     AND cpt IN ('SOVEREIGN', 'PSE', 'MDB') THEN 0.25
                WHEN nw30 AND coll = 'L2B_OTHER' THEN 0.50
                WHEN nw30 AND coll = 'NON_HQLA' THEN 1.00 END
            WHEN product = 'BORROWING' THEN CASE
                WHEN nw30 AND rsme THEN 0.10
                WHEN nw30 AND pub THEN 0.40
                WHEN nw30 AND (fi OR oth) THEN 1.00 END
            WHEN product = 'ISSUED_DEBT' THEN CASE WHEN w30 THEN 1.00 END
            WHEN product = 'OTHER_LIABILITY' THEN CASE WHEN w30 THEN 1.00 END
            WHEN product = 'DERIVATIVE_NET_OUTFLOW' THEN 1.00
            WHEN product = 'CREDIT_FACILITY' THEN CASE
                WHEN rsme THEN 0.05
                WHEN pub THEN 0.10
                WHEN fi THEN 0.40
                WHEN oth THEN 1.00 END
            WHEN product = 'LIQUIDITY_FACILITY' THEN CASE
                WHEN rsme THEN 0.05
                WHEN pub THEN 0.30
                WHEN cpt = 'BANK' THEN 0.40
                WHEN cpt IN ('OTHER_FINANCIAL', 'OTHER') THEN 1.00 END
            END::DOUBLE AS outflow_rate,
            -- LCR: inflow rates (performing positions only, for every row)
            CASE
            WHEN NOT perf THEN NULL
            WHEN product IN ('LOAN', 'MORTGAGE') THEN CASE
                WHEN w30 AND cpt IN ('BANK', 'OTHER_FINANCIAL', 'CENTRAL_BANK') THEN 1.00
                WHEN w30 THEN 0.50 END
            WHEN product = 'REVERSE_REPO' THEN CASE
                WHEN w30 AND coll = 'L1' THEN 0.00
                WHEN w30 AND coll = 'L2A' THEN 0.15
                WHEN w30 AND coll = 'L2B_RMBS' THEN 0.25
                WHEN w30 AND coll = 'L2B_OTHER' THEN 0.50
                WHEN w30 AND coll = 'NON_HQLA' THEN 1.00 END
            WHEN product = 'DEPOSIT_PLACED' THEN CASE
                WHEN nw30 AND op THEN 0.00
                WHEN nw30 AND NOT op THEN 1.00 END
            WHEN product = 'DERIVATIVE_NET_INFLOW' THEN 1.00
            WHEN product = 'SECURITY' THEN CASE
                WHEN NOT enc AND sec_level = 'NON_HQLA' AND sw30 THEN 1.00 END
            END::DOUBLE AS inflow_rate,
            -- NSFR: available stable funding
            CASE
            WHEN product = 'EQUITY_CAPITAL' THEN 1.00
            WHEN product = 'DEPOSIT' THEN CASE
                WHEN b = 2 THEN 1.00
                WHEN rsme AND lt1y AND stable THEN 0.95
                WHEN rsme AND lt1y AND NOT stable THEN 0.90
                WHEN NOT rsme AND op AND lt1y THEN 0.50
                WHEN pub AND NOT op AND lt1y THEN 0.50
                WHEN (fi OR oth) AND NOT op AND b = 1 THEN 0.50
                WHEN (fi OR oth) AND NOT op AND (r IS NULL OR b = 0) THEN 0.00 END
            WHEN product IN ('REPO', 'BORROWING') THEN CASE
                WHEN b = 2 THEN 1.00
                WHEN pub AND lt1y THEN 0.50
                WHEN rsme AND lt1y THEN 0.50
                WHEN (fi OR oth) AND b = 1 THEN 0.50
                WHEN (fi OR oth) AND (r IS NULL OR b = 0) THEN 0.00 END
            WHEN product = 'ISSUED_DEBT' THEN CASE
                WHEN b = 2 THEN 1.00
                WHEN b = 1 THEN 0.50
                WHEN r IS NULL OR b = 0 THEN 0.00 END
            WHEN product = 'OTHER_LIABILITY' THEN CASE
                WHEN b = 2 THEN 1.00
                ELSE 0.00 END
            WHEN product = 'DERIVATIVE_NET_OUTFLOW' THEN 0.00
            END::DOUBLE AS asf_factor,
            -- NSFR: required stable funding, before the non-performing / encumbrance rules
            CASE
            WHEN product IN ('CASH', 'CENTRAL_BANK_RESERVE') THEN 0.00
            WHEN product = 'SECURITY' THEN CASE
                WHEN sec_level = 'L1' THEN 0.05
                WHEN sec_level = 'L2A' THEN 0.15
                WHEN sec_level IN ('L2B_RMBS', 'L2B_OTHER') THEN 0.50
                WHEN sec_level = 'NON_HQLA' AND sec_issuer = 'EQUITY' THEN 0.85
                WHEN sec_level = 'NON_HQLA' AND rs < 365 THEN 0.50
                WHEN sec_level = 'NON_HQLA' AND (rs IS NULL OR rs >= 365) THEN 0.85 END
            WHEN product IN ('LOAN', 'MORTGAGE') THEN CASE
                WHEN fi AND b = 0 THEN 0.15
                WHEN fi AND b = 1 THEN 0.50
                WHEN fi AND (b = 2 OR r IS NULL) THEN 1.00
                WHEN cpt = 'CENTRAL_BANK' AND b = 0 THEN 0.00
                WHEN cpt = 'CENTRAL_BANK' AND b = 1 THEN 0.50
                WHEN cpt = 'CENTRAL_BANK' AND (b = 2 OR r IS NULL) THEN 1.00
                WHEN r < 365 THEN 0.50
                WHEN (r >= 365 OR r IS NULL)
                     AND risk_weight IS NOT NULL AND risk_weight <= 0.35 THEN 0.65
                WHEN (r >= 365 OR r IS NULL) THEN 0.85 END
            WHEN product = 'REVERSE_REPO' THEN CASE
                WHEN cpt = 'CENTRAL_BANK' AND (b = 0 OR r IS NULL) THEN 0.00
                WHEN cpt = 'CENTRAL_BANK' AND b = 1 THEN 0.50
                WHEN cpt = 'CENTRAL_BANK' AND b = 2 THEN 1.00
                WHEN fi AND (b = 0 OR r IS NULL) AND coll = 'L1' THEN 0.10
                WHEN fi AND (b = 0 OR r IS NULL) THEN 0.15
                WHEN fi AND b = 1 THEN 0.50
                WHEN fi AND b = 2 THEN 1.00
                WHEN r < 365 OR r IS NULL THEN 0.50
                WHEN r >= 365 THEN 0.85 END
            WHEN product = 'DEPOSIT_PLACED' THEN CASE
                WHEN op THEN 0.50
                WHEN NOT op AND (b = 0 OR r IS NULL) THEN 0.15
                WHEN NOT op AND b = 1 THEN 0.50
                WHEN NOT op AND b = 2 THEN 1.00 END
            WHEN product = 'DERIVATIVE_NET_INFLOW' THEN 1.00
            WHEN product = 'DERIVATIVE_NET_OUTFLOW' THEN 0.20
            WHEN product = 'OTHER_ASSET' THEN 1.00
            WHEN product IN ('CREDIT_FACILITY', 'LIQUIDITY_FACILITY') THEN 0.05
            END::DOUBLE AS rsf_base
        FROM g"""
    ctes["fields"] = """
        SELECT *,
            CASE hqla_level WHEN 'L1' THEN 0.00 WHEN 'L2A' THEN 0.15
                            WHEN 'L2B_RMBS' THEN 0.25 WHEN 'L2B_OTHER' THEN 0.50
            END::DOUBLE AS haircut,
            CASE
                WHEN product IN ('LOAN', 'MORTGAGE', 'REVERSE_REPO', 'DEPOSIT_PLACED')
                     AND NOT perf THEN 1.00
                WHEN product IN ('SECURITY', 'LOAN', 'MORTGAGE') AND enc AND e >= 365 THEN 1.00
                WHEN product IN ('SECURITY', 'LOAN', 'MORTGAGE') AND enc AND e >= 183
                     THEN greatest(rsf_base, 0.50)
                ELSE rsf_base
            END::DOUBLE AS rsf_factor
        FROM calc"""

    if detail:
        cols = ", ".join(f"CASE WHEN is_valid THEN {c} END AS {c}" for c in (
            "amount", "hqla_level", "haircut", "outflow_rate", "inflow_rate", "asf_factor",
            "rsf_factor"))
        final = f"""
            SELECT position_id, source_system, entity_id, product, is_valid, {cols}
            FROM fields ORDER BY entity_id, source_system, position_id"""
        return _with(ctes) + final

    # ---- aggregation to components (+ row counts) in one pass, then the final calculation
    ctes["comp"] = """
        SELECT entity_id,
               sum(CASE WHEN hqla_level = 'L1' THEN amount * (1 - haircut) END) AS hqla_l1,
               sum(CASE WHEN hqla_level = 'L2A' THEN amount * (1 - haircut) END) AS hqla_l2a,
               sum(CASE WHEN hqla_level IN ('L2B_RMBS', 'L2B_OTHER')
                        THEN amount * (1 - haircut) END) AS hqla_l2b,
               sum(amount * outflow_rate) AS total_outflows,
               sum(amount * inflow_rate) AS total_inflows,
               sum(amount * asf_factor) AS asf,
               sum(amount * rsf_factor) AS rsf,
               count(*) FILTER (WHERE is_valid) AS positions_accepted,
               count(*) FILTER (WHERE NOT is_valid) AS positions_quarantined
        FROM fields GROUP BY entity_id"""
    ctes["base"] = """
        SELECT e.entity_id, e.reporting_currency,
               COALESCE(c.hqla_l1, 0)::DOUBLE AS hqla_l1,
               COALESCE(c.hqla_l2a, 0)::DOUBLE AS hqla_l2a,
               COALESCE(c.hqla_l2b, 0)::DOUBLE AS hqla_l2b,
               COALESCE(c.total_outflows, 0)::DOUBLE AS total_outflows,
               COALESCE(c.total_inflows, 0)::DOUBLE AS total_inflows,
               COALESCE(c.asf, 0)::DOUBLE AS asf,
               COALESCE(c.rsf, 0)::DOUBLE AS rsf,
               COALESCE(c.positions_accepted, 0)::BIGINT AS positions_accepted,
               COALESCE(c.positions_quarantined, 0)::BIGINT AS positions_quarantined
        FROM ent_valid e
        LEFT JOIN comp c ON c.entity_id = e.entity_id"""
    ctes["caps"] = """
        SELECT *,
               greatest(hqla_l2b - 15.0 / 85.0 * (hqla_l1 + hqla_l2a),
                        hqla_l2b - 15.0 / 60.0 * hqla_l1, 0.0) AS adj15
        FROM base"""
    ctes["caps2"] = """
        SELECT *, greatest(hqla_l2a + hqla_l2b - adj15 - 2.0 / 3.0 * hqla_l1, 0.0) AS adj40
        FROM caps"""
    ctes["lcr1"] = """
        SELECT *,
               hqla_l1 + hqla_l2a + hqla_l2b - adj15 - adj40 AS hqla,
               least(total_inflows, 0.75 * total_outflows) AS capped_inflows
        FROM caps2"""
    ctes["lcr2"] = "SELECT *, total_outflows - capped_inflows AS net_outflows FROM lcr1"
    final = f"""
        SELECT {_q(business_date)} AS business_date, entity_id, reporting_currency,
               hqla_l1, hqla_l2a, hqla_l2b, adj15, adj40, hqla,
               total_outflows, total_inflows, capped_inflows, net_outflows,
               CASE WHEN net_outflows <> 0 THEN hqla / net_outflows END AS lcr,
               asf, rsf,
               CASE WHEN rsf <> 0 THEN asf / rsf END AS nsfr,
               positions_accepted, positions_quarantined
        FROM lcr2 ORDER BY entity_id"""
    return _with(ctes) + final


def _with(ctes: dict[str, str]) -> str:
    # positions_raw is scanned twice (all columns; the two key columns for duplicates): not
    # worth materializing. g is materialized on purpose: otherwise DuckDB inlines r / nw30 / b
    # ... into every WHEN of the factor CASEs and re-evaluates them there (about 2x slower).
    def one(name: str, body: str) -> str:
        hint = {"positions_raw": " NOT MATERIALIZED", "g": " MATERIALIZED"}.get(name, "")
        return f"{name} AS{hint} ({body})"
    return "WITH " + ",\n".join(one(n, b) for n, b in ctes.items()) + "\n"


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------

def compute_metrics_sql(landing_root: str, business_date: str,
                        con: "duckdb.DuckDBPyConnection | None" = None) -> list[dict]:
    """Base (unadjusted) LCR / NSFR figures, one dict per valid entity, sorted by entity_id."""
    own = con is None
    if own:
        con = duckdb.connect()
    try:
        sql = build_sql(con, landing_root, business_date)
        cur = con.execute(sql)
        names = [c[0] for c in cur.description]
        rows = cur.fetchall()
    finally:
        if own:
            con.close()
    out: list[dict] = []
    for row in rows:
        rec = dict(zip(names, row))
        d: dict[str, Any] = {}
        for k in OUTPUT_COLUMNS:
            v = rec[k]
            if k in TEXT_COLUMNS:
                d[k] = v
            elif k in COUNT_COLUMNS:
                d[k] = int(v)
            else:
                d[k] = None if v is None else float(v)
        out.append(d)
    return out


def position_fields_sql(landing_root: str, business_date: str,
                        con: "duckdb.DuckDBPyConnection | None" = None):
    """Per-position detail (is_valid + calculation fields) as a pyarrow Table, for debugging."""
    own = con is None
    if own:
        con = duckdb.connect()
    try:
        return con.sql(build_sql(con, landing_root, business_date, detail=True)).to_arrow_table()
    finally:
        if own:
            con.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Base LCR / NSFR per entity, computed in DuckDB SQL.")
    ap.add_argument("--landing", required=True, help="landing root (holds business_date=D/)")
    ap.add_argument("--date", required=True, help="business date YYYY-MM-DD")
    ap.add_argument("--timing", action="store_true", help="print elapsed seconds to stderr")
    args = ap.parse_args(argv)
    import time
    t0 = time.perf_counter()
    rows = compute_metrics_sql(args.landing, args.date)
    if args.timing:
        print(f"elapsed {time.perf_counter() - t0:.3f}s", file=sys.stderr)
    json.dump(rows, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
