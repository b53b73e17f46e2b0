"""Validation: the data contract enforced row by row; bad rows quarantined with their rule, never lost."""


import dagster as dg

from regcalc_assets.landing import logic as landing_logic
from regcalc_assets.partitions import BUSINESS_DATES, DATE_ENTITY, by_date
from regcalc_assets.sources.logic import LANDING_SOURCE
from regcalc_assets.sources.versions import record_landing_version
from regcalc_assets.validation import logic
from regcalc_core.dataframes import functions_for
from regcalc_core.delivery import delivered_entity_ids, invalid_entities
from regcalc_resources.engine import ComputeEngine
from regcalc_resources.landing import LandingZone


RECONCILES = "delivered_equals_accepted_plus_quarantined"


@dg.multi_asset(
    partitions_def=DATE_ENTITY,
    group_name="validation",
    outs={
        "validated_positions": dg.AssetOut(
            io_manager_key="stage_io",
            kinds={"parquet"},
            description=(
                "One row per accepted position: typed per the landing-zone contract, with its "
                "counterparty type, security attributes, price and FX rates. Implements "
                "landing-zone.md (types, nullability, allowed values, references)."
            ),
        ),
        "quarantined_positions": dg.AssetOut(
            io_manager_key="stage_io",
            kinds={"parquet"},
            description=(
                "One row per delivered position that breaks the contract, as delivered (text), "
                "with every rule it broke (quarantine_reasons) and the first (quarantine_rule). "
                "Implements landing-zone.md, 'Bad input'."
            ),
        ),
    },
    check_specs=[dg.AssetCheckSpec(RECONCILES, asset="quarantined_positions",
                                   description="For every entity: rows delivered = accepted + quarantined")],
)
def validate_positions(context: dg.AssetExecutionContext, engine: ComputeEngine, landed_positions, entity_profiles):
    """Split landed positions into accepted and quarantined rows (landing-zone.md, 'Bad input')."""
    F, _ = functions_for(landed_positions)
    flagged, typed = logic.flag_positions(landed_positions)
    flagged = engine.checkpoint(flagged)  # parsed and checked once, read by both outputs and the counts
    clean = F.col(logic.REASONS) == F.lit("")
    counts = {
        r["entity_id"]: (int(r["accepted"]), int(r["quarantined"]))
        for r in flagged.groupBy("entity_id")
        .agg(
            F.sum(F.when(clean, F.lit(1)).otherwise(F.lit(0))).alias("accepted"),
            F.sum(F.when(clean, F.lit(0)).otherwise(F.lit(1))).alias("quarantined"),
        )
        .collect()
    }
    delivered = {r["entity_id"]: int(r["positions_delivered"]) for r in entity_profiles.collect()}
    accepted = sum(a for a, _ in counts.values())
    quarantined = sum(q for _, q in counts.values())
    table = "\n".join(
        ["| entity | delivered | accepted | quarantined |", "|---|---:|---:|---:|"]
        + [f"| {e} | {delivered[e]:,} | {counts.get(e, (0, 0))[0]:,} | {counts.get(e, (0, 0))[1]:,} |" for e in sorted(delivered)]
    )
    yield dg.Output(
        logic.accepted_positions(flagged, typed),
        output_name="validated_positions",
        metadata={"positions_accepted": accepted, "positions_quarantined": quarantined},
    )
    yield dg.Output(
        logic.quarantined_positions(flagged),
        output_name="quarantined_positions",
        metadata={
            "positions_quarantined": quarantined,
            "positions_accepted": accepted,
            "reconciliation": dg.MetadataValue.md(table),
        },
    )
    broken = {e: (n, counts.get(e, (0, 0))) for e, n in delivered.items() if n != sum(counts.get(e, (0, 0)))}
    yield dg.AssetCheckResult(
        check_name=RECONCILES,
        asset_key="quarantined_positions",
        passed=not broken,
        metadata={"mismatches": dg.MetadataValue.json({e: {"delivered": n, "accepted": a, "quarantined": q} for e, (n, (a, q)) in broken.items()}),
                  "reconciliation": dg.MetadataValue.md(table)},
    )


ACCOUNTED = "every_delivered_position_accounted_for"


@dg.asset(partitions_def=BUSINESS_DATES, io_manager_key="stage_io", group_name="validation", kinds={"parquet"},
          deps=[LANDING_SOURCE, *[dg.AssetDep(a, partition_mapping=by_date()) for a in ("validated_positions", "quarantined_positions")]], required_resource_keys={"stages", "engine", "landing"},
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
    frames = landing_logic.read_all(engine, landing.root, business_date)
    entity_ids = delivered_entity_ids(landing.root, business_date)
    rows = engine.checkpoint(logic.unassigned_positions(frames, business_date, entity_ids))
    unassigned = rows.count()
    delivered = frames["positions"].count()
    stages = context.resources.stages
    stored = {asset: stages.stored_rows(asset, business_date, entity_ids)
              for asset in ("validated_positions", "quarantined_positions")}
    passed, summary = logic.reconcile_date(delivered, unassigned, entity_ids, stored)
    meta = {"positions_unassigned": unassigned, "positions_delivered": delivered,
            "invalid_entities": dg.MetadataValue.json(invalid_entities(landing.root, business_date))}
    yield dg.Output(rows.withColumn("landing_version", functions_for(rows)[0].lit(version)), metadata=meta)
    yield dg.AssetCheckResult(check_name=ACCOUNTED, asset_key="unassigned_positions", passed=passed,
                              metadata={"summary": dg.MetadataValue.md(summary)})
