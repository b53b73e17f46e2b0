"""Ingestion: a date's delivery, read once per run and split by legal entity."""


import dagster as dg

from regcalc_assets.landing import logic
from regcalc_core.delivery import ignored_columns_warning
from regcalc_assets.partitions import DATE_ENTITY, by_date, run_scope
from regcalc_assets.sources.logic import LANDING_SOURCE
from regcalc_assets.sources.versions import record_landing_version
from regcalc_core.dataframes import functions_for
from regcalc_resources.engine import ComputeEngine
from regcalc_resources.landing import LandingZone

DELIVERY = dg.AssetDep(LANDING_SOURCE, partition_mapping=by_date())
STAGE = dict(partitions_def=DATE_ENTITY, io_manager_key="stage_io", group_name="ingestion", deps=[DELIVERY])


@dg.asset(**STAGE, kinds={"parquet"})
def landed_positions(context: dg.AssetExecutionContext, engine: ComputeEngine, landing: LandingZone):
    """One row per delivered position of the entity, exactly as delivered (text), with the
    reference data (counterparty type; security level, issuer and maturity; price) and market data
    (FX rates of the position and reporting currencies) it points at, from reference rows that
    satisfy the contract. ``key_occurrences`` counts its (position_id, source_system) over the
    whole date; ``source_file``/``source_row`` locate it. Implements landing-zone.md (layout,
    positions, reference and market data)."""
    business_date, entities = run_scope(context)
    version = record_landing_version(context, landing.root)
    frames = logic.read_all(engine, landing.root, business_date)
    warning = ignored_columns_warning(frames["_ignored"])
    if warning:
        context.log.warning(warning)
        context.add_output_metadata({"ignored_columns": dg.MetadataValue.json(frames["_ignored"])})
    return logic.land_positions(frames, business_date, entities, version)


@dg.asset(**STAGE, kinds={"parquet"})
def entity_profiles(context: dg.AssetExecutionContext, engine: ComputeEngine, landing: LandingZone):
    """One row per legal entity and business date: its reference row (name, reporting currency,
    country, parent) if valid, the FX rate of its reporting currency, and how many positions were
    delivered for it. ``entity_valid`` false means no result row is reported for it that day
    (landing-zone.md, entities and "Bad input")."""
    business_date, entities = run_scope(context)
    version = record_landing_version(context, landing.root)
    frames = logic.read_all(engine, landing.root, business_date)
    profiles = logic.entity_profiles(frames, business_date, entities, engine.session())
    return profiles.withColumn("landing_version", functions_for(profiles)[0].lit(version))
