"""EOD benchmark: `regcalc eod` for one date against the same calculation done directly in DuckDB SQL.

    python benchmarks/eod_benchmark.py [--positions 2000000 20000000] [--entities 20]
                                       [--engines duckdb spark] [--repeats 3] [--rules 0 50 1000]
                                       [--lineage on off] [--star on off] [--reporting on off]

For each size: generates a landing zone (cached under benchmarks/results/landing-<n>), then per
repeat times, each in a fresh process and a fresh $REGCALC_HOME:
  * baseline: benchmarks/baseline_sql.py (an independent implementation of the spec in DuckDB SQL)
  * regcalc eod on each engine (Dagster runs, stage storage, warehouse load; the whole command),
    once per rule-set size: with no rules, and with N approved rules across the three stages
    (benchmarks/rule_sets.py, e.g. 50 or 1,000; submitted and approved before the timed command,
    which for 1,000 rules takes about half a minute), with the
    lineage asset and its warehouse table on and off (REGCALC_LINEAGE), and with the star schema
    (its assets and warehouse tables) on and off (REGCALC_STAR), and with the dbt reporting layer
    (marts, aggregates, disclosures) on and off (REGCALC_REPORTING; its step's own seconds are
    read from the run's step statistics)
Wall time and peak memory (RSS summed over the process tree, the Spark JVM included) are
measured from outside. Prints JSON: medians, positions per second, ratios to the baseline of the
same run, and the growth of cost from the smallest to the largest size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # `benchmarks.rule_sets` when run as a script
DATE = "2024-06-28"


def run_measured(cmd: list[str], env: dict) -> dict:
    """Wall seconds and peak tree RSS (MiB) of a command, polled every 50 ms."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}")
    return {"seconds": seconds, "peak_rss_mib": peak / 2**20, "stdout": out}


