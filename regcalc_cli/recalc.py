"""`regcalc recalc`: observe the sources, then recompute exactly the stale partitions, without the daemon."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class RecalcResult:
    recomputed: dict[str, list[str]]  # asset -> partition keys recomputed
    reused: int
    changed_sources: dict[str, list[str]]  # source -> partition keys with a new version
    run_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    success: bool = True
    error: str | None = None
    input_error: bool = False  # the failure is bad input or a busy resource (exit code 2)
    held: dict[str, str] = field(default_factory=dict)  # date|entity -> why the circuit breaker holds it back

    @property
    def recomputed_count(self) -> int:
        return sum(len(v) for v in self.recomputed.values())

    @property
    def hit_rate(self) -> float:
        total = self.recomputed_count + self.reused
        return self.reused / total if total else 1.0


def run_recalc(instance, landing: str, dates: list[str] | None = None) -> RecalcResult:
    """Observe every source, plan what is stale (the partitions whose consumed source version
    changed, and everything downstream of them), and materialize it in as few runs as possible.
    Each date is held (``date_lock``) while its runs are made, as an EOD holds it. The plan
    respects the circuit breaker (a held partition is not published; an acknowledged one is
    recomputed from liquidity_metrics); entities held back by a run are in ``RecalcResult.held``."""
    import os
    from itertools import groupby

    import dagster as dg

    from regcalc_assets.definitions import build_definitions
    from regcalc_assets.sources import recalc
    from regcalc_assets.sources.versions import observe
    from regcalc_cli.date_lock import business_date_lock
    from regcalc_cli.eod import failure_summary, quiet_run_config

    from regcalc_assets.circuit_breaker import held_in_run, publish_passing, released
    from regcalc_resources import build_rule_store, resolved

    os.environ["REGCALC_LANDING"] = landing
    started = time.perf_counter()
    store = resolved(build_rule_store())
    current, changed = observe(instance, landing, dates, store)
    defs = build_definitions()
    plan = recalc.plan(instance, defs.resolve_asset_graph(), current, set(dates) if dates else None, released(store))
    result = RecalcResult({a: sorted(k) for a, k in plan.stale.items() if k}, plan.reused,
                          {s: sorted(v) for s, v in changed.items()})
    for business_date, runs in groupby(plan.runs, key=lambda r: r.business_date):  # planned in date order
        with business_date_lock(instance, business_date, "recalc") as lock:  # never beside an EOD of the date
            for run in runs:
                tags = {**run.tags(), **plan.summary_tags(), **lock.tags}
                selection = [dg.AssetKey(a) for a in run.assets]
                if run.entities:
                    outcome = defs.resolve_job_def("eod_job").execute_in_process(
                        instance=instance, run_config=quiet_run_config(), tags=tags, asset_selection=selection,
                        raise_on_error=False)
                else:
                    outcome = defs.resolve_job_def("unassigned_positions_job").execute_in_process(
                        instance=instance, run_config=quiet_run_config(), tags=tags, asset_selection=selection,
                        partition_key=run.business_date, raise_on_error=False)
                result.run_ids.append(outcome.run_id)
                stopped = held_in_run(outcome) if run.entities else None
                if stopped is not None:  # the circuit breaker held entities back: publish the others now
                    result.held.update({f"{business_date}|{e}": why for e, why in stopped.items()})
                    follow_ups = publish_passing(defs.resolve_job_def("eod_job"), instance, stopped, run.entities,
                                                 outcome.run_id, tags, quiet_run_config())
                    result.run_ids += [r.run_id for r in follow_ups]
                    outcome = follow_ups[-1] if follow_ups else None
                if outcome is not None and not outcome.success:
                    result.success = False
                    result.error, result.input_error = failure_summary(outcome)
                    break
        if not result.success:
            break
    result.seconds = time.perf_counter() - started
    return result


def render(result: RecalcResult) -> str:
    lines = []
    for source, keys in sorted(result.changed_sources.items()):
        lines.append(f"new version: {source} {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}")
    if not result.recomputed:
        lines.append("nothing is stale")
    for asset, keys in sorted(result.recomputed.items()):
        lines.append(f"recomputed: {asset} {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}")
    for key, why in sorted(result.held.items()):
        date, entity = key.split("|", 1)
        lines.append(f"held back: {entity} on {date}, {why}")
    lines.append(f"{result.recomputed_count} partition(s) recomputed, {result.reused} reused "
                 f"(cache hit rate {result.hit_rate:.1%}) in {len(result.run_ids)} run(s), {result.seconds:.1f}s")
    return "\n".join(lines)
