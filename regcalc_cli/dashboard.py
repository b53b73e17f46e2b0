"""`regcalc dashboard`: one self-contained HTML page over a range of business dates.

The command only reads options and writes the file: the figures are gathered by
``regcalc_cli.dashboard_data`` (from the warehouse as ``regcalc report`` reads it, the stage
store and the Dagster instance) and the page is drawn by ``regcalc_cli.dashboard_html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command(name="dashboard")
@click.option("--from", "start", required=True, help="first business date (YYYY-MM-DD)")
@click.option("--to", "end", required=True, help="last business date (YYYY-MM-DD)")
@click.option("--out", required=True, type=click.Path(dir_okay=False, writable=True), help="HTML file to write")
@click.option("--entity", "entities", multiple=True, help="only these entities (repeatable; default all)")
def dashboard(start, end, out, entities):
    """Write one self-contained HTML page: LCR and NSFR per entity over time, a waterfall from
    base to adjusted LCR (one bar per rule), an entity's components on the last date, the
    validation pass rate, lineage coverage, and the runs' time, throughput and cache hit rate."""
    from regcalc_cli.dashboard_data import NoFiguresError, gather
    from regcalc_cli.dashboard_html import render
    from regcalc_cli.main import _date
    from regcalc_core.identifiers import check_identifier

    start, end = _date(start), _date(end)
    if start > end:
        raise click.BadParameter(f"--from {start} is after --to {end}")
    for entity in entities:
        check_identifier(entity, "--entity")
    try:
        board = gather(*_sources(), start, end, list(entities) or None)
    except NoFiguresError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(board), encoding="utf-8")
    click.echo(f"wrote {path}: {len(board.dates)} business date(s) from {board.dates[0]} to {board.dates[-1]}, "
               f"{len(board.entities)} entities, {len(board.runs)} run(s)")


def _sources():
    """(warehouse, stage store, engine, Dagster instance) of this home. The waterfall's few rows
    run on an embedded DuckDB session whatever REGCALC_ENGINE says (no JVM for a page). A home
    whose instance cannot be opened (read-only) still gives the figures: the runs are left out."""
    from regcalc_cli.instance import UnwritableHomeError, get_instance
    from regcalc_resources import cli_resource
    from regcalc_resources.engine import DuckDBEngine

    try:
        instance = get_instance()
    except UnwritableHomeError as exc:
        click.echo(f"warning: no runs on the page: {exc}", err=True)
        instance = None
    return cli_resource("warehouse"), cli_resource("stages"), DuckDBEngine(), instance
