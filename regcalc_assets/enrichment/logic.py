"""Deal enrichment: amount in reporting currency, classification and every calculation field of
liquidity-rules.md, from the versioned factor tables. DataFrame in, DataFrame out.
"""

from __future__ import annotations

from regcalc_core.conditions import sql_literal
from regcalc_core.dataframes import functions_for
from regcalc_core.factors import FactorTables, condition_sql, first_match, load_factor_tables, value_of_rule
from regcalc_core.lineage import traced

CALCULATION_FIELDS = ["amount", "hqla_level", "haircut", "outflow_rate", "inflow_rate", "asf_factor", "rsf_factor"]
RULE_COLUMNS = {  # calculation field -> column naming the factor-table row that gave it
    "haircut": "haircut_rule",
    "outflow_rate": "outflow_rule",
    "inflow_rate": "inflow_rule",
    "asf_factor": "asf_rule",
    "rsf_factor": "rsf_rule",
}
COUNTERPARTY_CLASSES = {
    "FI": ["BANK", "OTHER_FINANCIAL"],
    "PUBLIC": ["NON_FINANCIAL_CORPORATE", "SOVEREIGN", "CENTRAL_BANK", "PSE", "MDB"],
    "RETAIL_SME": ["RETAIL", "SMALL_BUSINESS"],
    "OTHER": ["OTHER"],
}


def _residual_days(F, date_col):
    """r of liquidity-rules.md: days from the business date, negative counted as 0, null stays null."""
    return F.when(date_col.isNotNull(), F.greatest(F.datediff(date_col, F.col("business_date")), F.lit(0)))


def _band(F, days, edges: list[tuple[int, str]], last: str):
    expr = F.when(days.isNull(), F.lit("OPEN"))
    for bound, label in edges:
        expr = expr.when(days < F.lit(bound), F.lit(label))
    return expr.otherwise(F.lit(last))


def classify(positions):
    """Add the derived columns the factor tables test (maturity bands, counterparty class, flags)."""
    F, _ = functions_for(positions)
    r = F.col("days_to_maturity")
    sec_r = F.col("security_days_to_maturity")
    cls = None
    for name, types in COUNTERPARTY_CLASSES.items():
        cond = F.col("counterparty_type").isin(*types)
        cls = F.when(cond, F.lit(name)) if cls is None else cls.when(cond, F.lit(name))
    encumbered = F.col("encumbered_until").isNotNull() & (F.col("encumbered_until") >= F.col("business_date"))
    days = positions.withColumns(
        {
            "days_to_maturity": _residual_days(F, F.col("maturity_date")),
            "security_days_to_maturity": _residual_days(F, F.col("security_maturity_date")),
            "encumbered": encumbered,
            "encumbrance_days": F.when(encumbered, F.datediff(F.col("encumbered_until"), F.col("business_date"))),
        }
    )
    return days.withColumns(
        {
            "maturity_30d": _band(F, r, [(31, "WITHIN")], "BEYOND"),
            "security_maturity_30d": _band(F, sec_r, [(31, "WITHIN")], "BEYOND"),
            "maturity_1y": _band(F, r, [(365, "LT_1Y")], "GE_1Y"),
            "security_maturity_1y": _band(F, sec_r, [(365, "LT_1Y")], "GE_1Y"),
            "nsfr_bucket": _band(F, r, [(183, "<6m"), (365, "6m-1y")], ">=1y"),
            "counterparty_class": cls,
            "collateral_level": F.when(
                F.col("product").isin("REPO", "REVERSE_REPO"), F.coalesce(F.col("security_hqla_level"), F.lit("NON_HQLA"))
            ),
            "stable": F.coalesce(F.col("insured"), F.lit(False)) & F.coalesce(F.col("stable_relationship"), F.lit(False)),
            "amount": _amount(F),
        }
    )


def _amount(F):
    native = F.when(F.col("product") == F.lit("SECURITY"), F.col("quantity") * F.col("price")).otherwise(F.col("balance"))
    return native * F.col("fx_rate") / F.col("reporting_fx_rate")


@traced("enrichment")
def enrich_positions(positions, tables: FactorTables | None = None):
    """Accepted positions -> one row per position with amount and every calculation field.

    Implements liquidity-rules.md: HQLA eligibility and haircuts, LCR outflow and inflow rates,
    NSFR ASF and RSF factors (with the non-performing and encumbrance rules). Each field also
    carries the id of the factor-table row that gave it (``*_rule``), for explanations.
    """
    tables = tables or load_factor_tables()
    F, _ = functions_for(positions)
    t = tables.tables
    df = classify(positions)
    df = df.withColumn("hqla_level", first_match(F, t["hqla_level"], lambda row: sql_literal(row.value)))
    # the first matching row's id, then its value by id: each table's conditions are evaluated once
    df = df.withColumns(
        {RULE_COLUMNS[f]: first_match(F, t[f], lambda row: sql_literal(row.id)) for f in RULE_COLUMNS}
    )
    df = df.withColumns({f: value_of_rule(F, t[f], RULE_COLUMNS[f]) for f in RULE_COLUMNS})
    base_rsf, base_rule = F.col("rsf_factor"), F.col("rsf_rule")
    non_performing = base_rule == F.lit(t["rsf_factor"][0].id)
    rsf, rule = base_rsf, base_rule
    for row in reversed(t.get("rsf_encumbrance", ())):
        applies = F.expr(condition_sql(row.when)) & base_rsf.isNotNull() & ~F.coalesce(non_performing, F.lit(False))
        value = F.lit(float(row.value))
        new = value if row.op == "set" else F.greatest(base_rsf, value)
        rsf = F.when(applies, new).otherwise(rsf)
        rule = F.when(applies, F.concat(base_rule, F.lit("+"), F.lit(row.id))).otherwise(rule)
    df = df.withColumns({"rsf_factor": rsf, "rsf_rule": rule})
    return df.withColumn("factor_regime", F.lit(tables.label)).drop(
        "maturity_30d", "security_maturity_30d", "maturity_1y", "security_maturity_1y", "collateral_level",
        "stable", "encumbered", "encumbrance_days", "security_days_to_maturity",
    )
