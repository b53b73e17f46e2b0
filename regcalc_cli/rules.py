"""`regcalc rules ...`: submit, approve, retire, list and history of adjustment rules."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import click
import yaml

from regcalc_core.errors import RegcalcInputError
from regcalc_core.timestamps import parse_utc


def _store():
    from regcalc_resources import build_rule_store, resolved

    return resolved(build_rule_store())


class RuleFileError(RegcalcInputError):
    """A rule file that cannot be read as rules: not text, not YAML / JSON, or not rule mappings."""


class _RuleLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML (libyaml's parser when installed: 1,000 rules parse in 0.2 s instead of 1 s)
    without the timestamp type: dates stay text, so the rule model validates them and names the
    rule and field (``effective_date: 2024-02-30`` is a message, not a ValueError)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _problem(exc: Exception) -> str:
    """A YAML or JSON syntax error on one line, with its position."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1} column {mark.column + 1}" if mark else problem


def load_rule_file(path: str) -> list[dict]:
    """One rule or a list of rules, from YAML or JSON (``.json``): a list of mappings, or a
    RuleFileError naming the file (and the item) for a binary, empty or malformed file or for
    anything that is not a rule mapping. The mappings are validated by the rule model."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RuleFileError(f"rule file {path}: not a text (YAML or JSON) file: "
                            f"byte {exc.start} is not UTF-8") from None
    except OSError as exc:
        raise RuleFileError(f"rule file {path}: cannot be read: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise RuleFileError(f"rule file {path}: not a text (YAML or JSON) file: it contains NUL bytes")
    try:
        doc = json.loads(text) if path.endswith(".json") else yaml.load(text, Loader=_RuleLoader)  # noqa: S506 - safe loader
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        kind = "JSON" if path.endswith(".json") else "YAML"
        raise RuleFileError(f"rule file {path}: not valid {kind}: {_problem(exc)}") from None
    if doc is None or doc == []:
        raise RuleFileError(f"rule file {path}: is empty (expected a rule or a list of rules)")
    if isinstance(doc, dict):
        return [doc]
    if not isinstance(doc, list):
        raise RuleFileError(f"rule file {path}: holds a {type(doc).__name__} ({_short(doc)}), "
                            "not a rule or a list of rules")
    for i, item in enumerate(doc, start=1):
        if not isinstance(item, dict):
            raise RuleFileError(f"rule file {path}: item {i} is a {type(item).__name__} ({_short(item)}), "
                                "not a rule (a mapping with rule_id, stage, adjustments, ...)")
    return doc


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@contextmanager
def naming_file(path: str):
    """A rule of ``path`` that fails validation names the file as well as the rule and the part."""
    from regcalc_core.rules import RuleValidationError

    try:
        yield
    except RuleValidationError as exc:
        raise RuleValidationError(f"rule file {path}: {exc}") from exc


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

    rows = pv.preview(cli_resource("stage_io"), _store(), source, list(dates))
    click.echo(json.dumps(rows, indent=2) if fmt == "json" else pv.render(rows))
