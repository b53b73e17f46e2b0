"""Synthetic landing-zone generator: realistic, deterministic, vectorised (numpy + pyarrow).

``generate_landing`` writes one folder per business date (weekends skipped) with the six files of
the landing-zone contract (landing-zone.md), in the exact Arrow schemas of the golden example, as
zstd parquet or as CSV. Positions are made in chunks of ``CHUNK_ROWS`` rows (one parquet row
group each), so memory stays bounded whatever the size; no Python loop runs over positions.

The delivery exercises the calculation: every product, counterparty type, HQLA level and issuer
type; residual maturities on both sides of the 30-day, 6-month and 1-year limits (r = 30, 31, 182,
183, 364, 365 always occur), past and null maturities; encumbrances ending on the business date
and around 183 / 365 days; non-performing loans; flags mixed with nulls. With ``bad_row_rate`` a
fraction of position rows breaks the contract in varied, known ways (see ``BAD_KINDS``); the
summary says how many rows the pipeline must quarantine (a duplicated key quarantines both rows).
Randomness comes from ``numpy.random.default_rng([seed, stream, ...])``, so a seed reproduces a
delivery exactly.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CHUNK_ROWS = 500_000
FILES = ("positions", "counterparties", "securities", "entities", "fx_rates", "prices")

# --- schemas: exactly those of the golden example -------------------------------------------
SCHEMAS = {
    "positions": pa.schema([
        ("position_id", pa.string()), ("source_system", pa.string()), ("entity_id", pa.string()),
        ("counterparty_id", pa.string()), ("product", pa.string()), ("currency", pa.string()),
        ("balance", pa.decimal128(18, 2)), ("quantity", pa.decimal128(18, 4)),
        ("security_id", pa.string()), ("maturity_date", pa.date32()), ("insured", pa.bool_()),
        ("stable_relationship", pa.bool_()), ("operational", pa.bool_()), ("performing", pa.bool_()),
        ("risk_weight", pa.decimal128(8, 4)), ("encumbered_until", pa.date32()),
    ]),
    "counterparties": pa.schema([("counterparty_id", pa.string()), ("counterparty_type", pa.string()),
                                 ("name", pa.string()), ("country", pa.string())]),
    "securities": pa.schema([("security_id", pa.string()), ("hqla_level", pa.string()),
                             ("issuer_type", pa.string()), ("maturity_date", pa.date32())]),
    "entities": pa.schema([("entity_id", pa.string()), ("name", pa.string()), ("reporting_currency", pa.string()),
                           ("country", pa.string()), ("parent_entity_id", pa.string())]),
    "fx_rates": pa.schema([("currency", pa.string()), ("usd_per_unit", pa.decimal128(18, 10))]),
    "prices": pa.schema([("security_id", pa.string()), ("price", pa.decimal128(18, 6))]),
}

# --- market and reference vocabulary --------------------------------------------------------
# currency, usd_per_unit (base), home country, legal-form suffix, weight as a foreign position currency
CURRENCIES = [
    ("USD", 1.0, "US", "Inc", 40), ("GBP", 1.27, "GB", "plc", 15), ("EUR", 1.08, "DE", "AG", 25),
    ("JPY", 0.0064, "JP", "KK", 8), ("CHF", 1.12, "CH", "AG", 4), ("SGD", 0.74, "SG", "Pte Ltd", 2),
    ("HKD", 0.128, "HK", "Ltd", 2), ("AUD", 0.66, "AU", "Ltd", 2), ("CAD", 0.73, "CA", "Inc", 1),
    ("SEK", 0.095, "SE", "AB", 1),
]
CCY_CODES = [c[0] for c in CURRENCIES]
CCY_USD = np.array([c[1] for c in CURRENCIES])
COUNTRIES = ["US", "GB", "DE", "FR", "NL", "JP", "CH", "SG", "HK", "AU", "CA", "SE", "IE", "LU"]

CP_TYPES = ("RETAIL", "SMALL_BUSINESS", "NON_FINANCIAL_CORPORATE", "SOVEREIGN", "CENTRAL_BANK", "PSE",
            "MDB", "BANK", "OTHER_FINANCIAL", "OTHER")
CP_TYPE_SHARE = (45, 20, 18, 1, 0.5, 2, 0.5, 6, 6, 1)
CP_NAMES = ("Retail customer", "Small business", "Corporate", "Sovereign", "Central bank", "Public sector entity",
            "Development bank", "Bank", "Fund", "Other client")

# hqla_level, issuer_type, weight — plausible combinations; each occurs at least once
SECURITY_KINDS = [
    ("L1", "SOVEREIGN", 25), ("L1", "CENTRAL_BANK", 3), ("L1", "PSE", 3), ("L1", "MDB", 4),
    ("L2A", "SOVEREIGN", 3), ("L2A", "PSE", 3), ("L2A", "CORPORATE", 8), ("L2A", "COVERED_BOND", 6),
    ("L2B_RMBS", "RMBS", 5), ("L2B_OTHER", "CORPORATE", 6), ("L2B_OTHER", "EQUITY", 5),
    ("NON_HQLA", "CORPORATE", 12), ("NON_HQLA", "BANK", 6), ("NON_HQLA", "EQUITY", 6),
    ("NON_HQLA", "COVERED_BOND", 2), ("NON_HQLA", "RMBS", 2), ("NON_HQLA", None, 1),
]
HQLA_LEVELS = ("L1", "L2A", "L2B_RMBS", "L2B_OTHER", "NON_HQLA")
ISSUER_TYPES = ("SOVEREIGN", "CENTRAL_BANK", "PSE", "MDB", "BANK", "CORPORATE", "COVERED_BOND", "RMBS", "EQUITY")

# product, weight, source system, share with a counterparty, share without maturity, longest maturity (days),
# median balance (USD; sized for a plausible balance sheet, LCR ~ 150-200%), balance log-sd,
# counterparty-type weights (order of CP_TYPES; None: no counterparty, or the overall mix)
_RETAIL_HEAVY = (45, 15, 15, 2, 0.5, 3, 1, 8, 8, 2.5)
_WHOLESALE = (0, 0, 2, 5, 10, 3, 2, 45, 30, 3)
_MIXED = (5, 5, 30, 5, 1, 5, 1, 20, 20, 8)
PRODUCT_TABLE = [
    ("CASH", 1.0, "TREASURY", 0.0, 1.0, 0, 1e5, 1.0, None),
    ("CENTRAL_BANK_RESERVE", 0.5, "TREASURY", 0.0, 1.0, 0, 1.8e6, 1.0, None),
    ("SECURITY", 12, "TREASURY", 0.0, 0.0, 0, 1.3e5, 1.2, None),  # maturity is the security's
    ("LOAN", 18, "LOANS", 1.0, 0.03, 3650, 1e5, 1.5, (30, 25, 30, 1, 0.5, 3, 1, 5, 4, 0.5)),
    ("MORTGAGE", 10, "LOANS", 1.0, 0.02, 10950, 3.8e5, 0.6, (85, 14, 0, 0, 0, 0, 0, 0.5, 0.5, 0)),
    ("REVERSE_REPO", 1, "MARKETS", 1.0, 0.05, 400, 8e5, 1.0, _WHOLESALE),
    ("DEPOSIT_PLACED", 2, "TREASURY", 1.0, 0.5, 400, 2.2e5, 1.0, (0, 0, 0, 0, 20, 0, 0, 70, 10, 0)),
    ("DERIVATIVE_NET_INFLOW", 1.5, "MARKETS", 1.0, 1.0, 0, 1.2e5, 1.2, (0, 0, 20, 2, 0, 2, 1, 50, 25, 0)),
    ("OTHER_ASSET", 1, "TREASURY", 0.2, 0.7, 730, 3.5e5, 1.2, _MIXED),
    ("DEPOSIT", 35, "DEPOSITS", 1.0, 0.6, 1100, 5e4, 1.8, _RETAIL_HEAVY),
    ("REPO", 1, "MARKETS", 1.0, 0.05, 400, 8e5, 1.0, _WHOLESALE),
    ("BORROWING", 2, "TREASURY", 1.0, 0.1, 1830, 3.3e5, 1.0, (5, 5, 15, 5, 5, 5, 3, 35, 20, 2)),
    ("ISSUED_DEBT", 1, "TREASURY", 1.0, 0.02, 3650, 1.6e6, 0.8, (10, 5, 20, 2, 0, 5, 3, 20, 33, 2)),
    ("DERIVATIVE_NET_OUTFLOW", 1.5, "MARKETS", 1.0, 1.0, 0, 1.2e5, 1.2, (0, 0, 20, 2, 0, 2, 1, 50, 25, 0)),
    ("EQUITY_CAPITAL", 0.1, "TREASURY", 0.0, 1.0, 0, 1.1e7, 0.5, None),
    ("OTHER_LIABILITY", 1, "TREASURY", 0.2, 0.5, 730, 4.4e5, 1.2, _MIXED),
    ("CREDIT_FACILITY", 3, "LOANS", 1.0, 0.7, 1830, 1.6e5, 1.5, (20, 30, 40, 0, 0, 3, 0, 3, 3, 1)),
    ("LIQUIDITY_FACILITY", 1, "LOANS", 1.0, 0.7, 1830, 1.8e5, 1.2, (5, 10, 30, 0, 0, 5, 0, 20, 25, 5)),
]
PRODUCTS = tuple(p[0] for p in PRODUCT_TABLE)
SOURCE_SYSTEMS = ("LOANS", "DEPOSITS", "TREASURY", "MARKETS")

BOUNDARY_DAYS = np.array([0, 1, 29, 30, 31, 32, 181, 182, 183, 184, 363, 364, 365, 366])
MATURITY_COVERAGE = (-5, 0, 30, 31, 182, 183, 364, 365)      # forced into every date
ENCUMBRANCE_COVERAGE = (0, 182, 183, 364, 365, 400)          # days after the business date
RISK_WEIGHTS = np.array([0.0, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5])
RW_MORTGAGE = (0, 0, 0.5, 0.2, 0.15, 0.1, 0.05)     # probabilities over RISK_WEIGHTS
RW_OTHER = (0.05, 0.1, 0, 0.15, 0.25, 0.35, 0.1)

# Contract breaks. A row gets exactly one; "duplicate_key" also taints the row whose key it copies.
BAD_KINDS = ("unknown_product", "negative_amount", "unknown_counterparty", "risk_weight_out_of_range",
             "duplicate_key", "currency_without_fx", "unknown_security")
CSV_BAD_KINDS = ("unparseable_date", "unparseable_number", "unparseable_boolean")
BAD_PRODUCTS = ("SWAPTION", "FX_FORWARD", "CDS")
NO_FX_CURRENCIES = ("BRL", "ZAR", "TRY")
UNKNOWN_IDS = 3  # unknown counterparty / security ids appended to each id vocabulary
CSV_GARBAGE = {
    "maturity_date": ("28/06/2024", "2024-13-01", "2024-6-3", "tomorrow"),
    "number": ("1.2.3", "12O.50", "n/a", "1e"),
    "insured": ("yes", "Y", "1", "maybe"),
}


# --- small helpers ---------------------------------------------------------------------------
def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def business_dates(start_date: datetime.date, days: int) -> list[datetime.date]:
    """``days`` weekdays from start_date (a weekend start moves to the next Monday)."""
    out, d = [], start_date
    while len(out) < days:
        if d.weekday() < 5:
            out.append(d)
        d += datetime.timedelta(days=1)
    return out


def _allocate(n: int, weights, minimum: int = 1) -> np.ndarray:
    """Split n into integer counts proportional to weights, each >= minimum when n allows it."""
    w = np.asarray(weights, dtype=float)
    floor = minimum if n >= minimum * len(w) else 0
    share = (n - floor * len(w)) * w / w.sum()
    counts = np.floor(share).astype(np.int64)
    counts[np.argsort(counts - share)[: n - floor * len(w) - counts.sum()]] += 1
    return counts + floor


def _epoch_day(d: datetime.date) -> int:
    return (d - datetime.date(1970, 1, 1)).days


def _validity(valid) -> pa.Buffer | None:
    if valid is None or valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def _decimal(scaled: np.ndarray, valid, typ: pa.DataType) -> pa.Array:
    """Decimal128 array from integers already multiplied by 10**scale."""
    scaled = np.asarray(scaled, dtype=np.int64)
    words = np.empty((len(scaled), 2), dtype=np.int64)
    words[:, 0], words[:, 1] = scaled, scaled >> 63
    return pa.Array.from_buffers(typ, len(scaled), [_validity(valid), pa.py_buffer(words)])


def _dates(epoch_days: np.ndarray, valid) -> pa.Array:
    days = np.ascontiguousarray(epoch_days, dtype=np.int32)
    return pa.Array.from_buffers(pa.date32(), len(days), [_validity(valid), pa.py_buffer(days)])


def _bools(values: np.ndarray, valid) -> pa.Array:
    return pa.array(values, type=pa.bool_(), mask=None if valid is None else ~valid)


def _labels(vocabulary, codes: np.ndarray) -> pa.Array:
    """Strings from codes into a vocabulary; code -1 is null."""
    vocab = vocabulary if isinstance(vocabulary, pa.Array) else pa.array(vocabulary, pa.string())
    return pc.take(vocab, pa.array(codes, type=pa.int32(), mask=codes < 0))


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """prefix + zero-padded number, e.g. CP_0000042."""
    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _tristate(rng, n, p_true, p_null):
    """Booleans with per-row P(true) and P(null): (values, valid)."""
    return rng.random(n) < p_true, rng.random(n) >= p_null


# --- reference data (identical on every date) ----------------------------------------------
def make_entities(n: int) -> pa.Table:
    """LE_001.. : reporting currencies cycle through CURRENCIES; LE_001 is the group parent."""
    i = np.arange(n)
    width = max(3, len(str(n)))
    ccy = i % len(CURRENCIES)
    round_ = i // len(CURRENCIES)
    names = [f"Northwind Bank {CURRENCIES[c][2]}{'' if r == 0 else f' {r + 1}'} {CURRENCIES[c][3]}"
             for c, r in zip(ccy, round_)]  # one per entity, not per position
    parent = np.where(i == 0, -1, 0)                 # most report to the group parent ...
    parent[(i % 5 == 4)] = 1 if n > 1 else -1        # ... some to an intermediate holding ...
    parent[(i % 7 == 6)] = -1                        # ... some are stand-alone
    ids = _ids("LE_", i + 1, width)
    return pa.table([ids, pa.array(names), _labels(CCY_CODES, ccy), _labels([c[2] for c in CURRENCIES], ccy),
                     pc.take(ids, pa.array(parent, mask=parent < 0))], schema=SCHEMAS["entities"])


def make_counterparties(rng, n: int) -> tuple[pa.Table, np.ndarray]:
    """Counterparties of every type (shuffled); returns the table and each one's type code."""
    types = rng.permutation(np.repeat(np.arange(len(CP_TYPES)), _allocate(n, CP_TYPE_SHARE)))
    number = pa.array(np.arange(1, n + 1)).cast(pa.string())
    names = pc.binary_join_element_wise(_labels(CP_NAMES, types), number, " ")
    names = pc.if_else(pa.array(rng.random(n) < 0.02), pa.scalar(None, pa.string()), names)
    country = np.where(rng.random(n) < 0.03, -1, rng.integers(0, len(COUNTRIES), n))
    table = pa.table([_ids("CP_", np.arange(1, n + 1), 7), _labels(CP_TYPES, types), names,
                      _labels(COUNTRIES, country)], schema=SCHEMAS["counterparties"])
    return table, types


