"""`regcalc rules ...`: submit, approve, retire, list and history of adjustment rules."""

from __future__ import annotations

import json

import click

from regcalc_core.errors import RegcalcInputError
from regcalc_core.rule_files import load_rule_file, naming_file
from regcalc_core.timestamps import parse_utc


def _store():
    from regcalc_resources import build_rule_store, resolved

    return resolved(build_rule_store())


@click.group()
def rules():
    """Governed adjustment rules (four eyes, append-only history). A refusal or a bad file is one
    line and exit code 2 (``regcalc --debug`` shows the trace)."""


@rules.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--user", required=True)
def submit(file, user):
    """Validate and store a new version of every rule in FILE (all or nothing)."""
    raw_rules = load_rule_file(file)
    with naming_file(file):
        stored = _store().submit(raw_rules, user)
    for rule in stored:
        click.echo(f"submitted {rule.rule_id} version {rule.version} ({rule.stage}), awaiting approval")


@rules.command()
@click.argument("rule_id")
@click.option("--user", required=True)
def approve(rule_id, user):
    """Approve the latest version of RULE_ID (not by its own submitter)."""
    v = _store().approve(rule_id, user)
    click.echo(f"approved {rule_id} version {v.version} by {v.approved_by}")


@rules.command()
@click.argument("rule_id")
@click.option("--user", required=True)
def retire(rule_id, user):
    """Retire RULE_ID (a new version; history is kept)."""
    v = _store().retire(rule_id, user)
    click.echo(f"retired {rule_id} as version {v.version}")


@rules.command("list")
@click.option("--as-of", "as_of", default=None,
              help="the rules in force at this moment (ISO timestamp; an offset is converted to UTC, none means UTC)")
def list_rules(as_of):
    """The approved rules in force (now, or as of a past moment)."""
    when = parse_utc(as_of, "--as-of") if as_of else None
    for r in _store().approved_rules(when):
        expiry = r.expiry_date or "open"
        click.echo(f"{r.rule_id}  v{r.version}  {r.stage:<15}  {r.effective_date}..{expiry}  "
                   f"approved by {r.approval['user']}  {r.description}")


@rules.command()
@click.argument("rule_id")
def history(rule_id):
    """Every version of RULE_ID: who submitted, approved or retired it, and when."""
    versions = _store().history(rule_id)
    if not versions:
        raise RegcalcInputError(f"no rule {rule_id}")
    for v in versions:
        line = f"v{v.version}  {v.status:<9}  by {v.submitted_by} at {v.submitted_at:%Y-%m-%d %H:%M:%S}"
        if v.approved_by:
            line += f"; approved by {v.approved_by} at {v.approved_at:%Y-%m-%d %H:%M:%S}"
        click.echo(line)


@rules.command()
@click.argument("source")
@click.option("--date", "dates", multiple=True, help="business date (repeatable; default: every stored date in the rule's window)")
@click.option("--format", "fmt", default="table", type=click.Choice(["table", "json"]), show_default=True)
def preview(source, dates, fmt):
    """What SOURCE (a rule file, or the id of a stored rule) would do before approval: rows matched
    per entity and date, and each affected entity's LCR / NSFR with it versus now. Reads the
    stored results; writes nothing."""
    from regcalc_cli import preview as pv
    from regcalc_resources import cli_resource

    rows = pv.preview(cli_resource("stages"), cli_resource("engine"), _store(), source, list(dates))
    click.echo(json.dumps(rows, indent=2) if fmt == "json" else pv.render(rows))
