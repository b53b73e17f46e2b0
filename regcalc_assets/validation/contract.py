"""The landing-zone data contract (landing-zone.md) as pandera models.

These models are the single statement of column types, nullability and allowed values. The
row-level quarantine rules of ``logic.py`` are derived from them, so that the contract is
enforced row by row (bad rows quarantined, never lost) on any engine, and the same models
validate small pandas frames directly.
"""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

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


class Positions(pa.DataFrameModel):
    """One row per position held at close of day."""

    position_id: Series[str]
    source_system: Series[str]
    entity_id: Series[str]
    counterparty_id: Series[str] = pa.Field(nullable=True)
    product: Series[str] = pa.Field(isin=list(PRODUCTS))
    currency: Series[str]
    balance: Series[float] = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": MAX_AMOUNT})
    quantity: Series[float] = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": MAX_AMOUNT})
    security_id: Series[str] = pa.Field(nullable=True)
    maturity_date: Series[pa.Date] = pa.Field(nullable=True)
    insured: Series[bool] = pa.Field(nullable=True)
    stable_relationship: Series[bool] = pa.Field(nullable=True)
    operational: Series[bool] = pa.Field(nullable=True)
    performing: Series[bool] = pa.Field(nullable=True)
    risk_weight: Series[float] = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 12.5})
    encumbered_until: Series[pa.Date] = pa.Field(nullable=True)


class Counterparties(pa.DataFrameModel):
    counterparty_id: Series[str] = pa.Field(unique=True)
    counterparty_type: Series[str] = pa.Field(isin=list(COUNTERPARTY_TYPES))
    name: Series[str] = pa.Field(nullable=True)
    country: Series[str] = pa.Field(nullable=True)


class Securities(pa.DataFrameModel):
    security_id: Series[str] = pa.Field(unique=True)
    hqla_level: Series[str] = pa.Field(isin=list(HQLA_LEVELS))
    issuer_type: Series[str] = pa.Field(nullable=True, isin=list(ISSUER_TYPES))
    maturity_date: Series[pa.Date] = pa.Field(nullable=True)


class Entities(pa.DataFrameModel):
    entity_id: Series[str] = pa.Field(unique=True)
    name: Series[str]
    reporting_currency: Series[str]
    country: Series[str] = pa.Field(nullable=True)
    parent_entity_id: Series[str] = pa.Field(nullable=True)


class FxRates(pa.DataFrameModel):
    currency: Series[str] = pa.Field(unique=True)
    usd_per_unit: Series[float] = pa.Field(gt=0)


class Prices(pa.DataFrameModel):
    security_id: Series[str] = pa.Field(unique=True)
    price: Series[float] = pa.Field(gt=0)


CONTRACT = {
    "positions": Positions,
    "counterparties": Counterparties,
    "securities": Securities,
    "entities": Entities,
    "fx_rates": FxRates,
    "prices": Prices,
}
