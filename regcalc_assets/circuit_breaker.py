"""The circuit breaker in the Dagster instance: the blocking check ``adjustment_impact_within_limits``
of ``liquidity_metrics`` (evaluated per (date, entity) partition by the metrics stage), which
partitions it holds back, and what a run that it stopped left unpublished.

Dagster's blocking checks gate a step, not a partition: in a run over a range of entities, one
entity over its limit stops what follows ``liquidity_metrics`` for all of them. So the callers
finish the job per partition: ``regcalc eod`` and ``regcalc recalc`` publish the entities that
passed right after such a run (``publish_passing``), and the recalculation planner (the sensor,
``regcalc recalc``) never plans publication for a held partition, publishes the passing ones of a
run it stopped, and releases a held one once an acknowledgment names its failed evaluation. The
loaders refuse a held partition (``refuse_held``), so a run that selects them without
``liquidity_metrics`` cannot publish it either.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from regcalc_core.errors import RegcalcInputError

IMPACT_CHECK = "adjustment_impact_within_limits"
METRICS = "liquidity_metrics"
IMPACT_METADATA = "impact"  # the evaluation's JSON impact record (regcalc_core.circuit_breaker.impact_record)


def check_key() -> dg.AssetCheckKey:
    return dg.AssetCheckKey(dg.AssetKey(METRICS), IMPACT_CHECK)


def check_spec(partitions_def) -> dg.AssetCheckSpec:
    """The blocking, per-partition check spec (a partitioned check spec is a Dagster preview
    feature; its warning would be printed by every command, so it is silenced here)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dg.AssetCheckSpec(
            IMPACT_CHECK, asset=METRICS, blocking=True, partitions_def=partitions_def,
            description="Circuit breaker: the approved rules move no ratio of the entity, base to adjusted, by more "
                        "than its limit (regcalc_core/thresholds), unless an approver who made none of them "
                        "acknowledged that impact (`regcalc rules acknowledge`). Blocking: a held entity is not "
                        "published.")


class HeldByCircuitBreakerError(RegcalcInputError):
    """A loader was asked to publish a partition that the circuit breaker holds back."""


@dataclass(frozen=True)
class BreakerState:
    """The latest evaluation of the check for one partition."""

    partition: str
    passed: bool
    current: bool  # it evaluated the partition's latest materialization of liquidity_metrics
    run_id: str

    @property
    def held(self) -> bool:
        return not self.passed and self.current


def _completed(failed_only: bool = False):
    """The statuses of an evaluated check (Dagster's record statuses: internal, no public name)."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus as S

    return {S.FAILED} if failed_only else {S.SUCCEEDED, S.FAILED}


def latest_evaluation(instance, partition: str):
    """The latest completed evaluation record of the check for ``partition`` (None if never)."""
    from dagster._core.event_api import PartitionKeyFilter

    records = instance.event_log_storage.get_asset_check_execution_history(
        check_key(), limit=1, status=_completed(), partition_filter=PartitionKeyFilter(key=partition))
    return records[0] if records else None


def _target_storage_id(record) -> int | None:
    evaluation = record.event.dagster_event.event_specific_data if record.event else None
    target = getattr(evaluation, "target_materialization_data", None)
    return target.storage_id if target else None


def states(instance, partitions: list[str] | None = None) -> dict[str, BreakerState]:
    """{partition: BreakerState} for every partition the check ever evaluated (of ``partitions``)."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus as S

    out = {}
    for info in instance.event_log_storage.get_asset_check_partition_info([check_key()], partition_keys=partitions):
        if info.partition_key is None:
            continue
        if info.latest_execution_status in _completed():
            out[info.partition_key] = BreakerState(info.partition_key, info.latest_execution_status == S.SUCCEEDED,
                                                   info.is_current, info.latest_planned_run_id)
            continue
        record = latest_evaluation(instance, info.partition_key)  # a later run planned it, never evaluated it
        if record is not None:
            target = _target_storage_id(record)
            current = info.latest_materialization_storage_id is None or target == info.latest_materialization_storage_id
            out[info.partition_key] = BreakerState(info.partition_key, record.status == S.SUCCEEDED, current,
                                                   record.run_id)
    return out


