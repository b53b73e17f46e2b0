"""Ingestion: a date's delivery, read once per run and split by legal entity."""


import dagster as dg

from regcalc_assets.landing import logic
from regcalc_assets.partitions import BUSINESS_DATES, DATE_ENTITY, run_scope
from regcalc_assets.sources.logic import LANDING_SOURCE
from regcalc_assets.sources.versions import record_landing_version
from regcalc_core.dataframes import functions_for
from regcalc_resources.engine import ComputeEngine
from regcalc_resources.landing import LandingZone

BY_DATE = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="date")
DELIVERY = dg.AssetDep(LANDING_SOURCE, partition_mapping=BY_DATE)
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
    warning = logic.ignored_columns_warning(frames["_ignored"])
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


ACCOUNTED = "every_delivered_position_accounted_for"


@dg.asset(partitions_def=BUSINESS_DATES, io_manager_key="stage_io", group_name="validation", kinds={"parquet"},
          deps=[LANDING_SOURCE, *[dg.AssetDep(a, partition_mapping=BY_DATE) for a in ("validated_positions", "quarantined_positions")]], required_resource_keys={"stages", "engine", "landing"},
          check_specs=[dg.AssetCheckSpec(ACCOUNTED, asset="unassigned_positions", description=(
              "For the date: positions delivered = accepted + quarantined over every delivered entity + "
              "unassigned, and every delivered entity has its stored partitions"))])
def unassigned_positions(context: dg.AssetExecutionContext):
    """One row per delivered position of the business date whose entity_id is null, not a valid
    identifier, or not in that date's entities file, as delivered, with the rule it broke
    (``entity_id:missing``, ``entity_id:invalid_identifier``, ``entity_id:unknown_reference``).
    Quarantined and counted for the date but in no entity's figures (landing-zone.md, 'Bad
    input'). Its check reconciles the whole date, so an entity lost anywhere fails loudly."""
    business_date = context.partition_key
    engine: ComputeEngine = context.resources.engine
    landing: LandingZone = context.resources.landing
    version = record_landing_version(context, landing.root)
    frames = logic.read_all(engine, landing.root, business_date)
    entity_ids = logic.delivered_entity_ids(landing.root, business_date)
    rows = engine.checkpoint(logic.unassigned_positions(frames, business_date, entity_ids))
    unassigned = rows.count()
    delivered = frames["positions"].count()
    stages = context.resources.stages
    stored = {asset: stages.stored_rows(asset, business_date, entity_ids)
              for asset in ("validated_positions", "quarantined_positions")}
    passed, summary = logic.reconcile_date(delivered, unassigned, entity_ids, stored)
    meta = {"positions_unassigned": unassigned, "positions_delivered": delivered,
            "invalid_entities": dg.MetadataValue.json(logic.invalid_entities(landing.root, business_date))}
    yield dg.Output(rows.withColumn("landing_version", functions_for(rows)[0].lit(version)), metadata=meta)
    yield dg.AssetCheckResult(check_name=ACCOUNTED, asset_key="unassigned_positions", passed=passed,
                              metadata={"summary": dg.MetadataValue.md(summary)})
