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


def acting_user(user: str | None, as_user_unverified: bool) -> str | None:
    """The ``user`` to pass to the store: none (the authenticated identity) unless the caller
    names one and says it is unverified. On PostgreSQL a named user other than the login role is
    refused by the store."""
    if user is not None and not as_user_unverified:
        raise RegcalcInputError("--user names someone the system has not authenticated: add --as-user-unverified "
                               "(recorded on the event), or leave it out to act as yourself")
    if as_user_unverified and user is None:
        raise RegcalcInputError("--as-user-unverified needs --user")
    return user


def identity_options(command):
    """--user and --as-user-unverified, shared by every command that acts."""
    command = click.option("--as-user-unverified", "as_user_unverified", is_flag=True,
                           help="accept --user on the embedded store, recorded as unverified "
                                "(a single-user file cannot enforce four eyes)")(command)
    return click.option("--user", default=None,
                        help="act as this user (default: the authenticated identity: the OS account "
                             "on the embedded store, the login role on PostgreSQL)")(command)


@rules.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@identity_options
def submit(file, user, as_user_unverified):
    """Validate and store a new version of every rule in FILE (all or nothing)."""
    user = acting_user(user, as_user_unverified)
    raw_rules = load_rule_file(file)
    with naming_file(file):
        stored = _store().submit(raw_rules, user)
    for rule in stored:
        click.echo(f"submitted {rule.rule_id} version {rule.version} ({rule.stage}) by {rule.submitted_by}, "
                   "awaiting approval")


@rules.command()
@click.argument("rule_id")
@identity_options
def approve(rule_id, user, as_user_unverified):
    """Approve the latest pending version of RULE_ID, a change or a retirement (not by its maker)."""
    v = _store().approve(rule_id, acting_user(user, as_user_unverified))
    verb = "retirement" if v.is_retirement else "version"
    click.echo(f"approved {rule_id} {verb} {v.version} by {v.approved_by}")


@rules.command()
@click.argument("rule_id")
@identity_options
def retire(rule_id, user, as_user_unverified):
    """Ask to retire RULE_ID: a new version that ends the rule once another person approves it."""
    v = _store().retire(rule_id, acting_user(user, as_user_unverified))
    click.echo(f"retirement of {rule_id} submitted as version {v.version} by {v.submitted_by}, awaiting approval; "
               "the rule stays in force until then")


@rules.command()
def verify():
    """Recompute the hash chain of the whole history; exit 1 naming the first broken event."""
    store = _store()
    count, head, problem = store.verify()
    if problem:
        click.echo(f"rule store {store.where()}: history broken at {problem}", err=True)
        raise SystemExit(1)
    click.echo(f"rule store {store.where()}: {count} events, chain intact"
               + (f", head {head[:16]}" if head else ""))


@rules.command("init-db")
@click.option("--apply", "apply_", is_flag=True, help="apply it through REGCALC_RULES_DSN (a superuser or the owner)")
def init_db(apply_):
    """Print (or apply) the PostgreSQL set-up of the rule store: the roles regcalc_analyst (submit,
    retire), regcalc_approver (approve, acknowledge) and regcalc_reader (the pipeline), the
    append-only table, its views and SECURITY DEFINER functions."""
    import os

    from regcalc_resources.rule_store import PostgresRuleStore, postgres_setup_sql

    if not apply_:
        click.echo(postgres_setup_sql())
        return
    if not os.environ.get("REGCALC_RULES_DSN"):
        raise RegcalcInputError("rules init-db --apply: set REGCALC_RULES_DSN to the store's PostgreSQL database")
    PostgresRuleStore(dsn=os.environ["REGCALC_RULES_DSN"]).init_db()
    click.echo("rule store set up: grant regcalc_analyst and/or regcalc_approver to people's login roles, "
               "regcalc_reader to the pipeline's")


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
        unverified = " (unverified)"
        line = (f"v{v.version}  {v.status:<18}  by {v.submitted_by}{unverified if v.unverified_maker else ''} "
                f"at {v.submitted_at:%Y-%m-%d %H:%M:%S}")
        if v.approved_by:
            line += (f"; approved by {v.approved_by}{unverified if v.unverified_approver else ''} "
                     f"at {v.approved_at:%Y-%m-%d %H:%M:%S}")
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


rules.add_command(__import__("regcalc_cli.acknowledge", fromlist=["acknowledge"]).acknowledge)  # circuit breaker
