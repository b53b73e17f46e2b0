"""Declarative automation against the recalculation planner: what each asks to recompute, and at what cost.

    python benchmarks/automation_benchmark.py [--positions 20000] [--entities 20] [--repeats 3]

One date of the eod_benchmark landing zone (cached under benchmarks/results/). After a full EOD,
a deal-stage rule scoped to one entity is approved and the sources are observed as the sensor
observes them (a new data version for exactly that entity's deal_rules partition). Then, on the
same instance:

* planner: ``regcalc_assets.sources.recalc.plan`` (what ``recalc_sensor`` runs each tick);
* automation: Dagster's ``AutomationCondition.eager()`` on every stage asset, with the latest-time-
  window restriction removed (a past business date must be recalculated too), evaluated with
  ``dg.evaluate_automation_conditions`` from the cursor of a tick taken before the observation.

Prints JSON: per side, the (asset, partition) pairs requested, the runs they would start, and
the median evaluation time; plus whether both request the same partitions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.eod_benchmark import DATE, landing_for, machine, run_measured, write_report  # noqa: E402


def with_eager(defs):
    """The same definitions, every materializable asset under eager() for any time window."""
    import dagster as dg

    condition = dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
    assets = [a.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=condition))
              if isinstance(a, dg.AssetsDefinition) and a.is_materializable else a for a in defs.assets]
    return dg.Definitions(assets=assets, jobs=defs.jobs, resources=defs.resources)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=20_000)
    parser.add_argument("--entities", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "automation_benchmark.json"))
    args = parser.parse_args(argv)

    landing = landing_for(args.positions, args.entities)
    home = Path(tempfile.mkdtemp(prefix="regcalc-automation-bench-"))
    os.environ.update({"REGCALC_HOME": str(home), "REGCALC_ENGINE": "duckdb", "REGCALC_LANDING": str(landing)})
    os.environ.pop("DAGSTER_HOME", None)
    eod = run_measured([sys.executable, "-m", "regcalc_cli.main", "eod", "--date", DATE], dict(os.environ))

    import dagster as dg

    from regcalc_assets.definitions import build_definitions
    from regcalc_assets.partitions import ENTITY_PARTITIONS
    from regcalc_assets.sources import recalc
    from regcalc_assets.sources.versions import changed_versions, current_versions, observations
    from regcalc_cli.instance import get_instance
    from regcalc_resources.rule_store import DuckDBRuleStore

    instance = get_instance()
    defs = build_definitions()
    eager_defs = with_eager(defs)
    baseline = dg.evaluate_automation_conditions(defs=eager_defs, instance=instance)  # the tick before

    store = DuckDBRuleStore(path=str(home / "rules.duckdb"))
    entity = instance.get_dynamic_partitions(ENTITY_PARTITIONS)[0]
    store.submit([{"rule_id": "AUTOMATION_BENCH", "stage": "deal_enrichment", "description": "one entity",
                  "conditions": [{"field": "entity_id", "operator": "==", "value": entity}],
                  "adjustments": [{"field": "rsf_factor", "operation": "multiply", "value": 0.9}],
                  "effective_date": DATE}], user="analyst_a")
    store.approve("AUTOMATION_BENCH", user="risk_admin")
    current = current_versions(store.approved_rules(), str(landing), instance.get_dynamic_partitions(ENTITY_PARTITIONS))
    for event in observations(changed_versions(instance, current)):
        instance.report_runless_asset_event(event)

    graph = defs.resolve_asset_graph()
    planner_seconds, automation_seconds = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        plan = recalc.plan(instance, graph, current)
        planner_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        evaluated = dg.evaluate_automation_conditions(defs=eager_defs, instance=instance, cursor=baseline.cursor)
        automation_seconds.append(time.perf_counter() - started)
    planned = sorted((a, pk) for a, keys in plan.stale.items() for pk in keys)
    requested = sorted((key.to_user_string(), str(pk)) for result in evaluated.results
                       for key in [result.key] for pk in result.true_subset.expensively_compute_partition_keys())
    report = {
        "benchmark": "automation_vs_planner", "machine": machine(), "positions": args.positions,
        "entities": args.entities, "repeats": args.repeats, "eod_seconds": round(eod["seconds"], 2),
        "scenario": f"one deal_enrichment rule approved for {entity} on {DATE}",
        "planner": {"median_seconds": round(statistics.median(planner_seconds), 4), "partitions": len(planned),
                    "runs": len(plan.runs), "run_assets": [r.assets for r in plan.runs][:5]},
        "automation": {"median_seconds": round(statistics.median(automation_seconds), 4),
                       "partitions": len(requested), "runs_requested": len(evaluated.run_requests) if hasattr(
                           evaluated, "run_requests") else None},
        "same_partitions": planned == requested,
        "only_planner": planned[:0] if planned == requested else sorted(set(planned) - set(requested))[:20],
        "only_automation": [] if planned == requested else sorted(set(requested) - set(planned))[:20],
    }
    report["automation_to_planner"] = round(report["automation"]["median_seconds"] / report["planner"]["median_seconds"], 2)
    return write_report(report, args.out)


if __name__ == "__main__":
    main()
