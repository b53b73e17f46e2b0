"""What a stage's columns derive from, described once per stage and run, after it succeeded.

The stage IO manager only stores. This success hook, on every job, then describes each stored
stage it ran: the stored Parquet schema, the column lineage (``regcalc_core.lineage``: the
versioned declarations, else the same-named column of each upstream stage), recorded in the
Dagster UI as one observation of the asset (``dagster/column_schema``, ``dagster/column_lineage``)
and sent as OpenLineage START and COMPLETE events. Once per stage and run, not once per partition:
the description is the same for every partition of the run. Assets that are not stored stages
(the warehouse loads) describe their own loads.
"""

from __future__ import annotations

import datetime as dt
import dagster as dg


@dg.success_hook(required_resource_keys={"stages", "openlineage"})
def describe_stage(context: dg.HookContext) -> None:
    try:
        _describe(context)
    except Exception as exc:  # noqa: BLE001 - a description must never fail the run it describes
        context.log.warning(f"column lineage of {context.step_key} was not recorded: {type(exc).__name__}: {exc}")


def _describe(context: dg.HookContext) -> None:
    from regcalc_assets.partitions import run_partitions

    run = context.instance.get_run_by_id(context.run_id)
    pairs = run_partitions(context.instance, run.tags)
    # an @asset's step is named after it; a multi-asset's outputs are named after its assets (the
    # other outputs, "result" and asset checks, are not stored stages: nothing is described for them)
    names = dict.fromkeys([context.step_key, *(o.name for o in context.op.definition.output_defs)])
    for asset in names:
        _describe_asset(context, run, asset, pairs)


def _describe_asset(context: dg.HookContext, run, asset: str, pairs: list[tuple[str, str]]) -> None:
    from regcalc_core.lineage import column_lineage
    from regcalc_resources.stage_store import key_of_pair

    stages = context.resources.stages
    schema = stages.stored_schema(asset, *pairs[0]) if pairs else None
    if schema is None:  # not a stored stage
        return
    upstream = {}
    for name in sorted(d.name for d in context.op.definition.input_defs):
        stored = stages.stored_schema(name, *pairs[0])
        upstream[name] = stored.names if stored is not None else None
    lineage = column_lineage(asset, schema.names, upstream)
    fields = [(f.name, str(f.type)) for f in schema]
    rows = sum(n or 0 for date in sorted({d for d, _ in pairs})
               for n in stages.stored_rows(asset, date, [e for d, e in pairs if d == date]).values())
    stats = context.instance.get_run_step_stats(context.run_id, step_keys=[context.step_key])
    now = dt.datetime.now(dt.timezone.utc)
    start = stats[0].start_time if stats else None
    started = dt.datetime.fromtimestamp(start, dt.timezone.utc) if start else now
    context.resources.openlineage.emit_materialization(
        job_name=run.job_name, run_id=context.run_id, asset=asset, inputs=sorted(upstream),
        partitions=[key_of_pair(date, entity) for date, entity in pairs],
        fields=fields, column_lineage=lineage, row_count=rows, started_at=started, ended_at=now)
    context.instance.report_runless_asset_event(dg.AssetObservation(
        asset_key=dg.AssetKey(asset),
        metadata={
            "dagster/column_schema": dg.TableSchema([dg.TableColumn(n, t) for n, t in fields]),
            "dagster/column_lineage": dg.TableColumnLineage(
                {c: [dg.TableColumnDep(dg.AssetKey(a), col) for a, col in deps] for c, deps in lineage.items() if deps}),
            "run_id": dg.MetadataValue.text(context.run_id),
        },
    ))
