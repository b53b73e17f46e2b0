"""Validation: the data contract enforced row by row; bad rows quarantined with their rule, never lost."""


import dagster as dg

from regcalc_assets.partitions import DATE_ENTITY
from regcalc_core.dataframes import functions_for
from regcalc_assets.validation import logic
from regcalc_resources.engine import ComputeEngine

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