def refuse_held(instance, partitions: list[tuple[str, str]]) -> None:
    """Raise HeldByCircuitBreakerError naming the partitions the circuit breaker holds back."""
    keys = [f"{date}|{entity}" for date, entity in partitions]
    held = sorted(k for k, s in states(instance, keys).items() if s.held)
    if held:
        raise HeldByCircuitBreakerError(
            f"held back by the circuit breaker ({IMPACT_CHECK}): {', '.join(held)}; an approver acknowledges the "
            "impact with `regcalc rules acknowledge`, then a run with liquidity_metrics publishes it")


def downstream_of_metrics(asset_graph) -> set[dg.AssetKey]:
    """Every materializable asset that depends, directly or not, on liquidity_metrics: what its
    blocking checks stop."""
    root = dg.AssetKey(METRICS)
    below: set[dg.AssetKey] = set()
    for key in asset_graph.toposorted_asset_keys:
        node = asset_graph.get(key)
        if node.is_materializable and any(p == root or p in below for p in node.parent_keys):
            below.add(key)
    return below


def held_in_run(result) -> dict[str, str] | None:
    """For a finished in-process run: {entity: why} of the entities the circuit breaker held back,
    when that is the only reason the run failed (the step liquidity_metrics failed on its blocking
    checks, and only this check failed); None when the run failed otherwise (or succeeded)."""
    if result.success:
        return None
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    if len(failures) != 1 or failures[0].step_key != METRICS:
        return None
    if failures[0].event_specific_data.error.cls_name != "DagsterAssetCheckFailedError":
        return None
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    if not failed or any(e.check_name != IMPACT_CHECK or not e.partition for e in failed):
        return None
    return {e.partition.split("|", 1)[1]: e.description or "" for e in failed}


def undone_in_run(instance, run_id: str) -> set[dg.AssetKey]:
    """The assets a run planned and never materialized: after a run the circuit breaker stopped,
    what it left undone (everything below liquidity_metrics, and the assets that share a step
    with them, such as the dbt seeds of the reporting step)."""
    planned, done = set(), set()
    for entry in instance.all_logs(run_id, of_type={dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                                                    dg.DagsterEventType.ASSET_MATERIALIZATION}):
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            planned.add(event.event_specific_data.asset_key)
        else:
            done.add(event.asset_key)
    return planned - done


def publish_passing(job, instance, held: dict[str, str], entities: list[str], run_id: str, tags: dict,
                    run_config: dict) -> list:
    """After run ``run_id`` of ``entities``, which the circuit breaker stopped holding back
    ``held`` (``held_in_run``): make what it left undone (``undone_in_run``) for the entities that
    passed, one run per contiguous range of entity partitions. Returns the results of the runs
    made (it stops at the first that fails)."""
    from regcalc_assets.partitions import ENTITY_PARTITIONS, contiguous_groups, date_range_tags

    keys = sorted(undone_in_run(instance, run_id))
    passing = set(entities) - set(held)
    business_date = tags["regcalc/business_date"]
    results = []
    for group in contiguous_groups(instance.get_dynamic_partitions(ENTITY_PARTITIONS), passing) if keys else []:
        results.append(job.execute_in_process(
            instance=instance, run_config=run_config, asset_selection=keys, raise_on_error=False,
            tags={**tags, **date_range_tags(business_date, group[0], group[-1])}))
        if not results[-1].success:
            break
    return results


def _run_partitions(instance, run) -> list[str]:
    from regcalc_assets.partitions import run_partitions

    return [f"{d}|{e}" for d, e in run_partitions(instance, run.tags)]


