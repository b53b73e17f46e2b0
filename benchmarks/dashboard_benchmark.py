"""Dashboard benchmark: `regcalc dashboard` over 20 entities, 12 month-ends plus daily dates,
against `regcalc report` for the same dates, measured in the same run.

    python benchmarks/dashboard_benchmark.py [--entities 20] [--month-ends 12] [--daily 5]
        [--positions 20000] [--rules 50] [--repeats 3] [--home DIR]

The home: for each month-end of 2024 (the last business day of each month, the last
``--month-ends`` of them) plus the first ``--daily`` business days of December (the dates of
``reporting_benchmark.py``), a
landing zone of ``--positions`` positions, ``--rules`` approved benchmark rules across the three
stages (``rule_sets.py``, so the waterfall has steps), then `regcalc eod` for every date (lineage
on, star off). Building it takes minutes (one EOD per date), so it is kept in ``--home``
(default: a directory under the system temp dir named by the parameters) and reused while its
marker says it is complete.

Timed, each in a fresh process, ``--repeats`` times, alternating: `regcalc dashboard --from
FIRST --to LAST` (the page) and the baseline, `regcalc report --date D --format json` for each
date of the range one after another (the same figures, as the command line gives them); also
one `regcalc report` alone (a command's fixed cost). Prints JSON: medians and the ratio of the
dashboard to the baseline, kept in ``results/dashboard_benchmark.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.eod_benchmark import machine, run_measured, write_report  # noqa: E402

YEAR = 2024


def month_ends(count: int, year: int = YEAR) -> list[str]:
    """The last business day (Monday to Friday) of the last ``count`` months of ``year``."""
    out = []
    for month in range(13 - count, 13):
        day = dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)
        while day.weekday() >= 5:
            day -= dt.timedelta(days=1)
        out.append(day.isoformat())
    return out


def daily(last_month_end: str, count: int) -> list[str]:
    """The first ``count`` business days of the last month-end's month, besides the month-end."""
    end = dt.date.fromisoformat(last_month_end)
    day, out = end.replace(day=1), []
    while len(out) < count and day < end:
        if day.weekday() < 5:
            out.append(day.isoformat())
        day += dt.timedelta(days=1)
    return out


def bench_dates(month_end_count: int, daily_count: int) -> list[str]:
    """The month-ends plus the daily dates (as ``reporting_benchmark.py`` takes them: 2024's twelve
    month-ends and the first business days of December)."""
    ends = month_ends(month_end_count)
    return sorted(set(ends) | set(daily(ends[-1], daily_count)))


def environment(home: Path, landing: Path) -> dict:
    env = {**os.environ, "REGCALC_HOME": str(home), "REGCALC_ENGINE": "duckdb", "REGCALC_LANDING": str(landing),
           "REGCALC_STAR": "off"}
    for name in ("DAGSTER_HOME", "REGCALC_WAREHOUSE_DSN", "REGCALC_STORAGE_ROOT", "REGCALC_WAREHOUSE_PATH", "REGCALC_RULES_DSN"):
        env.pop(name, None)
    return env


def prepare_home(home: Path, dates: list[str], entities: int, positions: int, rules: int) -> dict:
    """Landing zone, approved rules and one EOD per date in ``home``, unless its marker says it is
    already built with these parameters. Returns the marker (parameters, seconds it took)."""
    params = {"dates": dates, "entities": entities, "positions": positions, "rules": rules}
    marker = home / "dashboard-bench.json"
    if marker.exists() and json.loads(marker.read_text()).get("params") == params:
        return json.loads(marker.read_text())
    from benchmarks.rule_sets import approve_all, benchmark_rules
    from regcalc_assets.landing.generate import generate_landing
    from regcalc_resources.rule_store import DuckDBRuleStore

    shutil.rmtree(home, ignore_errors=True)
    landing = home / "landing"
    started = time.perf_counter()
    for date in dates:
        generate_landing(landing, dt.date.fromisoformat(date), 1, entities, positions, seed=2024)
    home.mkdir(parents=True, exist_ok=True)
    if rules:
        approve_all(DuckDBRuleStore(path=str(home / "rules.duckdb")), benchmark_rules(rules, entities))
    env = environment(home, landing)
    eods = []
    for date in dates:
        eods.append(run_measured([sys.executable, "-m", "regcalc_cli.main", "eod", "--date", date], env)["seconds"])
        print(f"eod {date}: {eods[-1]:.1f}s", file=sys.stderr)
    built = {"params": params, "build_seconds": round(time.perf_counter() - started, 1),
             "eod_median_seconds": round(statistics.median(eods), 2)}
    marker.write_text(json.dumps(built, indent=2))
    return built


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20)
    parser.add_argument("--month-ends", type=int, default=12)
    parser.add_argument("--daily", type=int, default=5, help="business days of the last month besides its month-end")
    parser.add_argument("--positions", type=int, default=20_000, help="positions per business date")
    parser.add_argument("--rules", type=int, default=50, help="approved benchmark rules (waterfall steps)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--home", default=None, help="where to build (or find) the benchmark's home")
    parser.add_argument("--out", default=str(HERE / "results" / "dashboard_benchmark.json"))
    args = parser.parse_args(argv)

    dates = bench_dates(args.month_ends, args.daily)
    name = f"regcalc-dashboard-bench-{args.entities}e-{len(dates)}d-{args.positions}p-{args.rules}r"
    home = Path(args.home or Path(tempfile.gettempdir()) / name)
    built = prepare_home(home, dates, args.entities, args.positions, args.rules)
    env = environment(home, home / "landing")
    py = [sys.executable, "-m", "regcalc_cli.main"]
    page = home / "dashboard.html"
    samples: dict[str, list[float]] = {"dashboard": [], "report_all_dates": [], "report_one_date": []}
    for _ in range(args.repeats):
        samples["dashboard"].append(run_measured(py + ["dashboard", "--from", dates[0], "--to", dates[-1],
                                                       "--out", str(page)], env)["seconds"])
        started = time.perf_counter()
        for date in dates:
            run_measured(py + ["report", "--date", date, "--format", "json"], env)
        samples["report_all_dates"].append(time.perf_counter() - started)
        samples["report_one_date"].append(run_measured(py + ["report", "--date", dates[-1], "--format", "json"], env)["seconds"])
    med = {k: statistics.median(v) for k, v in samples.items()}
    report = {
        "benchmark": "dashboard",
        "machine": machine(),
        "entities": args.entities,
        "dates": len(dates),
        "first_date": dates[0],
        "last_date": dates[-1],
        "positions_per_date": args.positions,
        "rules": args.rules,
        "repeats": args.repeats,
        "home_build": built,
        "page_bytes": page.stat().st_size,
        "cases": {k: {"median_seconds": round(m, 3), "all_seconds": [round(s, 3) for s in samples[k]]}
                  for k, m in med.items()},
        "baseline": "report_all_dates: `regcalc report --format json` for each date of the range, one process each",
        "ratio_dashboard_to_report_all_dates": round(med["dashboard"] / med["report_all_dates"], 3),
        "ratio_dashboard_to_report_one_date": round(med["dashboard"] / med["report_one_date"], 3),
    }
    return write_report(report, args.out)


if __name__ == "__main__":
    main()
