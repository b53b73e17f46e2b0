"""Which approved rules a run applies: those in force at the run's as-of moment (default: now)."""

import dagster as dg

from regcalc_core.timestamps import parse_utc

AS_OF_TAG = "regcalc/rules_as_of"


def rules_for_run(context, store, stage: str) -> tuple[list, dict]:
    """Approved rules of ``stage`` as of the run's ``regcalc/rules_as_of`` tag or now, and the
    output metadata that records them (rule id and version of each). The tag is an ISO moment; an
    offset is converted to UTC (the store keeps and compares UTC), none means UTC."""
    tag = context.run.tags.get(AS_OF_TAG)
    as_of = parse_utc(tag, f"run tag {AS_OF_TAG}") if tag else None
    rules = [r for r in store.approved_rules(as_of) if r.stage == stage]
    return rules, {
        f"{stage}_rules": dg.MetadataValue.json([f"{r.rule_id}@v{r.version}" for r in rules]),
        "rules_as_of": tag or "latest",
    }