def make_securities(rng, n: int, anchor: datetime.date) -> tuple[pa.Table, dict]:
    """Securities of every (hqla_level, issuer_type) kind; maturities relative to ``anchor``."""
    kind = rng.permutation(np.repeat(np.arange(len(SECURITY_KINDS)), _allocate(n, [k[2] for k in SECURITY_KINDS])))
    level = np.array([HQLA_LEVELS.index(k[0]) for k in SECURITY_KINDS])[kind]
    issuer = np.array([-1 if k[1] is None else ISSUER_TYPES.index(k[1]) for k in SECURITY_KINDS])[kind]
    equity = issuer == ISSUER_TYPES.index("EQUITY")
    u = rng.random(n)
    days = rng.integers(30, 10950, n)
    days = np.where(u < 0.15, rng.integers(1, 46, n), days)                       # short paper
    days = np.where((u >= 0.15) & (u < 0.2), rng.choice(BOUNDARY_DAYS[2:], n), days)
    has_maturity = ~equity & (rng.random(n) >= 0.01)                               # equities, perpetuals
    country = rng.choice(["US", "GB", "DE", "FR", "JP", "XS"], n)
    ids = pc.binary_join_element_wise(pa.array(country), pc.utf8_lpad(
        pa.array(np.arange(1, n + 1) * 7919 % 10**10).cast(pa.string()), 10, padding="0"), "")
    price = np.where(equity, np.exp(rng.normal(3.5, 1.0, n)), 100 * np.exp(rng.normal(0, 0.05, n)))
    table = pa.table([ids, _labels(HQLA_LEVELS, level), _labels(ISSUER_TYPES, issuer),
                      _dates(_epoch_day(anchor) + days, has_maturity)], schema=SCHEMAS["securities"])
    info = {"ids": ids, "price": price, "equity": equity, "bonds": np.flatnonzero(~equity),
            "maturity": np.where(has_maturity, _epoch_day(anchor) + days, -1)}
    return table, info


