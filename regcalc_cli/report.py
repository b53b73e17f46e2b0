"""`regcalc report`: the figures of a business date from the warehouse."""

from __future__ import annotations

import csv
import io
import json

REPORT_COLUMNS = [
    "business_date", "entity_id", "reporting_currency", "hqla_l1", "hqla_l2a", "hqla_l2b", "adj15", "adj40",
    "hqla", "total_outflows", "total_inflows", "capped_inflows", "net_outflows", "lcr", "asf", "rsf", "nsfr",
    "positions_accepted", "positions_quarantined",
]


VARIANCE_COLUMNS = ["lcr_variance", "nsfr_variance"]


def fetch_report(warehouse, business_date: str, basis: str = "adjusted") -> list[dict]:
    """One row per entity: the ``adjusted`` (default) or ``base`` figures, and the variance
    adjustments cause (adjusted minus base) for LCR and NSFR."""
    if not table_exists(warehouse, "liquidity_metrics"):
        return []
    cols = ", ".join(f"m.{c}" for c in REPORT_COLUMNS)
    rows = warehouse.query(
        f"SELECT {cols}, a.lcr - b.lcr AS lcr_variance, a.nsfr - b.nsfr AS nsfr_variance "
        "FROM liquidity_metrics m "
        "JOIN liquidity_metrics a USING (business_date, entity_id) "
        "JOIN liquidity_metrics b USING (business_date, entity_id) "
        "WHERE m.business_date = CAST(? AS DATE) AND m.basis = ? AND a.basis = 'adjusted' AND b.basis = 'base' "
        "ORDER BY m.entity_id",
        [business_date, basis],
    )
    for row in rows:
        row["business_date"] = str(row["business_date"])
    return rows


def table_exists(warehouse, name: str) -> bool:
    """Whether the warehouse has the table ``name`` (any backend: information_schema)."""
    return bool(warehouse.query("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]))


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS + VARIANCE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    shown = ["business_date", "entity_id", "reporting_currency", "hqla", "total_outflows", "total_inflows",
             "net_outflows", "lcr", "asf", "rsf", "nsfr", "positions_accepted", "positions_quarantined",
             "lcr_variance", "nsfr_variance"]
    cells = [[_fmt(c, r[c]) for c in shown] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(shown)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(shown, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _fmt(column: str, value) -> str:
    if value is None:
        return "n/a"
    if column in ("lcr", "nsfr", "lcr_variance", "nsfr_variance"):
        return f"{value:.4f}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)
