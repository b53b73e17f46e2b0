"""Data versions of the pipeline's sources, per (business date, entity) partition.

A rule set's version is a hash of exactly the approved rules that can apply to the partition:
effective on the date, and not excluded by a condition on the entity (``entity_id`` at every
stage, ``reporting_currency`` at the aggregation and final stages). Approving a rule scoped to
one entity and one date therefore changes one version, of one stage. A delivery's version is a
hash of the date folder's files (name, size, modification time), so a re-delivered or corrected
file changes that date's version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from regcalc_core.conditions import holds
from regcalc_core.rules import Rule

# source asset -> the rule stage it versions (each feeds only its own stage)
RULE_SOURCES = {"deal_rules": "deal_enrichment", "aggregation_rules": "aggregation", "final_rules": "final_calc"}
LANDING_SOURCE = "landing_delivery"
ENTITY_FIELDS = ("entity_id", "reporting_currency")  # conditions decidable from the entity alone


def can_apply(rule: Rule, business_date: dt.date, entity: dict) -> bool:
    """Whether ``rule`` may change anything of the entity's partition on the date. Conditions on
    other fields depend on the rows and are assumed to possibly hold."""
    if not rule.applies_on(business_date):
        return False
    for cond in rule.conditions:
        if cond.field in ENTITY_FIELDS and cond.field in entity:
            if not holds(cond, entity[cond.field]):
                return False
    return True


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def rule_set_version(rules: list[Rule], stage: str, business_date: dt.date, entity: dict) -> str:
    """Hash of the (rule_id, version) of every rule of ``stage`` that can apply to the partition."""
    applying = sorted((r.rule_id, r.version) for r in rules if r.stage == stage and can_apply(r, business_date, entity))
    return "rules-" + _digest(applying)


def landing_version(landing_root: str, business_date: str) -> str:
    """Hash of the date folder's files: name, size and modification time of each."""
    folder = Path(landing_root) / f"business_date={business_date}"
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return "files-" + _digest([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files])


def partition_key(business_date: str, entity_id: str) -> str:
    """The multi-partition key string of (date, entity), dimensions in name order."""
    return f"{business_date}|{entity_id}"


def rule_versions(rules: list[Rule], entities_by_date: dict[str, dict[str, dict]]) -> dict[str, dict[str, str]]:
    """{rule source: {partition key: version}} for every delivered (date, entity)."""
    out: dict[str, dict[str, str]] = {source: {} for source in RULE_SOURCES}
    for date, entities in entities_by_date.items():
        day = dt.date.fromisoformat(date)
        for entity_id, entity in entities.items():
            for source, stage in RULE_SOURCES.items():
                out[source][partition_key(date, entity_id)] = rule_set_version(rules, stage, day, entity)
    return out


def version_column(F, by_entity: dict[str, str]):
    """A Column holding each row's partition version, by its entity_id."""
    expr = None
    for entity, version in sorted(by_entity.items()):
        cond = F.col("entity_id") == F.lit(entity)
        expr = F.when(cond, F.lit(version)) if expr is None else expr.when(cond, F.lit(version))
    return expr if expr is not None else F.lit(None).cast("string")