# --- market data (moves a little every date) -----------------------------------------------
def make_fx_rates(seed: int, day: datetime.date) -> pa.Table:
    rng = _rng(seed, 3, day.toordinal())
    rate = CCY_USD * np.exp(rng.normal(0, 0.005, len(CCY_USD)))
    rate[0] = 1.0
    return pa.table([pa.array(CCY_CODES), _decimal(np.round(rate * 1e10), None, pa.decimal128(18, 10))],
                    schema=SCHEMAS["fx_rates"])


def make_prices(seed: int, day: datetime.date, securities: dict) -> pa.Table:
    rng = _rng(seed, 4, day.toordinal())
    vol = np.where(securities["equity"], 0.015, 0.003)
    price = securities["price"] * np.exp(rng.normal(0, 1, len(vol)) * vol)
    scaled = np.maximum(np.round(price * 1e6), 1)
    return pa.table([securities["ids"], _decimal(scaled, None, pa.decimal128(18, 6))], schema=SCHEMAS["prices"])


# --- positions ------------------------------------------------------------------------------
def _product_arrays():
    cols = list(zip(*PRODUCT_TABLE))
    cp_weights = np.array([w if w is not None else CP_TYPE_SHARE for w in cols[8]], dtype=float)
    return {
        "weight": np.array(cols[1], dtype=float),
        "source": np.array([SOURCE_SYSTEMS.index(s) for s in cols[2]]),
        "cp_share": np.array(cols[3]), "null_maturity": np.array(cols[4]), "horizon": np.array(cols[5]),
        "median": np.array(cols[6]), "sigma": np.array(cols[7]),
        "cp_p": cp_weights / cp_weights.sum(axis=1, keepdims=True),
        "rw_p": np.array([RW_MORTGAGE if name == "MORTGAGE" else RW_OTHER for name in cols[0]]),
    }


