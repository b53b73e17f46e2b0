"""The landing-zone data contract (landing-zone.md) as plain data: the vocabulary of allowed
values, and per file each column's type, nullability, allowed values, range and uniqueness.

This is the single statement of the contract. Validation derives its row-level quarantine rules
from it (bad rows quarantined, never lost) on any engine; the landing checks take the files'
column lists from it. The functions at the end enforce it on a DataFrame of text columns, on
either engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from regcalc_core.dataframes import functions_for

ASSET_PRODUCTS = (
    "CASH", "CENTRAL_BANK_RESERVE", "SECURITY", "LOAN", "MORTGAGE", "REVERSE_REPO",
    "DEPOSIT_PLACED", "DERIVATIVE_NET_INFLOW", "OTHER_ASSET",
)
LIABILITY_PRODUCTS = (
    "DEPOSIT", "REPO", "BORROWING", "ISSUED_DEBT", "DERIVATIVE_NET_OUTFLOW", "EQUITY_CAPITAL",
    "OTHER_LIABILITY",
)
OFF_BALANCE_PRODUCTS = ("CREDIT_FACILITY", "LIQUIDITY_FACILITY")
PRODUCTS = ASSET_PRODUCTS + LIABILITY_PRODUCTS + OFF_BALANCE_PRODUCTS
# products that may come without a counterparty (every other product requires counterparty_id)
NO_COUNTERPARTY_PRODUCTS = (
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

# The largest amount the calculation represents exactly: a double carries 15 significant digits,
# and exact DECIMAL(38,10) sums of up to 10^13 such amounts cannot overflow. A delivered balance or
# quantity above it, or a position worth more than it in the entity's reporting currency, is
# quarantined at validation (balance/quantity:out_of_range, amount:out_of_range).
MAX_AMOUNT = 1e15


@dataclass(frozen=True)
class ColumnSpec:
    """One delivered column: how to parse it and which checks it carries."""

    column: str
    kind: str = "text"  # text | number | date | boolean
    nullable: bool = False
    allowed: tuple | None = None
    min_value: float | None = None
    min_inclusive: bool = True
    max_value: float | None = None
    unique: bool = False


def _amount(name: str) -> ColumnSpec:
    return ColumnSpec(name, "number", nullable=True, min_value=0, max_value=MAX_AMOUNT)


def _optional(name: str, kind: str = "text", **checks) -> ColumnSpec:
    return ColumnSpec(name, kind, nullable=True, **checks)


CONTRACT: dict[str, tuple[ColumnSpec, ...]] = {
    "positions": (  # one row per position held at close of day
        ColumnSpec("position_id"),
        ColumnSpec("source_system"),
        ColumnSpec("entity_id"),
        _optional("counterparty_id"),
        ColumnSpec("product", allowed=PRODUCTS),
        ColumnSpec("currency"),
        _amount("balance"),
        _amount("quantity"),
        _optional("security_id"),
        _optional("maturity_date", "date"),
        _optional("insured", "boolean"),
        _optional("stable_relationship", "boolean"),
        _optional("operational", "boolean"),
        _optional("performing", "boolean"),
        _optional("risk_weight", "number", min_value=0, max_value=12.5),
        _optional("encumbered_until", "date"),
    ),
    "counterparties": (
        ColumnSpec("counterparty_id", unique=True),
        ColumnSpec("counterparty_type", allowed=COUNTERPARTY_TYPES),
        _optional("name"),
        _optional("country"),
    ),
    "securities": (
        ColumnSpec("security_id", unique=True),
        ColumnSpec("hqla_level", allowed=HQLA_LEVELS),
        _optional("issuer_type", allowed=ISSUER_TYPES),
        _optional("maturity_date", "date"),
    ),
    "entities": (
        ColumnSpec("entity_id", unique=True),
        ColumnSpec("name"),
        ColumnSpec("reporting_currency"),
        _optional("country"),
        _optional("parent_entity_id"),
    ),
    "fx_rates": (
        ColumnSpec("currency", unique=True),
        ColumnSpec("usd_per_unit", "number", min_value=0, min_inclusive=False),
    ),
    "prices": (
        ColumnSpec("security_id", unique=True),
        ColumnSpec("price", "number", min_value=0, min_inclusive=False),
    ),
}


def column_names(name: str) -> list[str]:
    """The contract's columns of landing file ``name``, in order."""
    return [c.column for c in CONTRACT[name]]


# --- enforcement on a DataFrame of delivered text ------------------------------------------------

NUMBER_RE = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$"
DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
REASONS = "quarantine_reasons"


def parse_column(F, rule: ColumnSpec):
    """(typed value, 'cannot be parsed' flag) for a text column under the contract's CSV rules."""
    raw = F.col(rule.column)
    if rule.kind == "number":
        typed = F.when(raw.rlike(NUMBER_RE), F.expr(f"try_cast(`{rule.column}` as double)"))
    elif rule.kind == "date":
        typed = F.when(raw.rlike(DATE_RE), F.expr(f"try_cast(`{rule.column}` as date)"))
    elif rule.kind == "boolean":
        low = F.lower(raw)
        typed = F.when(low == F.lit("true"), F.lit(True)).when(low == F.lit("false"), F.lit(False))
    else:
        return raw, F.lit(False)
    return typed, raw.isNotNull() & typed.isNull()


def violations(F, rules: list[ColumnSpec], typed: dict) -> list:
    """(condition, reason) pairs for every column rule; conditions are null-safe booleans."""
    out = []
    for rule in rules:
        value, unparseable = typed[rule.column]
        raw = F.col(rule.column)
        if not rule.nullable:
            out.append((raw.isNull(), f"{rule.column}:missing"))
        if rule.kind != "text":
            out.append((unparseable, f"{rule.column}:unparseable"))
        if rule.allowed is not None:
            out.append((raw.isNotNull() & ~raw.isin(*rule.allowed), f"{rule.column}:unknown_value"))
        if rule.min_value is not None:
            below = value < F.lit(rule.min_value) if rule.min_inclusive else value <= F.lit(rule.min_value)
            reason = "negative" if rule.min_value == 0 and rule.min_inclusive else "out_of_range"
            out.append((value.isNotNull() & below, f"{rule.column}:{reason}"))
        if rule.max_value is not None:
            out.append((value.isNotNull() & (value > F.lit(rule.max_value)), f"{rule.column}:out_of_range"))
    return out


def reasons_column(F, checks: list):
    """';'-joined reasons of every broken rule ('' when the row is clean)."""
    return F.concat_ws(";", *[F.when(F.coalesce(cond, F.lit(False)), F.lit(reason)) for cond, reason in checks])


def valid_reference(df, name: str):
    """Typed rows of reference table ``name`` that satisfy the contract; every row of a duplicated key is invalid."""
    F, Window = functions_for(df)
    rules = CONTRACT[name]
    typed = {r.column: parse_column(F, r) for r in rules}
    key = next(r.column for r in rules if r.unique)
    checks = violations(F, rules, typed)
    checks.append((F.count(F.lit(1)).over(Window.partitionBy(key)) > F.lit(1), f"{key}:duplicate"))
    flagged = df.select(*[typed[r.column][0].alias(r.column) for r in rules], reasons_column(F, checks).alias(REASONS))
    return flagged.where(F.col(REASONS) == F.lit("")).drop(REASONS)
