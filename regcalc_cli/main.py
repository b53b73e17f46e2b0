"""The `regcalc` command line: generate a landing zone, run the EOD batch, report, demo."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import click


def _landing(landing: str | None) -> str:
    root = landing or os.environ.get("REGCALC_LANDING")
    if not root:
        raise click.UsageError("no landing zone: pass --landing DIR or set REGCALC_LANDING")
    if Path(root).exists() and not Path(root).is_dir():
        raise click.UsageError(f"landing zone {root} is a file, not a directory of business_date=YYYY-MM-DD folders")
    if not Path(root).is_dir():
        raise click.UsageError(f"landing zone {root} does not exist")
    return str(Path(root).resolve())


def _date(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from exc


def _business_date(value: str) -> str:
    """A date that is a partition of the pipeline: from the first business date to tomorrow."""
    from regcalc_assets.partitions import FIRST_BUSINESS_DATE

    date = _date(value)
    last = dt.date.today() + dt.timedelta(days=1)
    if not FIRST_BUSINESS_DATE <= date <= last.isoformat():
        raise click.BadParameter(f"{date} is outside the business dates the pipeline covers "
                                 f"({FIRST_BUSINESS_DATE} to tomorrow, {last})")
    return date


def _warn_about_delivery(landing: str, business_date: str) -> None:
    """Refuse an unreadable delivery before any run starts; warn once about columns and
    entities that will be ignored or quarantined."""
    from regcalc_core.delivery import check_delivery, ignored_columns_warning, invalid_entities
    from regcalc_core.identifiers import INVALID_IDENTIFIER, describe

    warning = ignored_columns_warning(check_delivery(landing, business_date))
    if warning:
        click.echo(f"warning: {warning}", err=True)
    invalid = invalid_entities(landing, business_date)
    if invalid:
        click.echo(f"warning: {len(invalid)} entity_id(s) of the entities file are not valid identifiers "
                   f"({', '.join(describe(e) for e in invalid[:5])}): their positions are quarantined as "
                   f"entity_id:{INVALID_IDENTIFIER} (see README, Identifiers)", err=True)


class RegcalcGroup(click.Group):
    """Every command's errors as one line: a RegcalcInputError (bad input, arguments or
    environment) exits with code 2, anything else with 1; ``regcalc --debug`` shows the trace."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001 - one line for the user, the trace with --debug
            if ctx.params.get("debug") or os.environ.get("REGCALC_DEBUG"):
                raise
            from regcalc_core.errors import RegcalcInputError, first_line

            click.echo(f"error: {first_line(exc)}", err=True)
            if not isinstance(exc, RegcalcInputError):
                click.echo("(unexpected error: run `regcalc --debug ...` for the trace)", err=True)
            sys.exit(2 if isinstance(exc, RegcalcInputError) else 1)


@click.group(cls=RegcalcGroup)
@click.option("--debug", is_flag=True, help="show the full trace of an error")
def cli(debug):
    """regcalc: LCR and NSFR per legal entity and business date, on Dagster."""


@cli.command()
@click.option("--landing", required=True, type=click.Path(file_okay=False), help="landing root to write")
@click.option("--start-date", required=True, help="first business date (YYYY-MM-DD)")
@click.option("--days", default=1, show_default=True, type=int, help="business dates (weekdays) to write")
@click.option("--entities", default=4, show_default=True, type=int)
@click.option("--positions", default=10_000, show_default=True, type=int, help="positions per business date")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--format", "fmt", default="parquet", type=click.Choice(["parquet", "csv"]), show_default=True)
@click.option("--bad-row-rate", default=0.001, show_default=True, type=float, help="share of contract-breaking rows")
def generate(landing, start_date, days, entities, positions, seed, fmt, bad_row_rate):
    """Write a realistic sample landing zone."""
    from regcalc_assets.landing.generate import generate_landing

    summary = generate_landing(landing, dt.date.fromisoformat(_date(start_date)), days, entities, positions, seed,
                               fmt=fmt, bad_row_rate=bad_row_rate)
    dates = summary.get("dates", [])
    click.echo(f"wrote {len(dates)} business date(s) to {landing}: {', '.join(map(str, dates))}")


