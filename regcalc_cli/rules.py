"""`regcalc rules ...`: submit, approve, retire, list and history of adjustment rules."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click
import yaml


def _store():
    from regcalc_resources import build_rule_store, resolved

    return resolved(build_rule_store())


def load_rule_file(path: str) -> list[dict]:
    """One rule or a list of rules, from YAML or JSON."""
    text = Path(path).read_text()
    doc = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    rules = doc if isinstance(doc, list) else [doc]
    return rules


def _fail(exc: Exception):
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


@click.group()
def rules():
    """Governed adjustment rules (four eyes, append-only history)."""


@rules.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--user", required=True)
def submit(file, user):
    """Validate and store a new version of every rule in FILE (all or nothing)."""
    from regcalc_assets.adjustments.model import RuleValidationError
    from regcalc_resources.rule_store import GovernanceError

    try:
        stored = _store().submit(load_rule_file(file), user)
    except (RuleValidationError, GovernanceError, yaml.YAMLError, json.JSONDecodeError) as exc:
        _fail(exc)
    for rule in stored:
        click.echo(f"submitted {rule.rule_id} version {rule.version} ({rule.stage}), awaiting approval")


def _act(action: str, rule_id: str, user: str):
    """Run a governed store action, turning a refusal into a clear error and exit code 2."""
    from regcalc_resources.rule_store import GovernanceError

    try:
        return getattr(_store(), action)(rule_id, user)
    except GovernanceError as exc:
        _fail(exc)


@rules.command()
@click.argument("rule_id")
@click.option("--user", required=True)
def approve(rule_id, user):
    """Approve the latest version of RULE_ID (not by its own submitter)."""
    v = _act("approve", rule_id, user)
    click.echo(f"approved {rule_id} version {v.version} by {v.approved_by}")


@rules.command()
@click.argument("rule_id")
@click.option("--user", required=True)
def retire(rule_id, user):
    """Retire RULE_ID (a new version; history is kept)."""
    v = _act("retire", rule_id, user)
    click.echo(f"retired {rule_id} as version {v.version}")


@rules.command("list")
@click.option("--as-of", "as_of", default=None, help="the rules in force at this moment (ISO timestamp, UTC)")
def list_rules(as_of):
    """The approved rules in force (now, or as of a past moment)."""
    when = dt.datetime.fromisoformat(as_of.replace("Z", "+00:00")).replace(tzinfo=None) if as_of else None
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
        _fail(ValueError(f"no rule {rule_id}"))
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
    from regcalc_assets.adjustments.model import RuleValidationError
    from regcalc_cli import preview as pv
    from regcalc_resources import cli_resource

    try:
        rows = pv.preview(cli_resource("stage_io"), _store(), source, list(dates))
    except (pv.PreviewError, RuleValidationError, yaml.YAMLError, json.JSONDecodeError) as exc:
        _fail(exc)
    click.echo(json.dumps(rows, indent=2) if fmt == "json" else pv.render(rows))