PRODUCT_ARRAYS = _product_arrays()


def _by_product(rng, product: np.ndarray, p: np.ndarray) -> np.ndarray:
    """One category per row, drawn with the probabilities of its product's row of ``p``."""
    out = np.zeros(len(product), dtype=np.int64)
    for k in np.unique(product):
        rows = np.flatnonzero(product == k)
        out[rows] = rng.choice(p.shape[1], size=len(rows), p=p[k])
    return out


def _residual_days(rng, horizon: np.ndarray) -> np.ndarray:
    """Residual maturities: short, exactly-on-boundary, past and long ones, up to ``horizon``."""
    n = len(horizon)
    u = rng.random(n)
    days = (rng.random(n) * np.maximum(horizon, 1)).astype(np.int64)
    days = np.where(u < 0.25, rng.integers(0, 46, n), days)
    days = np.where((u >= 0.25) & (u < 0.33), rng.choice(BOUNDARY_DAYS, n), days)
    return np.where((u >= 0.33) & (u < 0.36), -rng.integers(1, 90, n), days)


def _encumbrance_days(rng, n: int) -> np.ndarray:
    """Days from the business date to encumbered_until: 0, < 183, 183..364, >= 365, a few already past."""
    u = rng.random(n)
    days = rng.integers(1, 183, n)
    days = np.where(u < 0.15, 0, days)
    days = np.where((u >= 0.15) & (u < 0.2), -rng.integers(1, 30, n), days)
    days = np.where((u >= 0.2) & (u < 0.3), rng.choice([182, 183, 364, 365], n), days)
    days = np.where((u >= 0.3) & (u < 0.5), rng.integers(183, 365, n), days)
    return np.where((u >= 0.5) & (u < 0.7), rng.integers(365, 1500, n), days)