@cli.command()
@click.option("--date", "business_date", required=True, help="business date (YYYY-MM-DD)")
@click.option("--landing", default=None, help="landing root (default $REGCALC_LANDING)")
@click.option("--entity", "entities", multiple=True, help="only these entities (repeatable)")
@click.option("--rules-as-of", default=None,
              help="apply the rules as approved at this moment (ISO timestamp; an offset is converted to UTC, none means UTC)")
def eod(business_date, landing, entities, rules_as_of):
    """Materialize every stage for one business date (all entities unless named)."""
    from regcalc_cli.eod import run_eod
    from regcalc_cli.instance import get_instance
    from regcalc_core.timestamps import format_utc, parse_utc

    from regcalc_core.identifiers import check_identifier

    business_date = _business_date(business_date)
    if rules_as_of:  # checked before any stage work; the runs get the canonical UTC text
        rules_as_of = format_utc(parse_utc(rules_as_of, "--rules-as-of"))
    landing = _landing(landing)
    for entity in entities:
        check_identifier(entity, "--entity")
    _warn_about_delivery(landing, business_date)
    result = run_eod(get_instance(), business_date, landing, list(entities) or None, rules_as_of)
    status = "FAILED" if not result.success else f"ok, {len(result.held)} held back" if result.held else "ok"
    click.echo(
        f"eod {business_date}: {status} - {len(result.entities)} entities in {len(result.run_ids)} run(s), "
        f"{result.seconds:.1f}s (runs: {', '.join(result.run_ids)}); "
        f"{result.unassigned} position(s) with a null or unknown entity_id quarantined"
    )
    for entity, why in sorted(result.held.items()):
        click.echo(f"held back: {entity}, {why}")
    if not result.success:
        click.echo(f"error: {result.error}", err=True)
        sys.exit(2 if result.input_error else 1)
    if result.held:  # the others are published; a scheduler must still see that these are not
        click.echo(f"{len(result.held)} entit{'y is' if len(result.held) == 1 else 'ies are'} held back by the circuit "
                   "breaker (exit code 3)", err=True)
        sys.exit(3)


@cli.command()
@click.option("--date", "dates", multiple=True, help="only these business dates (repeatable; default: all)")
@click.option("--landing", default=None, help="landing root (default $REGCALC_LANDING)")
@click.option("--format", "fmt", default="table", type=click.Choice(["table", "json"]), show_default=True)
def recalc(dates, landing, fmt):
    """Observe the rules and the landing zone, then recompute exactly what is stale."""
    import json
    from dataclasses import asdict

    from regcalc_core.delivery import date_folders
    from regcalc_cli.instance import get_instance
    from regcalc_cli.recalc import render, run_recalc

    landing = _landing(landing)
    for folder in date_folders(landing)[1]:
        click.echo(f"warning: skipped {Path(landing) / folder}: not a valid business date folder", err=True)
    result = run_recalc(get_instance(), landing, [_date(d) for d in dates] or None)
    if fmt == "json":
        click.echo(json.dumps({**asdict(result), "hit_rate": result.hit_rate}, indent=2))
    else:
        click.echo(render(result))
    if not result.success:
        click.echo(f"error: {result.error}", err=True)
        sys.exit(2 if result.input_error else 1)
    if result.held:  # as for `eod`: published what passed, held these back
        sys.exit(3)


