"""Reporting-layer benchmark: the dbt build (marts, aggregates, disclosures) and the dashboard for
20 entities over the twelve month-ends of 2024 plus daily dates in December, against the EOD.

    python benchmarks/reporting_benchmark.py [--entities 20] [--positions 20000] [--daily 5] [--repeats 3]

In one fresh $REGCALC_HOME, each command a fresh process (as a user runs them):
  * every date but the last through `regcalc eod` with REGCALC_REPORTING=off (the baseline: the
    EOD time per date, star schema included);
  * the last date with the reporting layer on: its first build takes every stored date (the full
    build), then `repeats` more EODs of that date (the incremental build of one date); the dbt
    step's own seconds come from the run's step statistics;
  * `regcalc dashboard` over the whole range, `repeats` times.
Prints JSON: medians, and the dbt step and the dashboard as shares of the median EOD time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.eod_benchmark import machine, run_measured, step_seconds  # noqa: E402


def month_ends(year: int) -> list[dt.date]:
    days = []
    for month in range(1, 13):
        day = (dt.date(year + month // 12, month % 12 + 1, 1)) - dt.timedelta(days=1)
        while day.weekday() >= 5:
            day -= dt.timedelta(days=1)
        days.append(day)
    return days


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20)
    parser.add_argument("--positions", type=int, default=20_000, help="positions per business date")
    parser.add_argument("--daily", type=int, default=5, help="business dates in December besides its month-end")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "reporting_benchmark.json"))
    args = parser.parse_args(argv)

    from regcalc_assets.landing.generate import business_dates, generate_landing

    ends = month_ends(2024)
    daily = [d for d in business_dates(dt.date(2024, 12, 2), 25) if d.month == 12 and d not in ends][:args.daily]
    dates = sorted(set(ends) | set(daily))
    home = Path(tempfile.mkdtemp(prefix="regcalc-bench-reporting-"))
    landing = home / "landing"
    for day in dates:
        generate_landing(landing, day, 1, args.entities, args.positions, seed=5)
    py = sys.executable
    env = {**{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}, "REGCALC_HOME": str(home),
           "REGCALC_ENGINE": "duckdb", "REGCALC_STAR": "on"}
    eod = lambda day, reporting: run_measured(  # noqa: E731
        [py, "-m", "regcalc_cli.main", "eod", "--date", day.isoformat(), "--landing", str(landing)],
        {**env, "REGCALC_REPORTING": reporting})["seconds"]

    eod_seconds = [eod(day, "off") for day in dates[:-1]]
    full_eod = eod(dates[-1], "on")
    full_step = step_seconds(home, "reporting_models")
    incremental = []
    for _ in range(args.repeats):
        seconds = eod(dates[-1], "on")
        incremental.append((seconds, step_seconds(home, "reporting_models")))
    dashboard = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        subprocess.run([py, "-m", "regcalc_cli.main", "dashboard", "--from", dates[0].isoformat(), "--to",
                        dates[-1].isoformat(), "--out", str(home / "dashboard.html")], env=env, check=True,
                       capture_output=True)
        dashboard.append(time.perf_counter() - started)

    eod_median = statistics.median(eod_seconds)
    step_median = statistics.median(s for _, s in incremental)
    report = {
        "benchmark": "reporting",
        "machine": machine(),
        "entities": args.entities, "positions_per_date": args.positions, "business_dates": len(dates),
        "month_ends": len(ends), "daily_dates": len(daily),
        "eod_reporting_off_median_seconds": round(eod_median, 3),
        "dbt_full_build_seconds": round(full_step, 3), "dbt_full_build_eod_seconds": round(full_eod, 3),
        "dbt_incremental_step_median_seconds": round(step_median, 3),
        "dbt_incremental_all_seconds": [round(s, 3) for _, s in incremental],
        "eod_reporting_on_median_seconds": round(statistics.median(e for e, _ in incremental), 3),
        "dbt_step_share_of_eod": round(step_median / statistics.median(e for e, _ in incremental), 3),
        "dbt_full_build_ratio_to_eod": round(full_step / eod_median, 3),
        "dashboard_median_seconds": round(statistics.median(dashboard), 3),
        "dashboard_all_seconds": [round(s, 3) for s in dashboard],
        "dashboard_ratio_to_eod": round(statistics.median(dashboard) / eod_median, 3),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
