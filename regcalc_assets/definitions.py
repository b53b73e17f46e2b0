"""The one Dagster entry point: every asset, check, job and schedule of regcalc."""

from __future__ import annotations

import dagster as dg

from regcalc_assets.adjustments import assets as adjustments
from regcalc_assets.aggregation import assets as aggregation
from regcalc_assets.enrichment import assets as enrichment
from regcalc_assets.landing import assets as landing
from regcalc_assets.lineage import assets as lineage
from regcalc_assets.metrics import assets as metrics
from regcalc_assets.publication import assets as publication
from regcalc_assets.sources import assets as sources
from regcalc_assets.star import assets as star
from regcalc_assets.sensors import recalc_sensor
from regcalc_assets.schedules import eod_job, eod_schedule, unassigned_job, unassigned_schedule
from regcalc_assets.validation import assets as validation
from regcalc_resources import build_resources

ALL_ASSETS = dg.load_assets_from_modules([sources, landing, validation, enrichment, adjustments, aggregation, metrics, lineage,
                                          star, publication])


def build_definitions() -> dg.Definitions:
    from regcalc_assets.loggers import redacting_console_logger
    from regcalc_assets.reporting.assets import dbt_resource, reporting_assets

    return dg.Definitions(
        assets=[*ALL_ASSETS, reporting_assets()],
        jobs=[eod_job, unassigned_job],
        schedules=[eod_schedule, unassigned_schedule],
        sensors=[recalc_sensor],
        resources={**build_resources(), "dbt": dbt_resource()},
        loggers={"console": redacting_console_logger},  # Dagster's console output, secrets masked
    )


defs = build_definitions()
