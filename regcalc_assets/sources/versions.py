"""Source data versions in the Dagster instance: what was last observed, what each stage consumed.

Observations are per partition and carry the version as Dagster's data-version tag, so the UI's
staleness and lineage use them. Each stage also records, per partition, the version it consumed
(``consumed_version`` metadata and a ``<source>_version`` column of its output): the audit trail
does not depend on Dagster's provenance, which for partitioned observable sources records one
hash for a whole ranged run.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_IS_USER_PROVIDED_TAG, DATA_VERSION_TAG

from regcalc_core.delivery import LandingFileError, available_dates, delivered_entities
from regcalc_core.timestamps import parse_utc
from regcalc_assets.partitions import run_scope
from regcalc_assets.sources.logic import (LANDING_SOURCE, landing_version, partition_key,
                                          rule_set_version, rule_versions)

CONSUMED = "consumed_version"


def current_versions(rules: list, landing_root: str, registered: list[str], dates: list[str] | None = None
                     ) -> dict[str, dict[str, str]]:
    """{source: {partition key: version}} now, for every delivered (date, entity) of the landing
    zone (or of ``dates``) whose entity is a registered partition; a date whose entities file
    cannot be read has no rule versions."""
    dates = available_dates(landing_root) if dates is None else dates
    known = set(registered)
    entities_by_date = {}
    for date in dates:
        try:
            delivered = delivered_entities(landing_root, date)
        except LandingFileError:
            continue
        entities_by_date[date] = {e: info for e, info in delivered.items() if e in known}
    versions = rule_versions(rules, entities_by_date)
    versions[LANDING_SOURCE] = {date: landing_version(landing_root, date) for date in dates}
    return versions


def last_observed(instance, source: str) -> dict[str, str]:
    """{partition key: version} of the latest observation of each partition of ``source``."""
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        dg.AssetKey(source), dg.DagsterEventType.ASSET_OBSERVATION, [DATA_VERSION_TAG])
    return {pk: t[DATA_VERSION_TAG] for pk, t in tags.items() if DATA_VERSION_TAG in t}


def changed_versions(instance, current: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The partitions whose version differs from the last observation (or was never observed)."""
    changed = {}
    for source, versions in current.items():
        seen = last_observed(instance, source)
        diff = {pk: v for pk, v in versions.items() if seen.get(pk) != v}
        if diff:
            changed[source] = diff
    return changed


def observations(changed: dict[str, dict[str, str]]) -> list[dg.AssetObservation]:
    """One observation per changed partition, carrying its data version."""
    return [
        dg.AssetObservation(asset_key=source, partition=pk,
                            tags={DATA_VERSION_TAG: version, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"})
        for source, versions in sorted(changed.items()) for pk, version in sorted(versions.items())
    ]


def observe(instance, landing_root: str, dates: list[str] | None = None, store=None) -> tuple[dict, dict]:
    """Observe every source now: record an observation for each partition whose version changed.
    Returns (current versions, changed versions)."""
    from regcalc_assets.partitions import ENTITY_PARTITIONS

    if store is None:
        from regcalc_resources import build_rule_store

        store = build_rule_store()
    current = current_versions(store.approved_rules(), landing_root, instance.get_dynamic_partitions(ENTITY_PARTITIONS),
                               dates)
    changed = changed_versions(instance, current)
    for event in observations(changed):
        instance.report_runless_asset_event(event)
    return current, changed


def consumed_versions(instance, consumer: str) -> dict[str, str]:
    """{partition key: source version} that the latest materialization of each partition of
    ``consumer`` recorded."""
    key = dg.AssetKey(consumer)
    latest = instance.event_log_storage.get_latest_storage_id_by_partition(
        key, dg.DagsterEventType.ASSET_MATERIALIZATION)
    if not latest:
        return {}
    out = {}
    ids = sorted(latest.values())
    for start in range(0, len(ids), 500):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, storage_ids=ids[start:start + 500]), limit=500).records
        for record in records:
            value = record.asset_materialization.metadata.get(CONSUMED)
            if value is not None:
                out[record.partition_key] = value.value
    return out


def record_rule_versions(context, rules: list, stage: str, landing_root: str) -> dict[str, str]:
    """Per-partition metadata of the rule-set version the run consumed; returns {entity: version}."""
    import datetime as dt

    business_date, entities = run_scope(context)
    delivered = delivered_entities(landing_root, business_date)
    by_entity = {e: rule_set_version(rules, stage, dt.date.fromisoformat(business_date),
                                     delivered.get(e, {"entity_id": e})) for e in entities}
    for entity, version in by_entity.items():
        context.add_asset_metadata({CONSUMED: version}, partition_key=partition_key(business_date, entity))
    return by_entity


def record_landing_version(context, landing_root: str) -> str:
    """Metadata of the delivery version the run read (the same for every partition of the date)."""
    keys = context.partition_keys
    business_date = keys[0].keys_by_dimension["date"] if hasattr(keys[0], "keys_by_dimension") else keys[0]
    version = landing_version(landing_root, business_date)
    context.add_asset_metadata({CONSUMED: version})
    return version


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