@cli.command()
@click.option("--date", "business_date", required=True)
@click.option("--format", "fmt", default="table", type=click.Choice(["table", "csv", "json"]), show_default=True)
@click.option("--base", is_flag=True, help="the unadjusted figures (default: adjusted)")
def report(business_date, fmt, base):
    """One row per entity: HQLA, outflows, inflows, LCR, ASF, RSF, NSFR, position counts, and the
    LCR / NSFR variance that adjustments cause."""
    from regcalc_cli.report import fetch_report, render
    from regcalc_resources import cli_resource

    rows = fetch_report(cli_resource("warehouse"), _date(business_date), "base" if base else "adjusted")
    if not rows:
        click.echo(f"no figures for {business_date}: run `regcalc eod --date {business_date}` first", err=True)
        sys.exit(1)
    click.echo(render(rows, fmt))


@cli.command()
@click.option("--date", "business_date", required=True, help="business date (YYYY-MM-DD)")
@click.option("--entity", required=True, help="legal entity")
@click.option("--metric", type=click.Choice(["lcr", "nsfr"]), default=None, help="one ratio (default: both)")
@click.option("--component", default=None, help="one component, e.g. OUTFLOWS")
@click.option("--position", default=None, help="one position: POSITION_ID or SOURCE_SYSTEM/POSITION_ID")
@click.option("--base", is_flag=True, help="the unadjusted figures (default: adjusted)")
@click.option("--top", default=5, show_default=True, type=int, help="largest contributing positions per component")
@click.option("--format", "fmt", default="text", type=click.Choice(["text", "json"]), show_default=True)
def explain(business_date, entity, metric, component, position, base, top, fmt):
    """Drill down from a ratio to its components, their largest positions, the factor-table and
    liquidity-rules.md rows behind each factor, and the adjustments that changed them."""
    from regcalc_cli.explain import ExplainError, explain as build, render, to_json
    from regcalc_resources import cli_resource

    try:
        result = build(cli_resource("warehouse"), cli_resource("stages"), cli_resource("engine"), _date(business_date), entity, metric, component,
                       position, "base" if base else "adjusted", top)
    except ExplainError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(to_json(result) if fmt == "json" else render(result))


@cli.command()
@click.option("--landing", default=None, help="where to write the sample landing zone (default $REGCALC_HOME/demo-landing)")
@click.option("--start-date", default="2024-06-24", show_default=True)
@click.option("--days", default=3, show_default=True, type=int)
@click.option("--entities", default=5, show_default=True, type=int)
@click.option("--positions", default=50_000, show_default=True, type=int)
def demo(landing, start_date, days, entities, positions):
    """Generate a sample landing zone, run the EOD batch for each date, print LCR and NSFR."""
    from regcalc_assets.landing.generate import generate_landing
    from regcalc_core.delivery import available_dates
    from regcalc_cli.eod import run_eod
    from regcalc_cli.instance import get_instance
    from regcalc_cli.report import fetch_report, render
    from regcalc_resources import cli_resource
    from regcalc_resources.settings import regcalc_home

    root = Path(landing or regcalc_home() / "demo-landing").resolve()
    generate_landing(root, dt.date.fromisoformat(_date(start_date)), days, entities, positions, seed=7)
    instance = get_instance()
    warehouse = cli_resource("warehouse")
    for business_date in available_dates(str(root)):
        result = run_eod(instance, business_date, str(root))
        click.echo(f"\n== {business_date}: {'ok' if result.success else 'FAILED'} in {result.seconds:.1f}s ==")
        if not result.success:
            click.echo(f"error: {result.error}", err=True)
            sys.exit(1)
        click.echo(render(fetch_report(warehouse, business_date), "table"))
    click.echo(f"\nstate: {regcalc_home()} - browse it with `make ui` (dagster dev)")


def _register_subcommands():
    from regcalc_cli.dashboard import dashboard
    from regcalc_cli.disclose import disclose
    from regcalc_cli.rules import rules
    from regcalc_cli.star import star

    cli.add_command(dashboard)
    cli.add_command(disclose)
    cli.add_command(rules)
    cli.add_command(star)


_register_subcommands()

if __name__ == "__main__":
    cli()