def adjust_plan(instance, asset_graph, stale: dict[str, set[str]], latest: dict[str, dict[str, int]],
                released_runs: set[tuple[str, str]], dates: set[str] | None) -> tuple[dict[tuple[str, str], str], set[str]]:
    """Make the recalculation plan respect the circuit breaker (``stale`` is changed in place):

    - a held partition whose liquidity_metrics is not itself recomputed gets nothing below it;
    - a held partition that an acknowledgment released (``released_runs`` holds (partition, run
      id of the failed evaluation it acknowledged)) gets liquidity_metrics, hence the check, again
      and everything below it that the held run had selected;
    - a partition that passed in a run the breaker stopped gets what that run left undone.

    Returns ({(date, entity): marker} for the released partitions, so that a sensor's run key
    differs from the held run's; the unpartitioned assets below liquidity_metrics those runs had
    selected)."""
    scope = None if dates is None else [pk for pk in latest.get(METRICS, {}) if pk.split("|", 1)[0] in dates]
    found = states(instance, scope)
    stopped = {r.run_id for r in instance.event_log_storage.get_asset_check_execution_history(  # runs it stopped
        check_key(), limit=10_000, status=_completed(failed_only=True))}
    runs: dict[str, tuple[set[str], set[str], set[str]]] = {}

    def undone(run_id: str) -> tuple[set[str], set[str], set[str]]:
        """(partitioned assets, unpartitioned assets) the run left undone, and its partitions."""
        if run_id not in runs:
            run = instance.get_run_by_id(run_id)
            keys = {k for k in undone_in_run(instance, run_id) if asset_graph.has(k)} if run else set()
            runs[run_id] = ({k.to_user_string() for k in keys if asset_graph.get(k).partitions_def is not None},
                            {k.to_user_string() for k in keys if asset_graph.get(k).partitions_def is None},
                            set(_run_partitions(instance, run)) if run else set())
        return runs[run_id]

    markers: dict[tuple[str, str], str] = {}
    extra_whole: set[str] = set()
    metrics_latest = latest.get(METRICS, {})
    below = {k.to_user_string() for k in downstream_of_metrics(asset_graph)}
    for pk, state in found.items():
        if dates is not None and pk.split("|", 1)[0] not in dates:
            continue
        if state.held and (pk, state.run_id) in released_runs:
            partitioned, whole, _ = undone(state.run_id)
            stale.setdefault(METRICS, set()).add(pk)
            for asset in partitioned:
                stale.setdefault(asset, set()).add(pk)
            extra_whole |= whole
            markers[tuple(pk.split("|", 1))] = f"released:{pk}:{state.run_id}"
        elif state.held and pk not in stale.get(METRICS, set()):
            for asset in below:
                stale.get(asset, set()).discard(pk)
        elif state.passed and state.current and state.run_id in stopped:
            partitioned, whole, partitions = undone(state.run_id)
            left = {a for a in partitioned if latest.get(a, {}).get(pk, 0) < metrics_latest.get(pk, 0)} if pk in partitions else set()
            for asset in left:
                stale.setdefault(asset, set()).add(pk)
            if left:
                extra_whole |= whole
    return markers, extra_whole


def released(store) -> set[tuple[str, str]]:
    """(partition, run id) of every failed evaluation an acknowledgment in the rule store names."""
    return {(f"{a.business_date}|{a.entity_id}", str(a.body["check_run_id"]))
            for a in store.acknowledgments() if isinstance(a.body, dict) and a.body.get("check_run_id")}


def held_impact(instance, business_date: str, entity_id: str) -> tuple[dict, str]:
    """(the impact record, the run id) of the failed evaluation that holds ``entity_id`` back on
    ``business_date``: what an acknowledgment accepts. A RegcalcInputError says why there is none."""
    key = f"{business_date}|{entity_id}"
    record = latest_evaluation(instance, key)
    if record is None:
        raise RegcalcInputError(f"no circuit-breaker result for {entity_id} on {business_date}: "
                                f"run `regcalc eod --date {business_date}` first")
    evaluation = record.event.dagster_event.event_specific_data
    state = states(instance, [key]).get(key)
    if evaluation.passed:
        raise RegcalcInputError(f"{entity_id} on {business_date} is not held back: {evaluation.description}")
    if state is None or not state.current:
        raise RegcalcInputError(f"the figures of {entity_id} on {business_date} were recomputed after the circuit "
                                f"breaker held them back: run `regcalc recalc --date {business_date}` to judge them again")
    impact = evaluation.metadata.get(IMPACT_METADATA)
    if impact is None:
        raise RegcalcInputError(f"the circuit-breaker result of {entity_id} on {business_date} has no impact record")
    return dict(impact.value), record.run_id
