"""`regcalc rules acknowledge --date D --entity E`: an approver accepts the impact for which the
circuit breaker holds an entity back, so that it is published.

The impact acknowledged is the one the check recorded when it held the entity back (its rules and
figures, as the Dagster UI shows them); the rule store refuses an approver who made any of those
rules. Acknowledging records an event and publishes nothing by itself, as approving a rule
computes nothing by itself: the next recalculation (the recalc sensor where it runs, or
`regcalc recalc --date D`; a new `regcalc eod` too) checks the entity again, finds the
acknowledgment covering that very impact, and publishes it.
"""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--date", "business_date", required=True, help="business date (YYYY-MM-DD)")
@click.option("--entity", "entity_id", required=True, help="the legal entity held back")
@click.option("--user", default=None,
              help="act as this user (default: the authenticated identity: the OS account on the embedded store, "
                   "the login role on PostgreSQL); needs --as-user-unverified")
@click.option("--as-user-unverified", "as_user_unverified", is_flag=True,
              help="accept --user on the embedded store, recorded as unverified")
@click.option("--format", "fmt", default="text", type=click.Choice(["text", "json"]), show_default=True)
def acknowledge(business_date, entity_id, user, as_user_unverified, fmt):
    """Acknowledge the impact for which the circuit breaker holds ENTITY back on DATE (by an
    approver who made none of the rules behind it); the next recalculation publishes it."""
    from regcalc_assets.circuit_breaker import held_impact
    from regcalc_cli.instance import get_instance
    from regcalc_cli.main import _date
    from regcalc_cli.rules import _store, acting_user
    from regcalc_core import circuit_breaker as cb
    from regcalc_core.identifiers import check_identifier

    user = acting_user(user, as_user_unverified)
    business_date = _date(business_date)
    check_identifier(entity_id, "--entity")
    impact, run_id = held_impact(get_instance(), business_date, entity_id)
    body = {**impact, "check_run_id": run_id}
    ack = _store().acknowledge(business_date, entity_id, sorted({r["rule_id"] for r in impact["rules"]}), body, user)
    if fmt == "json":
        click.echo(json.dumps({"business_date": ack.business_date, "entity_id": ack.entity_id, "actor": ack.actor,
                               "actor_verified": ack.actor_verified, "acted_at": ack.acted_at.isoformat(),
                               "rule_ids": list(ack.rule_ids), "impact": ack.body}, indent=2, default=str))
        return
    who = ack.actor + ("" if ack.actor_verified else " (unverified)")
    click.echo(f"acknowledged: {entity_id} on {business_date} by {who} at {ack.acted_at:%Y-%m-%d %H:%M:%S} UTC: "
               f"{cb.describe(impact)}")
    click.echo(f"published by the next recalculation: `regcalc recalc --date {business_date}` (the recalc sensor "
               "does it by itself where it runs)")
