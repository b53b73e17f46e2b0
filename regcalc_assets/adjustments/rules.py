"""Which approved rules a run applies: those in force at the run's as-of moment (default: now)."""

import datetime as dt

import dagster as dg

AS_OF_TAG = "regcalc/rules_as_of"


def rules_for_run(context, store, stage: str) -> tuple[list, dict]:
    """Approved rules of ``stage`` as of the run's ``regcalc/rules_as_of`` tag (ISO, UTC) or now,
    and the output metadata that records them (rule id and version of each)."""
    tag = context.run.tags.get(AS_OF_TAG)
    as_of = dt.datetime.fromisoformat(tag.replace("Z", "+00:00")).replace(tzinfo=None) if tag else None
    rules = [r for r in store.approved_rules(as_of) if r.stage == stage]
    return rules, {
        f"{stage}_rules": dg.MetadataValue.json([f"{r.rule_id}@v{r.version}" for r in rules]),
        "rules_as_of": tag or "latest",
    }
