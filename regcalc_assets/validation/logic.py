"""Row-level contract enforcement: parse text columns, name every broken rule, never drop a row.

The column rules (type, nullability, allowed values, ranges) are the contract's column specs,
enforced by ``regcalc_core.contract``; the cross-column and cross-table rules of landing-zone.md
("Bad input") are added here. Every function is DataFrame in, DataFrame out, on either engine.
"""

from __future__ import annotations

from regcalc_assets.landing.logic import locate_name
from regcalc_core import contract
from regcalc_core.contract import CONTRACT, REASONS, parse_column, reasons_column, violations
from regcalc_core.dataframes import functions_for
from regcalc_core.identifiers import IDENTIFIER_PATTERN, INVALID_IDENTIFIER
from regcalc_core.lineage import SOURCE_KEY, traced

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
    rules = CONTRACT["positions"]
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
    rules = CONTRACT["positions"]
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


def unassigned_positions(frames: dict, business_date: str, entity_ids: list[str]):
    """Delivered positions of no entity partition: entity_id null (``entity_id:missing``), not a
    valid identifier (``entity_id:invalid_identifier``) or not among ``entity_ids``, the date's
    delivered entities (``entity_id:unknown_reference``). Quarantined, counted for the date, in no
    entity's figures (landing-zone.md, 'Bad input'; README, 'Identifiers')."""
    positions = frames["positions"]
    F, _ = functions_for(positions)
    entity = F.col("entity_id")
    # the rule of regcalc_core.identifiers.is_valid_identifier, as a column (Java's `$` also
    # matches before a final line break, so a line break is excluded explicitly)
    valid = entity.rlike(IDENTIFIER_PATTERN) & ~entity.contains("..") & ~entity.contains("\n")
    known = entity.isin(*entity_ids) if entity_ids else F.lit(False)
    rule = (F.when(entity.isNull(), F.lit("entity_id:missing"))
            .when(~valid, F.lit(f"entity_id:{INVALID_IDENTIFIER}"))
            .otherwise(F.lit("entity_id:unknown_reference")))
    return positions.where(entity.isNull() | ~known).select(
        F.lit(business_date).cast("date").alias("business_date"),
        *[c for c in positions.columns if c not in ("business_date",)],
        F.lit(locate_name(frames, "positions")).alias("source_file"),
        rule.alias("quarantine_rule"),
    )


def reconcile_date(delivered: int, unassigned: int, entity_ids: list[str],
                   stored: dict[str, dict[str, int | None]]) -> tuple[bool, str]:
    """(passed, a markdown summary) of the date-level reconciliation: the positions delivered
    equal the unassigned ones plus, over every delivered entity, the accepted and quarantined
    rows stored for it; an entity with no stored partition fails it by name."""
    missing = sorted({e for rows in stored.values() for e, n in rows.items() if n is None})
    counted = unassigned + sum(n or 0 for rows in stored.values() for n in rows.values())
    lines = ["| entity | accepted | quarantined |", "|---|---:|---:|"]
    accepted, quarantined = stored.get("validated_positions", {}), stored.get("quarantined_positions", {})
    lines += [f"| {e} | {accepted.get(e)} | {quarantined.get(e)} |" for e in entity_ids]
    lines += [f"| (no entity) | | {unassigned} |", f"| **delivered** | {delivered} | counted {counted} |"]
    problems = []
    if missing:
        problems.append(f"no stored partition for entity {', '.join(missing)}")
    if counted != delivered:
        problems.append(f"{delivered} position(s) delivered but {counted} accounted for")
    return not problems, "\n".join(problems + [""] + lines)