def _force(values: np.ndarray, eligible: np.ndarray, wanted, protected: np.ndarray) -> np.ndarray:
    """Put each wanted value on one eligible row (the first ones), so it surely occurs; returns the rows."""
    rows = np.flatnonzero(eligible)[: len(wanted)]
    values[rows] = np.asarray(wanted)[: len(rows)]
    protected[rows] = True
    return rows


def make_positions(rng, ctx: dict, day: datetime.date, first_row: int, n: int, cover: bool) -> dict:
    """A chunk of clean positions as numpy columns (codes into vocabularies, scaled decimals, masks)."""
    prod = PRODUCT_ARRAYS
    d = _epoch_day(day)
    protected = np.zeros(n, dtype=bool)
    product = rng.permutation(np.repeat(np.arange(len(PRODUCTS)), _allocate(n, prod["weight"])))
    source = prod["source"][product]
    is_ = {name: product == i for i, name in enumerate(PRODUCTS)}
    source[is_["SECURITY"] & (rng.random(n) < 0.4)] = SOURCE_SYSTEMS.index("MARKETS")
    entity = rng.choice(len(ctx["entity_p"]), size=n, p=ctx["entity_p"])
    currency = np.where(rng.random(n) < 0.8, ctx["entity_ccy"][entity],
                        rng.choice(len(CURRENCIES), size=n, p=ctx["ccy_p"]))

    # counterparty: a type drawn per product, then a counterparty of that type
    has_cp = rng.random(n) < prod["cp_share"][product]
    cp_type = _by_product(rng, product, prod["cp_p"])
    if cover:
        _force(cp_type, has_cp, np.arange(len(CP_TYPES)), protected)
    start, count = ctx["cp_start"][cp_type], ctx["cp_count"][cp_type]
    counterparty = np.where(has_cp, ctx["cp_order"][start + (rng.random(n) * count).astype(np.int64)], -1)

    # security: held (SECURITY) or collateral (most repos); its maturity is the position's
    sec = ctx["securities"]
    security = np.full(n, -1)
    security[is_["SECURITY"]] = rng.integers(0, len(sec["price"]), is_["SECURITY"].sum())
    collateral = (is_["REPO"] | is_["REVERSE_REPO"]) & (rng.random(n) < 0.75)
    security[collateral] = sec["bonds"][rng.integers(0, len(sec["bonds"]), collateral.sum())]

    # maturity
    r = _residual_days(rng, prod["horizon"][product])
    has_maturity = (rng.random(n) >= prod["null_maturity"][product]) & ~is_["SECURITY"]
    if cover:
        _force(r, has_maturity, MATURITY_COVERAGE, protected)
    maturity = d + r
    maturity[is_["SECURITY"]] = sec["maturity"][security[is_["SECURITY"]]]
    has_maturity |= is_["SECURITY"] & (maturity >= 0)

    # amounts: balance in the position currency (quantity x price for securities)
    usd = prod["median"][product] * np.exp(np.clip(rng.normal(0, 1, n), -5, 5) * prod["sigma"][product])
    local = usd / CCY_USD[currency]
    balance = np.maximum(np.round(local * 100), 100).astype(np.int64)
    facility = is_["CREDIT_FACILITY"] | is_["LIQUIDITY_FACILITY"]
    balance[facility & (rng.random(n) < 0.02)] = 0                      # fully drawn
    quantity = np.zeros(n, dtype=np.int64)
    held = is_["SECURITY"]
    quantity[held] = np.maximum(np.round(local[held] / sec["price"][security[held]]), 1).astype(np.int64) * 10_000

    # flags
    retail = has_cp & (cp_type <= CP_TYPES.index("SMALL_BUSINESS"))
    deposit, placed = is_["DEPOSIT"], is_["DEPOSIT_PLACED"]
    insured = _tristate(rng, n, np.where(retail, 0.7, 0.1), np.where(deposit, 0.15, 1.0))
    stable = _tristate(rng, n, np.where(retail, 0.6, 0.3), np.where(deposit, 0.25, 1.0))
    operational = _tristate(rng, n, 0.4, np.where(deposit, np.where(retail, 0.8, 0.2), np.where(placed, 0.2, 1.0)))
    lending = is_["LOAN"] | is_["MORTGAGE"] | is_["REVERSE_REPO"] | placed
    performing = (rng.random(n) >= 0.03, (rng.random(n) >= 0.4) & lending)
    loan = is_["LOAN"] | is_["MORTGAGE"]
    rw = RISK_WEIGHTS[_by_product(rng, product, prod["rw_p"])]
    risk_weight = (np.round(rw * 10_000).astype(np.int64), loan & (rng.random(n) >= 0.1))

    # encumbrance
    pledgeable = held | loan | is_["CASH"]
    encumbered = pledgeable & (rng.random(n) < np.where(held, 0.12, np.where(loan, 0.06, 0.02)))
    e = _encumbrance_days(rng, n)
    if cover:
        encumbered[_force(e, held | loan, ENCUMBRANCE_COVERAGE, protected)] = True

    return {
        "position_no": np.arange(first_row + 1, first_row + n + 1), "source": source, "entity": entity,
        "counterparty": counterparty, "product": product, "currency": currency,
        "balance": (balance, ~held), "quantity": (quantity, held.copy()), "security": security,
        "maturity": (maturity, has_maturity), "insured": insured, "stable": stable,
        "operational": operational, "performing": performing, "risk_weight": risk_weight,
        "encumbered_until": (d + e, encumbered), "protected": protected, "csv_garbage": {},
    }


