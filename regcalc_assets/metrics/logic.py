"""Final metrics: HQLA caps, inflow cap, LCR and NSFR from the components (liquidity-rules.md)."""

from __future__ import annotations

from regcalc_core.compiler import TRAIL, apply_to_adjusted_basis
from regcalc_core.dataframes import functions_for

TOTALS = {  # output column -> component
    "hqla_l1": "HQLA_L1",
    "hqla_l2a": "HQLA_L2A",
    "hqla_l2b_rmbs": "HQLA_L2B_RMBS",
    "hqla_l2b_other": "HQLA_L2B_OTHER",
    "total_outflows": "OUTFLOWS",
    "total_inflows": "INFLOWS",
    "asf": "ASF",
    "rsf": "RSF",
}
METRIC_COLUMNS = [
    "business_date", "entity_id", "reporting_currency", "hqla_l1", "hqla_l2a", "hqla_l2b", "adj15",
    "adj40", "hqla", "total_outflows", "total_inflows", "capped_inflows", "net_outflows", "lcr",
    "asf", "rsf", "nsfr",
]


def _keys(df) -> list[str]:
    """Row keys of a metrics frame: (business_date, entity_id, reporting_currency[, basis])."""
    return ["business_date", "entity_id", "reporting_currency"] + (["basis"] if "basis" in df.columns else [])


def pivot_components(components):
    """One row per entity (and basis) with one column per component."""
    F, _ = functions_for(components)
    sums = [
        F.sum(F.when(F.col("component") == F.lit(comp), F.col("amount")).otherwise(F.lit(0.0))).alias(col)
        for col, comp in TOTALS.items()
    ]
    return components.groupBy(*_keys(components)).agg(*sums)


def hqla_stock(totals):
    """Post-haircut levels, the 15% and 40% caps, and the HQLA stock (one projection)."""
    F, _ = functions_for(totals)
    l1, l2a = F.col("hqla_l1"), F.col("hqla_l2a")
    l2b = F.col("hqla_l2b_rmbs") + F.col("hqla_l2b_other")
    adj15 = F.greatest(l2b - F.lit(15.0 / 85.0) * (l1 + l2a), l2b - F.lit(15.0 / 60.0) * l1, F.lit(0.0))
    adj40 = F.greatest(l2a + l2b - adj15 - F.lit(2.0 / 3.0) * l1, F.lit(0.0))
    return totals.withColumns({"hqla_l2b": l2b, "adj15": adj15, "adj40": adj40,
                               "hqla": l1 + l2a + l2b - adj15 - adj40})


def ratios(totals):
    """Inflow cap (75% of outflows), net outflows, LCR and NSFR (null on a zero denominator)."""
    F, _ = functions_for(totals)
    out, inflows = F.col("total_outflows"), F.col("total_inflows")
    capped = F.least(inflows, F.lit(0.75) * out)
    net = out - capped
    return totals.withColumns({
        "capped_inflows": capped,
        "net_outflows": net,
        "lcr": F.when(net != F.lit(0.0), F.col("hqla") / net),
        "nsfr": F.when(F.col("rsf") != F.lit(0.0), F.col("asf") / F.col("rsf")),
    })


def compute_final_metrics(components, final_rules=(), match_columns: dict[str, str] | None = None):
    """Components -> one row per (business_date, entity_id[, basis]) with every figure of the LCR
    and NSFR. Final-stage rules (adjusted basis only) change hqla and the totals after the HQLA
    caps and before the inflow cap and the ratios (liquidity-rules.md, 'Adjusted figures')."""
    totals = hqla_stock(pivot_components(components))
    if "basis" in totals.columns or final_rules:
        totals = apply_to_adjusted_basis(totals, list(final_rules), "final_calc", match_columns)
    keys = _keys(components)
    return ratios(totals).select(*METRIC_COLUMNS, *keys[3:], *([TRAIL] if TRAIL in totals.columns else []),
                                 *(match_columns or {}).values())


