"""`regcalc eod`: every stage for one business date, as Dagster runs recorded in the instance."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class EodResult:
    business_date: str
    entities: list[str]
    run_ids: list[str]
    seconds: float
    success: bool
    error: str | None = None
    unassigned: int = 0
    input_error: bool = False  # the failure is bad input or a busy resource (exit code 2)
    held: dict[str, str] = field(default_factory=dict)  # entity -> why the circuit breaker holds it back


def quiet_run_config() -> dict:
    """Dagster's console logger at $REGCALC_LOG_LEVEL (default WARNING): the event log keeps everything."""
    import os

    level = os.environ.get("REGCALC_LOG_LEVEL", "WARNING").upper()
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def failure_summary(result) -> tuple[str, bool]:
    """(each failed step of a run with the message of its error, secrets masked: our own error in
    the chain, which names the culprit, else the innermost one; whether every such error is a RegcalcInputError:
    bad input, a busy or unwritable resource, which the command line reports with exit code 2)."""
    import dagster as dg

    from regcalc_core.errors import RegcalcInputError
    from regcalc_core.redaction import redact

    def names(cls) -> set[str]:
        return {cls.__name__}.union(*(names(sub) for sub in cls.__subclasses__()))

    def cause(error):  # the outermost error of ours in the chain (its message names the culprit), else the innermost
        chain = [error]
        while getattr(chain[-1], "cause", None) is not None:
            chain.append(chain[-1].cause)
        return next((e for e in chain if e.cls_name in ours), chain[-1])

    ours = names(RegcalcInputError)
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    causes = [cause(e.event_specific_data.error) for e in failures]
    text = "; ".join(f"{e.step_key}: {c.message.strip()}" for e, c in zip(failures, causes)) or "run failed"
    return redact(text), bool(causes) and all(c.cls_name in ours for c in causes)


def run_eod(instance, business_date: str, landing: str, entities: list[str] | None = None,
            rules_as_of: str | None = None) -> EodResult:
    """Materialize every stage of ``business_date`` for the delivered (or named) entities.

    One EOD of a date at a time: the date's lock is held around all its runs (a second EOD waits
    up to ``$REGCALC_LOCK_TIMEOUT``, then a ``ResourceBusyError`` names the holding run), and a
    run of the date orphaned by a killed process is marked failed first (``date_lock``).
    """
    from regcalc_cli.date_lock import business_date_lock

    with business_date_lock(instance, business_date, "eod") as lock:
        return _run_eod_holding_date(instance, business_date, landing, entities, rules_as_of, lock.tags)


def _run_eod_holding_date(instance, business_date: str, landing: str, entities: list[str] | None,
                          rules_as_of: str | None, lock_tags: dict[str, str]) -> EodResult:
    """``run_eod`` with the date held; every run carries ``lock_tags`` (lock id and process).

    One process, one engine session: a run covers a contiguous range of entity partitions, so the
    landing files are read once per run, not once per partition. When the circuit breaker holds
    entities of a run back (its blocking check stops the whole step), a second run publishes the
    others (``circuit_breaker.publish_passing``); the held ones are in ``EodResult.held``.
    """
    import os

    import dagster as dg

    from regcalc_assets.circuit_breaker import held_in_run, publish_passing
    from regcalc_assets.sources.versions import AS_OF_TAG
    from regcalc_core.delivery import delivered_entity_ids
    from regcalc_assets.partitions import ENTITY_PARTITIONS, contiguous_groups, date_range_tags
    from regcalc_assets.sources.versions import observe
    from regcalc_assets.schedules import eod_run_request
    from regcalc_resources.settings import lineage_enabled, reporting_enabled, star_enabled

    os.environ["REGCALC_LANDING"] = landing
    delivered = delivered_entity_ids(landing, business_date)
    if entities:
        unknown = sorted(set(entities) - set(delivered))
        if unknown:
            raise ValueError(f"entities not in the {business_date} delivery: {', '.join(unknown)}")
    wanted = set(entities or delivered)
    eod_run_request(instance, business_date, sorted(wanted))  # registers new entity partitions
    observe(instance, landing, [business_date])  # source versions first: the runs record them as consumed
    from regcalc_assets.definitions import build_definitions

    defs = build_definitions()
    job = defs.resolve_job_def("eod_job")
    selection, skipped = None, set()
    if not lineage_enabled():  # the same job without the lineage asset and its warehouse table
        skipped |= {dg.AssetKey("lineage"), dg.AssetKey("warehouse_lineage")}
    if not star_enabled():  # the same job without the star schema and its warehouse tables
        from regcalc_assets.star.assets import STAR_ASSETS

        skipped |= {dg.AssetKey(a) for a in STAR_ASSETS} | {dg.AssetKey("warehouse_star")}
    if not reporting_enabled():  # the same job without the dbt reporting layer
        from regcalc_assets.reporting.assets import reporting_assets

        skipped |= set(reporting_assets().keys)
    if skipped:
        selection = [k for k in job.asset_layer.executable_asset_keys if k not in skipped]
    started = time.perf_counter()
    run_ids, ok, error, input_error, held = [], True, None, False, {}
    for group in contiguous_groups(instance.get_dynamic_partitions(ENTITY_PARTITIONS), wanted):
        tags = {**date_range_tags(business_date, group[0], group[-1]), "regcalc/business_date": business_date,
                "regcalc/trigger": "cli-eod", **({AS_OF_TAG: rules_as_of} if rules_as_of else {}), **lock_tags}
        result = job.execute_in_process(
            instance=instance,
            run_config=quiet_run_config(),
            tags=tags,
            raise_on_error=False,
            asset_selection=selection,
        )
        run_ids.append(result.run_id)
        stopped = held_in_run(result)
        if stopped is not None:  # the circuit breaker held entities back: publish the others now
            held.update(stopped)
            follow_ups = publish_passing(job, instance, stopped, group, result.run_id, tags, quiet_run_config())
            run_ids += [r.run_id for r in follow_ups]
            result = follow_ups[-1] if follow_ups else None
        if result is not None and not result.success:
            ok = False
            error, input_error = failure_summary(result)
            break
    unassigned = 0
    if ok and not entities:  # positions of no known entity: counted once per date, on a full EOD
        result = defs.resolve_job_def("unassigned_positions_job").execute_in_process(
            instance=instance, partition_key=business_date, raise_on_error=False, run_config=quiet_run_config(),
            tags={"regcalc/business_date": business_date, "regcalc/trigger": "cli-eod", **lock_tags},
        )
        run_ids.append(result.run_id)
        ok = result.success
        if ok:
            mat = result.asset_materializations_for_node("unassigned_positions")[0]
            unassigned = int(mat.metadata["positions_unassigned"].value)
            failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
            if failed:  # the date-level reconciliation: a lost entity or position fails the EOD
                ok = False
                summary = failed[0].metadata["summary"].value.split("\n", 1)[0]
                error = f"{failed[0].check_name}: {summary}"
        else:
            error, input_error = failure_summary(result)
    return EodResult(business_date, sorted(wanted), run_ids, time.perf_counter() - started, ok, error, unassigned,
                     input_error, held)