def _row_arrays(cols: dict) -> list[np.ndarray]:
    """Every per-row numpy array of a positions chunk (values and validity masks)."""
    arrays = []
    for name, value in cols.items():
        if name not in ("protected", "csv_garbage"):
            arrays.extend(value if isinstance(value, tuple) else (value,))
    return arrays


def inject_bad_rows(rng, cols: dict, ctx: dict, n_bad: int, kinds: tuple) -> tuple[dict, int]:
    """Break up to n_bad unprotected rows, one contract rule each.

    Returns the rows broken per kind and the number of rows the pipeline must quarantine (a
    duplicate_key row copies the key of a clean row, which is then quarantined too).
    """
    candidates = np.flatnonzero(~cols["protected"])
    kind = (rng.integers(len(kinds)) + np.arange(n_bad)) % len(kinds)
    n_dup = int((kind == kinds.index("duplicate_key")).sum())
    n_bad = min(n_bad, len(candidates))
    picked = rng.choice(candidates, min(n_bad + n_dup, len(candidates)), replace=False)
    rows, victims = picked[:n_bad], picked[n_bad:]
    balance, quantity, held = cols["balance"][0], cols["quantity"][0], cols["quantity"][1]
    injected = {}
    for k, name in enumerate(kinds):
        at = rows[kind[:n_bad] == k]
        if name == "unknown_product":
            cols["product"][at] = len(PRODUCTS) + rng.integers(0, len(BAD_PRODUCTS), len(at))
        elif name == "negative_amount":
            balance[at[~held[at]]] = -np.maximum(balance[at[~held[at]]], 100)
            quantity[at[held[at]]] *= -1
        elif name == "unknown_counterparty":
            cols["counterparty"][at] = ctx["n_cp"] + rng.integers(0, UNKNOWN_IDS, len(at))
        elif name == "risk_weight_out_of_range":
            cols["risk_weight"][0][at], cols["risk_weight"][1][at] = 150_000, True   # 15.0
        elif name == "duplicate_key":                          # the same position delivered twice
            at, copied = at[: len(victims)], victims[: len(at)]
            for column in _row_arrays(cols):
                column[at] = column[copied]
        elif name == "currency_without_fx":
            cols["currency"][at] = len(CURRENCIES) + rng.integers(0, len(NO_FX_CURRENCIES), len(at))
        elif name == "unknown_security":
            cols["security"][at] = ctx["n_sec"] + rng.integers(0, UNKNOWN_IDS, len(at))
        elif name == "unparseable_date":
            cols["csv_garbage"].setdefault("maturity_date", []).append(at)
        elif name == "unparseable_number":
            cols["csv_garbage"].setdefault("balance", []).append(at[~held[at]])
            cols["csv_garbage"].setdefault("quantity", []).append(at[held[at]])
        elif name == "unparseable_boolean":
            cols["csv_garbage"].setdefault("insured", []).append(at)
        injected[name] = len(at)
    return injected, sum(injected.values()) + injected.get("duplicate_key", 0)