def landing_for(positions: int, entities: int) -> Path:
    root = HERE / "results" / f"landing-{entities}e-{positions}"
    if not (root / f"business_date={DATE}" / "positions.parquet").exists():
        from regcalc_assets.landing.generate import generate_landing
        import datetime as dt

        shutil.rmtree(root, ignore_errors=True)
        generate_landing(root, dt.date.fromisoformat(DATE), 1, entities, positions, seed=2024)
    return root


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_report(report: dict, out: str) -> dict:
    """Print the figures as JSON and keep them at ``out``."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


def median(values):
    return statistics.median(values) if values else None


def case_name(engine: str, rules: int) -> str:
    return f"regcalc_eod_{engine}" + (f"_{rules}_rules" if rules else "")


def prepare_home(home: Path, rules: int, entities: int) -> None:
    if rules:
        from benchmarks.rule_sets import approve_all, benchmark_rules
        from regcalc_resources.rule_store import DuckDBRuleStore

        approve_all(DuckDBRuleStore(path=str(home / "rules.duckdb")), benchmark_rules(rules, entities))


def table_rows(home: Path, table: str) -> int:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def trail_rows(home: Path) -> int:
    return table_rows(home, "adjustment_trail")


def step_seconds(home: Path, step: str) -> float | None:
    """Seconds of one step in the latest EOD run of ``home`` (Dagster's step statistics)."""
    code = ("import os, json; from regcalc_cli.instance import get_instance; i = get_instance(); "
            "r = [r for r in i.get_runs(limit=5) if r.job_name == 'eod_job'][0]; "
            f"print(json.dumps([s.end_time - s.start_time for s in i.get_run_step_stats(r.run_id) if s.step_key == {step!r}]))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "REGCALC_HOME": str(home)},
                         capture_output=True, text=True, check=True).stdout
    found = json.loads(out.strip().splitlines()[-1])
    return found[0] if found else None


def bench_size(positions: int, entities: int, engines: list[str], repeats: int, rule_counts: list[int],
               lineage: tuple[str, ...] = ("on",), star: tuple[str, ...] = ("on",),
               reporting: tuple[str, ...] = ("on",)) -> dict:
    landing = landing_for(positions, entities)
    py = sys.executable
    base_env = {**os.environ}
    base_env.pop("DAGSTER_HOME", None)
    samples: dict[str, list[dict]] = {"baseline_duckdb_sql": []}
    cases = [(engine, rules, mode, star_mode, rep) for engine in engines for rules in rule_counts for mode in lineage
             for star_mode in star for rep in reporting]

    def name(engine, rules, mode, star_mode="on", rep="on"):
        return case_name(engine, rules) + ("_lineage_off" if mode == "off" else "") + \
            ("_star_off" if star_mode == "off" else "") + ("_reporting_off" if rep == "off" and star_mode == "on" else "")

    for case in cases:
        samples[name(*case)] = []
    for _ in range(repeats):
        samples["baseline_duckdb_sql"].append(
            run_measured([py, str(HERE / "baseline_sql.py"), "--landing", str(landing), "--date", DATE], base_env)
        )
        for engine, rules, mode, star_mode, rep in cases:
            if star_mode == "off" and rep == "off" and "on" in reporting:
                continue  # the reporting layer needs the star: one star-off case
            home = Path(tempfile.mkdtemp(prefix=f"regcalc-bench-{engine}-"))
            prepare_home(home, rules, entities)
            env = {**base_env, "REGCALC_HOME": str(home), "REGCALC_ENGINE": engine, "REGCALC_LINEAGE": mode,
                   "REGCALC_STAR": star_mode, "REGCALC_REPORTING": rep}
            sample = run_measured([py, "-m", "regcalc_cli.main", "eod", "--date", DATE, "--landing", str(landing)], env)
            sample["trail_rows"] = trail_rows(home)
            if mode == "on":
                sample["lineage_rows"] = table_rows(home, "lineage")
            if star_mode == "on" and rep == "on":
                sample["reporting_step_seconds"] = step_seconds(home, "reporting_models")
            samples[name(engine, rules, mode, star_mode, rep)].append(sample)
            shutil.rmtree(home, ignore_errors=True)
    result = {"positions": positions, "entities": entities, "repeats": repeats, "cases": {}}
    baseline = median([s["seconds"] for s in samples["baseline_duckdb_sql"]])
    for case, runs in samples.items():
        if not runs:
            continue
        secs = median([r["seconds"] for r in runs])
        result["cases"][case] = {
            "median_seconds": round(secs, 3),
            "all_seconds": [round(r["seconds"], 3) for r in runs],
            "positions_per_second": round(positions / secs),
            "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
            "ratio_to_baseline": round(secs / baseline, 2),
        }
        if "trail_rows" in runs[0]:
            result["cases"][case]["adjustment_trail_rows"] = runs[0]["trail_rows"]
        if "lineage_rows" in runs[0]:
            result["cases"][case]["lineage_rows"] = runs[0]["lineage_rows"]
        if runs[0].get("reporting_step_seconds") is not None:
            step = median([r["reporting_step_seconds"] for r in runs])
            result["cases"][case]["reporting_step_median_seconds"] = round(step, 3)
            result["cases"][case]["reporting_step_share_of_eod"] = round(step / secs, 3)
    for engine in engines:
        plain = result["cases"][case_name(engine, 0)]["median_seconds"] if 0 in rule_counts else None
        for rules in rule_counts:
            if rules and plain:
                case = result["cases"][case_name(engine, rules)]
                case["ratio_to_no_rules"] = round(case["median_seconds"] / plain, 3)
    if "off" in lineage and "on" in lineage:
        for engine, rules, _, star_mode, rep in cases:
            on, off = result["cases"][name(engine, rules, "on", star_mode, rep)], result["cases"][name(engine, rules, "off", star_mode, rep)]
            on["ratio_to_lineage_off"] = round(on["median_seconds"] / off["median_seconds"], 3)
    if "off" in star and "on" in star:  # what the star schema adds to the EOD, measured in the same run
        for engine, rules, mode, _, rep in cases:
            on, off = result["cases"][name(engine, rules, mode, "on", rep)], result["cases"][name(engine, rules, mode, "off")]
            on["ratio_to_star_off"] = round(on["median_seconds"] / off["median_seconds"], 3)
    if "off" in reporting and "on" in reporting and "on" in star:  # what the dbt reporting layer adds
        for engine, rules, mode, _, _ in cases:
            on, off = result["cases"][name(engine, rules, mode, "on", "on")], result["cases"][name(engine, rules, mode, "on", "off")]
            on["ratio_to_reporting_off"] = round(on["median_seconds"] / off["median_seconds"], 3)
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, nargs="+", default=[2_000_000])
    parser.add_argument("--entities", type=int, default=20)
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rules", type=int, nargs="+", default=[0, 50], help="approved rule-set sizes to time")
    parser.add_argument("--lineage", nargs="+", choices=["on", "off"], default=["on"],
                        help="time with the lineage asset and its warehouse table on and/or off")
    parser.add_argument("--star", nargs="+", choices=["on", "off"], default=["on"],
                        help="time with the star schema (assets and warehouse tables) on and/or off")
    parser.add_argument("--reporting", nargs="+", choices=["on", "off"], default=["on"],
                        help="time with the dbt reporting layer on and/or off (needs the star on)")
    parser.add_argument("--out", default=str(HERE / "results" / "eod_benchmark.json"))
    args = parser.parse_args(argv)
    sizes = [bench_size(n, args.entities, args.engines, args.repeats, args.rules, tuple(args.lineage), tuple(args.star),
                        tuple(args.reporting))
             for n in args.positions]
    report = {
        "benchmark": "eod",
        "business_date": DATE,
        "machine": machine(),
        "sizes": sizes,
    }
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        factor = large["positions"] / small["positions"]
        report["growth"] = {
            name: {
                "size_factor": factor,
                "time_factor": round(large["cases"][name]["median_seconds"] / small["cases"][name]["median_seconds"], 2),
            }
            for name in small["cases"]
        }
    return write_report(report, args.out)


if __name__ == "__main__":
    main()
