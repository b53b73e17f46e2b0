"""Recalculation benchmark: after a full EOD, approve a rule and time `regcalc recalc` to updated figures.

    python benchmarks/recalc_benchmark.py [--positions 2000000] [--entities 20] [--scopes 1 5 20] [--repeats 3]

One date, the landing zone of eod_benchmark.py (cached under benchmarks/results/). The full EOD
is timed once per repeat in a fresh $REGCALC_HOME; then, for each scope, a deal-stage rule on
that many entities (loans of those entities, RSF factor x 0.9) is approved and `regcalc recalc`
is timed in a fresh process; the rule is retired and recalculated away (untimed) before the next
scope. Prints JSON: medians, the ratio of each recalculation to the full EOD of the same run,
the partitions recomputed and reused, and the time per recomputed entity.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.eod_benchmark import DATE, landing_for, machine, run_measured, write_report  # noqa: E402


def scoped_rule(entities: list[str], rule_id: str) -> dict:
    return {"rule_id": rule_id, "stage": "deal_enrichment", "description": f"benchmark overlay on {len(entities)} entities",
            "conditions": [{"field": "entity_id", "operator": "in", "value": entities},
                           {"field": "product", "operator": "==", "value": "LOAN"}],
            "adjustments": [{"field": "rsf_factor", "operation": "multiply", "value": 0.9}],
            "effective_date": DATE, "expiry_date": DATE}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=2_000_000)
    parser.add_argument("--entities", type=int, default=20)
    parser.add_argument("--scopes", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "recalc_benchmark.json"))
    args = parser.parse_args(argv)

    from regcalc_resources.rule_store import DuckDBRuleStore

    landing = landing_for(args.positions, args.entities)
    ids = [f"LE_{i:03d}" for i in range(1, args.entities + 1)]
    py = sys.executable
    eod_seconds, samples = [], {n: [] for n in args.scopes}
    for repeat in range(args.repeats):
        home = Path(tempfile.mkdtemp(prefix="regcalc-recalc-bench-"))
        env = {**os.environ, "REGCALC_HOME": str(home), "REGCALC_ENGINE": "duckdb", "REGCALC_LANDING": str(landing)}
        env.pop("DAGSTER_HOME", None)
        eod_seconds.append(run_measured([py, "-m", "regcalc_cli.main", "eod", "--date", DATE], env)["seconds"])
        store = DuckDBRuleStore(path=str(home / "rules.duckdb"))
        for n in args.scopes:
            rule_id = f"BENCH_SCOPE_{n}_{repeat}"
            store.submit([scoped_rule(ids[:n], rule_id)], "bench_analyst")
            store.approve(rule_id, "bench_approver")
            sample = run_measured([py, "-m", "regcalc_cli.main", "recalc", "--format", "json"], env)
            report = json.loads(sample["stdout"])
            samples[n].append({"seconds": sample["seconds"], "peak_rss_mib": sample["peak_rss_mib"],
                               "recomputed": sum(len(v) for v in report["recomputed"].values()),
                               "reused": report["reused"], "runs": len(report["run_ids"])})
            store.retire(rule_id, "bench_analyst")
            store.approve(rule_id, "bench_approver")
            run_measured([py, "-m", "regcalc_cli.main", "recalc"], env)  # back to no rule, untimed
        shutil.rmtree(home, ignore_errors=True)

    eod = statistics.median(eod_seconds)
    cases = {}
    for n, runs in samples.items():
        secs = statistics.median(r["seconds"] for r in runs)
        cases[f"recalc_{n}_entities"] = {
            "median_seconds": round(secs, 3),
            "all_seconds": [round(r["seconds"], 3) for r in runs],
            "ratio_to_full_eod": round(secs / eod, 3),
            "partitions_recomputed": runs[0]["recomputed"],
            "partitions_reused": runs[0]["reused"],
            "runs": runs[0]["runs"],
            "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
        }
    smallest, largest = min(args.scopes), max(args.scopes)
    report = {
        "benchmark": "recalc",
        "business_date": DATE,
        "positions": args.positions,
        "entities": args.entities,
        "repeats": args.repeats,
        "machine": machine(),
        "full_eod": {"median_seconds": round(eod, 3), "all_seconds": [round(s, 3) for s in eod_seconds]},
        "cases": cases,
        "marginal_seconds_per_entity": round(
            (cases[f"recalc_{largest}_entities"]["median_seconds"] - cases[f"recalc_{smallest}_entities"]["median_seconds"])
            / (largest - smallest), 3) if largest > smallest else None,
    }
    return write_report(report, args.out)


if __name__ == "__main__":
    main()
