"""`regcalc disclose`: a regulatory disclosure template (EU LIQ1, EU LIQ2, US LCR) of a quarter,
read from the reporting layer's ``disclosures`` table (dbt, regcalc_assets/reporting), printed
as a reporting team reads it or as CSV / JSON in long form."""

from __future__ import annotations

import csv
import io
import json
import re

import click

TEMPLATES = {
    "eu_liq1": ("EU LIQ1 - Quantitative information of LCR (Regulation (EU) 2021/637, Annex XIII)",
                {"a": "unweighted T", "b": "unweighted T-1", "c": "unweighted T-2", "d": "unweighted T-3",
                 "e": "weighted T", "f": "weighted T-1", "g": "weighted T-2", "h": "weighted T-3"}),
    "eu_liq2": ("EU LIQ2 - Net Stable Funding Ratio (Regulation (EU) 2021/637, Annex XIII)",
                {"a": "no maturity", "b": "< 6 months", "c": "6 months to < 1yr", "d": ">= 1yr", "e": "weighted"}),
    "us_lcr": ("US LCR public disclosure, Table 1 (12 CFR 249.91)",
               {"a": "average unweighted", "b": "average weighted"}),
}
CSV_COLUMNS = ["template", "entity_id", "row", "column", "value"]
QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def fetch_disclosure(warehouse, template: str, quarter: str, entities: list[str] | None = None) -> list[dict]:
    """The template's cells for the quarter (every entity, or those named), in template order."""
    from regcalc_cli.report import table_exists

    if not table_exists(warehouse, "disclosures"):
        return []
    where, params = "template = ? AND quarter = ?", [template, quarter]
    if entities:
        where += f" AND entity_id IN ({', '.join('?' for _ in entities)})"
        params += list(entities)
    rows = warehouse.query(
        "SELECT template, entity_id, quarter, row, row_order, label, column_code, value, value_text, unit, "
        f"reporting_currency, note FROM disclosures WHERE {where} ORDER BY entity_id, row_order, column_code", params)
    return rows


def quarters_available(warehouse, template: str) -> list[str]:
    from regcalc_cli.report import table_exists

    if not table_exists(warehouse, "disclosures"):
        return []
    return [r["quarter"] for r in warehouse.query(
        "SELECT DISTINCT quarter FROM disclosures WHERE template = ? ORDER BY quarter", [template])]


def _value(row: dict):
    return row["value_text"] if row["value"] is None else row["value"]


def render_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([r["template"], r["entity_id"], r["row"], r["column_code"], _value(r)])
    return out.getvalue()


def render_json(rows: list[dict]) -> str:
    return json.dumps([{"template": r["template"], "entity_id": r["entity_id"], "quarter": r["quarter"],
                        "row": r["row"], "label": r["label"], "column": r["column_code"], "value": _value(r),
                        "unit": r["unit"], "reporting_currency": r["reporting_currency"], "note": r["note"]}
                       for r in rows], indent=2)


def _cell(row: dict | None) -> str:
    if row is None:
        return ""
    if row["value"] is None:
        return row["value_text"] or ""
    if row["unit"] == "ratio":
        return f"{row['value'] * 100:.2f}%"
    if row["unit"] == "count":
        return f"{row['value']:.0f}"
    return f"{row['value']:,.2f}"


def render_table(rows: list[dict]) -> str:
    """One block per entity: the template's rows (code, label) by its columns, ratios in percent,
    and the notes of rows the spec has no concept for (or fills in its own way) underneath."""
    blocks = []
    for entity in sorted({r["entity_id"] for r in rows}):
        mine = [r for r in rows if r["entity_id"] == entity]
        template, quarter = mine[0]["template"], mine[0]["quarter"]
        title, columns = TEMPLATES[template]
        cells = {(r["row"], r["column_code"]): r for r in mine}
        order = sorted({(r["row_order"], r["row"], r["label"]) for r in mine})
        notes = {r["row"]: r["note"] for r in mine if r["note"]}
        header = ["row", "label", *(f"{c}: {name}" for c, name in columns.items())]
        lines = [[code, label if len(label) <= 60 else label[:57] + "...",
                  *(_cell(cells.get((code, c))) for c in columns)] for _, code, label in order]
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        fmt = lambda cols: "  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(cols, widths)))
        text = [f"{title}", f"entity {entity} ({mine[0]['reporting_currency']}), quarter {quarter}, adjusted figures",
                fmt(header), "  ".join("-" * w for w in widths), *(fmt(line) for line in lines)]
        if notes:
            text += ["", "notes:", *(f"  {code}: {note}" for _, code, _ in order for note in [notes.get(code)] if note)]
        blocks.append("\n".join(text))
    return "\n\n".join(blocks)


@click.command(name="disclose")
@click.option("--template", required=True, type=click.Choice(list(TEMPLATES)), help="the disclosure template")
@click.option("--quarter", required=True, help="the quarter, YYYYQn (e.g. 2024Q4)")
@click.option("--entity", "entities", multiple=True, help="legal entity (repeatable; default: every entity)")
@click.option("--format", "fmt", default="table", type=click.Choice(["table", "csv", "json"]), show_default=True)
def disclose(template, quarter, entities, fmt):
    """A disclosure template of a quarter (adjusted figures): EU LIQ1 (LCR, averages of twelve
    month-ends), EU LIQ2 (NSFR, quarter-end) or the US LCR table (daily averages). CSV and JSON
    are in long form (template, entity_id, row, column, value); ratios are decimals there."""
    import sys

    from regcalc_resources import cli_resource

    quarter = quarter.strip().upper()
    if not QUARTER.match(quarter):
        raise click.BadParameter(f"{quarter!r} is not a quarter YYYYQn (e.g. 2024Q4)", param_hint="--quarter")
    warehouse = cli_resource("warehouse")
    rows = fetch_disclosure(warehouse, template, quarter, list(entities) or None)
    if not rows:
        have = quarters_available(warehouse, template)
        known = f"quarters with results: {', '.join(have)}" if have else \
            "the reporting layer has not been built: run `regcalc eod` with REGCALC_STAR=on (the default)"
        who = f" for {', '.join(entities)}" if entities else ""
        click.echo(f"no {template} disclosure for {quarter}{who}; {known}", err=True)
        sys.exit(1)
    missing = sorted(set(entities) - {r["entity_id"] for r in rows})
    if missing:
        click.echo(f"no {template} disclosure for {quarter} of {', '.join(missing)}", err=True)
        sys.exit(1)
    click.echo({"csv": render_csv, "json": render_json, "table": render_table}[fmt](rows))