def positions_table(cols: dict, ctx: dict) -> pa.Table:
    return pa.table([
        _ids("P", cols["position_no"], 9), _labels(SOURCE_SYSTEMS, cols["source"]),
        pc.take(ctx["entity_ids"], pa.array(cols["entity"])),
        _labels(ctx["cp_vocab"], cols["counterparty"]),
        _labels(PRODUCTS + BAD_PRODUCTS, cols["product"]),
        _labels(CCY_CODES + list(NO_FX_CURRENCIES), cols["currency"]),
        _decimal(*cols["balance"], pa.decimal128(18, 2)), _decimal(*cols["quantity"], pa.decimal128(18, 4)),
        _labels(ctx["sec_vocab"], cols["security"]), _dates(*cols["maturity"]),
        _bools(*cols["insured"]), _bools(*cols["stable"]), _bools(*cols["operational"]),
        _bools(*cols["performing"]), _decimal(*cols["risk_weight"], pa.decimal128(8, 4)),
        _dates(*cols["encumbered_until"]),
    ], schema=SCHEMAS["positions"])


def _with_csv_garbage(rng, table: pa.Table, garbage: dict) -> pa.Table:
    """CSV only: the columns that may hold unparseable text become strings; the bad cells get text."""
    for name in ("balance", "quantity", "maturity_date", "insured"):
        column = table.column(name).cast(pa.string())
        rows = np.concatenate(garbage.get(name, [np.empty(0, np.int64)]))
        if len(rows):
            mask = np.zeros(len(table), dtype=bool)
            mask[rows] = True
            texts = CSV_GARBAGE.get(name, CSV_GARBAGE["number"])
            column = pc.replace_with_mask(column, pa.array(mask),
                                          pa.array(rng.choice(texts, mask.sum()), pa.string()))
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


# --- writing --------------------------------------------------------------------------------
class _Writer:
    """Parquet (zstd, one row group per write) or CSV (unquoted header, no quoting) of one file."""

    def __init__(self, path: Path, schema: pa.Schema, fmt: str):
        self.fmt, self.path = fmt, path
        if fmt == "parquet":
            self.writer = pq.ParquetWriter(path, schema, compression="zstd")
        else:
            self.sink = open(path, "wb")  # noqa: SIM115 - closed in close()
            self.sink.write((",".join(schema.names) + "\n").encode())
            self.writer = None

    def write(self, table: pa.Table) -> None:
        if self.fmt == "parquet":
            self.writer.write_table(table, row_group_size=len(table) or None)
            return
        if self.writer is None:
            options = pacsv.WriteOptions(include_header=False, quoting_style="none")
            self.writer = pacsv.CSVWriter(self.sink, table.schema, write_options=options)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.fmt == "csv":
            self.sink.close()


def _write_table(path: Path, table: pa.Table, fmt: str) -> None:
    writer = _Writer(path, table.schema, fmt)
    writer.write(table)
    writer.close()


