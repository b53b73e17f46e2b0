"""The sensor that keeps results current: it observes the rules and the landing zone, records a new
data version for each source partition that changed, and requests runs for exactly the stale
partitions (past business dates included), batched per date and asset selection. It also finishes
what the circuit breaker left: the entities that passed in a run it stopped are published, and an
acknowledged one is released (``circuit_breaker.adjust_plan``)."""

from __future__ import annotations

import hashlib
import os

import dagster as dg

from regcalc_assets.schedules import eod_job, unassigned_job
from regcalc_resources.rule_store import RuleStore

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


@dg.sensor(jobs=[eod_job, unassigned_job], minimum_interval_seconds=int(os.environ.get("REGCALC_SENSOR_SECONDS", "30")),
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Observes the adjustment rules (approve, retire) and the landing zone (new or re-delivered "
                       "files); recomputes exactly the partitions whose inputs changed, and what depends on them.")
def recalc_sensor(context: dg.SensorEvaluationContext, rules: RuleStore):
    from regcalc_assets.partitions import ENTITY_PARTITIONS
    from regcalc_assets.sources import recalc
    from regcalc_assets.sources.versions import changed_versions, current_versions, observations

    landing = os.environ.get("REGCALC_LANDING")
    if not landing:
        return dg.SkipReason("REGCALC_LANDING is not set: nothing to observe")
    from regcalc_core.delivery import date_folders

    for folder in date_folders(landing)[1]:
        context.log.warning(f"skipped {folder} in {landing}: not a valid business date folder")
    instance = context.instance
    current = current_versions(rules.approved_rules(), landing, instance.get_dynamic_partitions(ENTITY_PARTITIONS))
    events = observations(changed_versions(instance, current))
    if instance.get_runs_count(dg.RunsFilter(statuses=IN_FLIGHT)):
        # a run in flight leaves partitions half-updated: plan once it has finished
        return dg.SensorResult(asset_events=events, skip_reason="runs in progress")
    from regcalc_assets.circuit_breaker import released

    plan = recalc.plan(instance, context.repository_def.asset_graph, current, released=released(rules))
    requests = []
    for run in plan.runs:
        keys = [run.business_date] + [f"{run.business_date}|{e}" for e in run.entities]
        fingerprint = repr((run.assets, sorted((s, k, v[k]) for s, v in current.items() for k in keys if k in v))) + run.marker
        requests.append(dg.RunRequest(
            run_key="recalc-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:24],
            job_name=(eod_job if run.entities else unassigned_job).name,
            asset_selection=[dg.AssetKey(a) for a in run.assets],
            partition_key=None if run.entities else run.business_date,
            tags={**run.tags(), **plan.summary_tags(), "regcalc/trigger": "sensor"},
        ))
    return dg.SensorResult(run_requests=requests, asset_events=events,
                           skip_reason=None if requests or events else "nothing changed")
