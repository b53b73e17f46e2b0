"""Row-level contract enforcement: parse text columns, name every broken rule, never drop a row.

The column rules (type, nullability, allowed values, ranges) are derived from the pandera models
of ``contract.py``; the cross-column and cross-table rules of landing-zone.md ("Bad input") are
added here. Every function is DataFrame in, DataFrame out, on either engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from regcalc_assets.lineage.wrapper import SOURCE_KEY, traced
from regcalc_assets.sparkapi import functions_for
from regcalc_assets.validation import contract

NUMBER_RE = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$"
DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
REASONS = "quarantine_reasons"


@dataclass(frozen=True)
class ColumnRule:
    """One column of a contract model: how to parse it and which checks it carries."""

    column: str
    kind: str  # text | number | date | boolean
    nullable: bool
    allowed: tuple | None = None
    min_value: float | None = None
    min_inclusive: bool = True
    max_value: float | None = None
    unique: bool = False


def column_rules(model) -> list[ColumnRule]:
    """Translate a pandera DataFrameModel into parse-and-check rules."""
    rules = []
    for name, col in model.to_schema().columns.items():
        dtype = str(col.dtype).lower()
        kind = "number" if "float" in dtype else "date" if dtype == "date" else "boolean" if "bool" in dtype else "text"
        allowed, lo, lo_inc, hi = None, None, True, None
        for check in col.checks:
            stats = check.statistics or {}
            if check.name == "isin":
                allowed = tuple(stats["allowed_values"])
            elif check.name == "greater_than_or_equal_to":
                lo = stats["min_value"]
            elif check.name == "greater_than":
                lo, lo_inc = stats["min_value"], False
            elif check.name == "in_range":
                lo, hi = stats["min_value"], stats["max_value"]
        rules.append(ColumnRule(name, kind, bool(col.nullable), allowed, lo, lo_inc, hi, bool(col.unique)))
    return rules


def parse_column(F, rule: ColumnRule):
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


def violations(F, rules: list[ColumnRule], typed: dict) -> list:
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


def valid_reference(df, model):
    """Typed rows of a reference table that satisfy the contract; every row of a duplicated key is invalid."""
    F, Window = functions_for(df)
    rules = column_rules(model)
    typed = {r.column: parse_column(F, r) for r in rules}
    key = next(r.column for r in rules if r.unique)
    checks = violations(F, rules, typed)
    checks.append((F.count(F.lit(1)).over(Window.partitionBy(key)) > F.lit(1), f"{key}:duplicate"))
    flagged = df.select(*[typed[r.column][0].alias(r.column) for r in rules], reasons_column(F, checks).alias(REASONS))
    return flagged.where(F.col(REASONS) == F.lit("")).drop(REASONS)


# Typed columns of an accepted position, in order (the enrichment stage's input contract).
POSITION_COLUMNS = [
    "business_date", "entity_id", "position_id", "source_system", "counterparty_id", "product",
    "currency", "balance", "quantity", "security_id", "maturity_date", "insured",
    "stable_relationship", "operational", "performing", "risk_weight", "encumbered_until",
    "counterparty_type", "security_hqla_level", "issuer_type", "security_maturity_date", "price",
    "fx_rate", "reporting_currency", "reporting_fx_rate", "source_file", "source_row",
]

def position_checks(F, typed: dict) -> list:
    """Every rule of landing-zone.md a position can break, as (condition, reason)."""
    rules = column_rules(contract.Positions)
    checks = violations(F, rules, typed)
    product = F.col("product")
    needs_cpty = ~product.isin(*contract.NO_COUNTERPARTY_PRODUCTS)
    security = product == F.lit("SECURITY")
    checks += [
        (F.col("key_occurrences") > F.lit(1), "position_key:duplicate"),
        (needs_cpty & F.col("counterparty_id").isNull(), "counterparty_id:missing"),
        (F.col("counterparty_id").isNotNull() & ~F.col("counterparty_found"), "counterparty_id:unknown_reference"),
        (F.col("security_id").isNotNull() & ~F.col("security_found"), "security_id:unknown_reference"),
        (security & F.col("security_id").isNull(), "security_id:missing"),
        (security & F.col("quantity").isNull(), "quantity:missing"),
        (~security & product.isNotNull() & F.col("balance").isNull(), "balance:missing"),
        (security & F.col("security_id").isNotNull() & F.col("security_found") & ~F.col("price_found"), "security_id:missing_price"),
        (F.col("currency").isNotNull() & F.col("fx_rate").isNull(), "currency:missing_fx_rate"),
        (F.col("reporting_currency").isNull(), "entity_id:unknown_reference"),
        (F.col("reporting_currency").isNotNull() & F.col("reporting_fx_rate").isNull(), "reporting_currency:missing_fx_rate"),
        (reporting_amount(F, typed, security) > F.lit(contract.MAX_AMOUNT), "amount:out_of_range"),
    ]
    return checks


def reporting_amount(F, typed: dict, security):
    """The position's worth in the reporting currency, as validation sees it (null when a part is
    missing): quantity x price for a SECURITY, else the balance, times fx / reporting fx."""
    price, fx, reporting = (F.expr(f"try_cast({c} as double)") for c in ("price", "fx_rate", "reporting_fx_rate"))
    value = F.when(security, typed["quantity"][0] * price).otherwise(typed["balance"][0])
    return F.abs(value * fx / reporting)


def flag_positions(landed):
    """Landed positions (text) with their typed values and ``quarantine_reasons``."""
    F, _ = functions_for(landed)
    rules = column_rules(contract.Positions)
    typed = {r.column: parse_column(F, r) for r in rules}
    reasons = reasons_column(F, position_checks(F, typed))
    return landed.withColumn(REASONS, reasons), typed


@traced("validation", keys=SOURCE_KEY)
def accepted_positions(flagged, typed):
    """Rows that break no rule, typed per the enrichment input contract."""
    F, _ = functions_for(flagged)
    exprs = []
    for name in POSITION_COLUMNS:
        exprs.append(typed[name][0].alias(name) if name in typed else F.col(name))
    return flagged.where(F.col(REASONS) == F.lit("")).select(*exprs)


@traced("validation", keys=SOURCE_KEY)
def quarantined_positions(flagged):
    """Rows that break at least one rule, as delivered (text), with every rule they broke."""
    F, _ = functions_for(flagged)
    first = F.split(F.col(REASONS), ";").getItem(0)
    return flagged.where(F.col(REASONS) != F.lit("")).select(
        "business_date", "entity_id", "position_id", "source_system", "product", "currency",
        "balance", "quantity", "counterparty_id", "security_id", "maturity_date", "insured",
        "stable_relationship", "operational", "performing", "risk_weight", "encumbered_until",
        "source_file", "source_row", first.alias("quarantine_rule"), F.col(REASONS),
    )