def _reference_context(seed: int, anchor: datetime.date, entities: int, positions: int) -> tuple[dict, dict]:
    """Reference tables (same on every date) and the lookup arrays positions are drawn from."""
    rng = _rng(seed, 1)
    n_cp = int(np.clip(positions // 20, 50, 200_000))
    n_sec = int(np.clip(positions // 400, 60, 5_000))
    entity_table = make_entities(entities)
    cp_table, cp_types = make_counterparties(rng, n_cp)
    sec_table, sec = make_securities(rng, n_sec, anchor)
    size = 1.0 / np.arange(1, entities + 1) ** 1.2                    # LE_001 biggest, a long tail
    ccy_weight = np.array([c[4] for c in CURRENCIES], dtype=float)
    order = np.argsort(cp_types, kind="stable")
    count = np.bincount(cp_types, minlength=len(CP_TYPES))
    ctx = {
        "entity_ids": entity_table.column("entity_id").combine_chunks(),
        "entity_p": size / size.sum(), "entity_ccy": np.arange(entities) % len(CURRENCIES),
        "ccy_p": ccy_weight / ccy_weight.sum(),
        "cp_order": order, "cp_count": count, "cp_start": np.cumsum(count) - count, "n_cp": n_cp,
        "cp_vocab": pa.concat_arrays([cp_table.column(0).combine_chunks(),
                                      _ids("CP_X", np.arange(1, UNKNOWN_IDS + 1), 6)]),
        "securities": sec, "n_sec": n_sec,
        "sec_vocab": pa.concat_arrays([sec["ids"], _ids("UNKNOWN", np.arange(1, UNKNOWN_IDS + 1), 5)]),
    }
    return {"entities": entity_table, "counterparties": cp_table, "securities": sec_table}, ctx


def generate_landing(root, start_date: datetime.date, days: int, entities: int, positions: int, seed: int,
                     fmt: str = "parquet", bad_row_rate: float = 0.001) -> dict:
    """Write ``days`` business dates of landing files under ``root`` and return a summary.

    positions is per business date. The summary has the dates written, rows per file per date,
    ``bad_rows_injected`` (rows deliberately broken), ``rows_to_quarantine`` (those plus the rows
    whose key a duplicate copied) per date, and the breakdown by kind.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    if entities < 1 or positions < 0 or days < 0 or not 0 <= bad_row_rate < 1:
        raise ValueError("need entities >= 1, positions >= 0, days >= 0 and 0 <= bad_row_rate < 1")
    dates = business_dates(start_date, days)
    reference, ctx = _reference_context(seed, dates[0] if dates else start_date, entities, positions)
    kinds = BAD_KINDS + (CSV_BAD_KINDS if fmt == "csv" else ())
    summary = {"root": str(root), "format": fmt, "dates": [d.isoformat() for d in dates], "rows": {},
               "bad_rows_injected": 0, "rows_to_quarantine": {}, "bad_rows_by_kind": dict.fromkeys(kinds, 0)}
    for day in dates:
        folder = Path(root) / f"business_date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        tables = dict(reference, fx_rates=make_fx_rates(seed, day), prices=make_prices(seed, day, ctx["securities"]))
        for name, table in tables.items():
            _write_table(folder / f"{name}.{fmt}", table, fmt)
        writer, quarantine = None, 0
        for chunk, first in enumerate(range(0, max(positions, 1), CHUNK_ROWS)):
            n = min(CHUNK_ROWS, positions - first)
            rng = _rng(seed, 2, day.toordinal(), chunk)
            cols = make_positions(rng, ctx, day, first, n, cover=chunk == 0)
            n_bad = round((first + n) * bad_row_rate) - round(first * bad_row_rate)
            injected, to_quarantine = inject_bad_rows(rng, cols, ctx, n_bad, kinds)
            for kind, count in injected.items():
                summary["bad_rows_by_kind"][kind] += count
            summary["bad_rows_injected"] += sum(injected.values())
            quarantine += to_quarantine
            table = positions_table(cols, ctx)
            if fmt == "csv":
                table = _with_csv_garbage(rng, table, cols["csv_garbage"])
            if writer is None:
                writer = _Writer(folder / f"positions.{fmt}", table.schema, fmt)
            writer.write(table)
        writer.close()
        summary["rows_to_quarantine"][day.isoformat()] = quarantine
        summary["rows"][day.isoformat()] = {"positions": positions, **{k: len(t) for k, t in tables.items()}}
    return summary


if __name__ == "__main__":  # python -m regcalc_assets.landing.generate ROOT START DAYS ENTITIES POSITIONS SEED [FMT]
    import sys
    import time

    a = sys.argv[1:]
    t0 = time.perf_counter()
    result = generate_landing(a[0], datetime.date.fromisoformat(a[1]), int(a[2]), int(a[3]), int(a[4]), int(a[5]),
                              *(a[6:7] or ["parquet"]))
    print({k: v for k, v in result.items() if k != "rows"}, f"{time.perf_counter() - t0:.2f}s")
