"""The end-of-day batch: a job over every stage, and a weekday-evening schedule for it."""

from __future__ import annotations

import os

import dagster as dg

from regcalc_assets.hooks import describe_stage
from regcalc_assets.partitions import BUSINESS_DATES, DATE_ENTITY, ENTITY_PARTITIONS, date_range_tags
from regcalc_resources import settings

# Each run of these jobs is one Kubernetes pod in production (dagster-k8s): its resources are set
# here, on the job, because dagster-k8s applies run tags last, over the run launcher's runK8sConfig
# and over the code server's own resources (which the chart passes into the runs it launches).
RUN_POD_RESOURCES = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}}
RUN_POD_TAGS = {"dagster-k8s/config": {"container_config": {"resources": RUN_POD_RESOURCES}}}
# RUNNING where REGCALC_SCHEDULES=running (production, helm/values.yaml), else STOPPED
SCHEDULE_STATUS = dg.DefaultScheduleStatus.RUNNING if settings.schedules_running() else dg.DefaultScheduleStatus.STOPPED

DATE_LEVEL = dg.AssetSelection.assets("unassigned_positions")
eod_job = dg.define_asset_job(
    "eod_job",
    selection=dg.AssetSelection.all() - DATE_LEVEL,
    partitions_def=DATE_ENTITY,
    description="Every stage, landing zone to warehouse, for one business date and its entities.",
    hooks={describe_stage},
    tags=RUN_POD_TAGS,
)
unassigned_job = dg.define_asset_job(
    "unassigned_positions_job",
    selection=DATE_LEVEL,
    partitions_def=BUSINESS_DATES,
    description="Positions of a business date that belong to no known entity (quarantined, counted).",
    hooks={describe_stage},
    tags=RUN_POD_TAGS,
)


def eod_run_request(instance, business_date: str, entities: list[str]) -> dg.RunRequest:
    """Register the entities as partitions and request one run covering all of them for the date.
    Every entity is checked first (regcalc_core.identifiers): an invalid one registers nothing."""
    from regcalc_core.identifiers import check_identifier

    for entity in entities:
        check_identifier(entity)
    known = instance.get_dynamic_partitions(ENTITY_PARTITIONS)
    new = [e for e in entities if e not in known]
    if new:
        instance.add_dynamic_partitions(ENTITY_PARTITIONS, sorted(new))
    order = instance.get_dynamic_partitions(ENTITY_PARTITIONS)
    wanted = [e for e in order if e in set(entities)]
    return dg.RunRequest(
        run_key=f"eod-{business_date}",
        tags={**date_range_tags(business_date, wanted[0], wanted[-1]), "regcalc/business_date": business_date},
    )


@dg.schedule(job=eod_job, cron_schedule="30 19 * * 1-5", execution_timezone="UTC", default_status=SCHEDULE_STATUS,
             description="EOD batch at 19:30 UTC on weekdays: every entity of that day's delivery.")
def eod_schedule(context: dg.ScheduleEvaluationContext):
    from regcalc_core.delivery import LandingFileError, delivered_entity_ids

    business_date = context.scheduled_execution_time.date().isoformat()
    landing = os.environ.get("REGCALC_LANDING")
    if not landing:
        return dg.SkipReason("REGCALC_LANDING is not set")
    try:
        entities = delivered_entity_ids(landing, business_date)
    except LandingFileError as exc:
        return dg.SkipReason(str(exc))
    if not entities:
        return dg.SkipReason(f"no entities delivered for {business_date}")
    return eod_run_request(context.instance, business_date, entities)


unassigned_schedule = dg.build_schedule_from_partitioned_job(
    unassigned_job, hour_of_day=19, minute_of_hour=30, description="Date-level quarantine of the EOD batch.",
    default_status=SCHEDULE_STATUS,
)
