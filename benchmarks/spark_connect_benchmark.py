"""Spark Connect benchmark: the golden EOD through a Spark Connect server next to local Spark and DuckDB.

    python benchmarks/spark_connect_benchmark.py [--repeats 3] [--positions N --entities 20] [--star on|off]

Per repeat, each in a fresh process and a fresh $REGCALC_HOME, `regcalc eod` for the golden example's
date (shared/examples/golden, or a generated landing zone of N positions) on:
  * duckdb: the embedded default (sqlframe on DuckDB), the baseline of the same run;
  * spark_local: Spark in local mode, its JVM started by the command (as `REGCALC_ENGINE=spark`);
  * spark_connect: Spark Connect (`REGCALC_SPARK_REMOTE=sc://127.0.0.1:<port>`), a local server
    from the pyspark wheel (regcalc_resources/spark_connect.py), started once before the runs as a
    cluster would be (its start-up is reported apart), the stage storage root in a directory the
    server shares, every path the engine is given under it.
Wall time and peak memory (RSS of the command's process tree; the Connect server's JVM is not in
it) are measured from outside. Prints JSON: medians, every run, ratios to DuckDB's median of the
same run; keeps it at benchmarks/results/spark_connect_benchmark.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # `benchmarks.eod_benchmark` when run as a script

from benchmarks.eod_benchmark import landing_for, machine, median, run_measured, write_report  # noqa: E402

GOLDEN = Path(os.environ.get("REGCALC_SHARED", HERE.parent.parent / "shared")) / "examples" / "golden"
DATE = "2024-06-28"
ENGINES = ("duckdb", "spark_local", "spark_connect")


def positions_of(landing: Path) -> int:
    import pyarrow.parquet as pq

    folder = landing / f"business_date={DATE}"
    files = list(folder.glob("positions.parquet"))
    if files:
        return pq.ParquetFile(files[0]).metadata.num_rows
    with open(folder / "positions.csv") as fh:
        return sum(1 for _ in fh) - 1


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--positions", type=int, default=0, help="a generated landing zone of N positions "
                                                                "instead of the golden example")
    parser.add_argument("--entities", type=int, default=20)
    parser.add_argument("--star", choices=["on", "off"], default="on", help="REGCALC_STAR for every run")
    parser.add_argument("--out", default=str(HERE / "results" / "spark_connect_benchmark.json"))
    args = parser.parse_args(argv)

    from regcalc_resources.spark_connect import start_local_connect_server

    landing = landing_for(args.positions, args.entities) if args.positions else GOLDEN / "landing"
    work = Path(tempfile.mkdtemp(prefix="regcalc-connect-bench-"))
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("DAGSTER_HOME", "REGCALC_STORAGE_ROOT", "REGCALC_WAREHOUSE_PATH", "REGCALC_SPARK_REMOTE",
                             "REGCALC_SPARK_STORAGE_ROOT", "SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    base_env |= {"REGCALC_STAR": args.star, "REGCALC_REPORTING": args.star}
    started = time.perf_counter()
    server = start_local_connect_server(work / "server", cores=os.cpu_count() or 2, memory="4g")
    server_start = time.perf_counter() - started
    samples: dict[str, list[dict]] = {name: [] for name in ENGINES}
    try:
        for repeat in range(args.repeats):
            for name in ENGINES:
                home = work / f"{name}-{repeat}"
                env = {**base_env, "REGCALC_HOME": str(home), "REGCALC_ENGINE": "duckdb" if name == "duckdb" else "spark"}
                if name == "spark_connect":
                    env |= {"REGCALC_SPARK_REMOTE": server.url, "REGCALC_STORAGE_ROOT": str(work / "shared" / home.name)}
                sample = run_measured([sys.executable, "-m", "regcalc_cli.main", "eod", "--date", DATE,
                                       "--landing", str(landing)], env)
                samples[name].append(sample)
                shutil.rmtree(home, ignore_errors=True)
                shutil.rmtree(work / "shared" / home.name, ignore_errors=True)
    finally:
        server.stop()
    positions = positions_of(landing)
    baseline = median([s["seconds"] for s in samples["duckdb"]])
    cases = {}
    for name, runs in samples.items():
        seconds = median([r["seconds"] for r in runs])
        cases[name] = {
            "median_seconds": round(seconds, 3),
            "all_seconds": [round(r["seconds"], 3) for r in runs],
            "positions_per_second": round(positions / seconds, 1),
            "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
            "ratio_to_duckdb": round(seconds / baseline, 2),
        }
    cases["spark_connect"]["ratio_to_spark_local"] = round(
        cases["spark_connect"]["median_seconds"] / cases["spark_local"]["median_seconds"], 2)
    shutil.rmtree(work, ignore_errors=True)
    report = {
        "benchmark": "spark_connect",
        "business_date": DATE,
        "landing": "golden example" if not args.positions else f"generated: {args.entities} entities",
        "positions": positions,
        "star_and_reporting": args.star,
        "repeats": args.repeats,
        "connect_server": {"start_seconds": round(server_start, 2), "master": f"local[{os.cpu_count() or 2}]",
                           "note": "started once before the runs (a running cluster); its JVM is not in peak_rss_mib"},
        "machine": machine(),
        "cases": cases,
    }
    return write_report(report, args.out)


if __name__ == "__main__":
    main()