def with_position_counts(metrics, accepted, quarantined):
    """Attach positions_accepted / positions_quarantined per entity (0 where none)."""
    F, _ = functions_for(metrics)
    acc = accepted.groupBy("business_date", "entity_id").agg(F.count(F.lit(1)).alias("positions_accepted"))
    qua = quarantined.groupBy("business_date", "entity_id").agg(F.count(F.lit(1)).alias("positions_quarantined"))
    return (
        metrics.join(acc, on=["business_date", "entity_id"], how="left")
        .join(qua, on=["business_date", "entity_id"], how="left")
        .select(
            *METRIC_COLUMNS, *_keys(metrics)[3:], *([TRAIL] if TRAIL in metrics.columns else []),
            F.coalesce(F.col("positions_accepted"), F.lit(0)).cast("bigint").alias("positions_accepted"),
            F.coalesce(F.col("positions_quarantined"), F.lit(0)).cast("bigint").alias("positions_quarantined"),
        )
    )


PARTITION_FIGURES = ("lcr", "nsfr", "hqla", "net_outflows", "asf", "rsf")  # numeric metadata per partition


def partition_figures(rows: list[dict]) -> dict[str, dict[str, float | int]]:
    """{entity_id: numeric figures} for one business date's metrics rows (both bases): the
    adjusted figures under their own names (``lcr``, ``nsfr``, ``hqla`` ...), the base ones as
    ``<name>_base``, the adjusted-minus-base ``lcr_variance`` / ``nsfr_variance``, and the
    position counts. A figure that is null (a zero denominator) is left out, not plotted as 0."""
    by_entity: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_entity.setdefault(row["entity_id"], {})[row.get("basis", "adjusted")] = row
    out = {}
    for entity, bases in sorted(by_entity.items()):
        adjusted, base = bases.get("adjusted"), bases.get("base")
        figures: dict[str, float | int] = {}
        for name in PARTITION_FIGURES:
            for suffix, row in (("", adjusted), ("_base", base)):
                if row is not None and row.get(name) is not None:
                    figures[name + suffix] = float(row[name])
        for ratio in ("lcr", "nsfr"):
            if ratio in figures and f"{ratio}_base" in figures:
                figures[f"{ratio}_variance"] = figures[ratio] - figures[f"{ratio}_base"]
        counts = adjusted or base or {}
        for name in ("positions_accepted", "positions_quarantined"):
            if counts.get(name) is not None:
                figures[name] = int(counts[name])
        out[entity] = figures
    return out


def figures_table(rows: list[dict]) -> str:
    """Markdown table of the headline figures, for run metadata and the command line."""
    def fmt(v, ratio=False):
        return "n/a" if v is None else (f"{v:.4f}" if ratio else f"{v:,.2f}")

    lines = ["| entity | ccy | HQLA | net outflows | LCR | ASF | RSF | NSFR |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: r["entity_id"]):
        lines.append(
            f"| {r['entity_id']} | {r['reporting_currency']} | {fmt(r['hqla'])} | {fmt(r['net_outflows'])} | "
            f"{fmt(r['lcr'], True)} | {fmt(r['asf'])} | {fmt(r['rsf'])} | {fmt(r['nsfr'], True)} |"
        )
    return "\n".join(lines)


def rule_changes(adjusted_positions, components, metrics):
    """One row per (entity_id, stage, rule_id, version) with ``changes``: how many values that rule
    version changed (clamps included) at that stage, from the three stages' trails, exactly as the
    ``adjustment_trail`` asset records them."""
    from regcalc_assets.adjustments.logic import adjustment_trail

    F, _ = functions_for(metrics)
    return (adjustment_trail(adjusted_positions, components, metrics)
            .groupBy("entity_id", "stage", "rule_id", "version").agg(F.count(F.lit(1)).alias("changes")))
