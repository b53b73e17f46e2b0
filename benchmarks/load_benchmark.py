"""Warehouse load benchmark: rows per second into DuckDB and into PostgreSQL.

    python benchmarks/load_benchmark.py [--rows 1000000 10000000] [--repeats 3]
                                        [--out benchmarks/results/load_benchmark.json]

For each size, synthetic rows shaped like the widest warehouse table (``lineage``: every column of
``TABLES["lineage"]`` but the load columns) are generated once, deterministically and untimed,
spread over 20 entities of one date. Each repeat then times one ``load()`` covering the 20
(date, entity) partitions into an empty table, through
  * ``DuckDBWarehouse`` (a database file in a temporary directory), and
  * ``PostgresWarehouse`` on a PostgreSQL 16 (the ``pgserver`` wheel) that this script starts in a
    temporary directory (the table is dropped before each repeat).
Prints JSON (and writes it to ``--out``): per backend the median seconds, rows per second, all
samples, the ratio to the DuckDB figure of the same run, with the design's reference figures and
the PostgreSQL target beside them, and the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # `benchmarks.eod_benchmark`, `regcalc_resources` when run as a script

from benchmarks.eod_benchmark import machine, write_report  # noqa: E402

TABLE, DATE, ENTITIES = "lineage", "2024-06-28", 20
REFERENCE = {  # the design's published figures for the approaches it replaces, and the target
    "jdbc_direct_writes_rows_per_second": 1_100,
    "s3_staged_copy_rows_per_second": 55_000,
    "target_postgresql_rows_per_second": 500_000,
}


def lineage_rows(n: int, seed: int = 2024):
    """``n`` lineage-shaped rows (deterministic), entity ``i % 20``; each position feeds a
    component, about one in eight edges names a rule."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from regcalc_resources.warehouse import TABLES

    rng = np.random.default_rng(seed)
    i = pa.array(np.arange(n, dtype=np.int64))
    ruled = pa.array(rng.random(n) < 0.125)

    def text(prefix: str, values) -> pa.Array:
        return pc.binary_join_element_wise(prefix, pc.cast(pa.array(values), pa.string()), "")

    def fixed(value: str) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value])).cast(pa.string())

    position = text("P", np.arange(n) // ENTITIES)
    system = text("SYS", rng.integers(1, 6, n))
    base = pa.array(np.round(rng.normal(1e6, 5e5, n), 2))
    factor = pa.array(rng.choice([1.0, 0.85, 0.5, 0.25, 0.0], n))
    columns = {
        "business_date": pa.array(np.full(n, np.datetime64(DATE, "D"))),
        "entity_id": text("LE_", np.arange(n) % ENTITIES),
        "output_stage": fixed("liquidity_components"),
        "output_key": text("COMPONENT_", rng.integers(0, 12, n)),
        "input_stage": fixed("adjusted_positions"),
        "input_key": pc.binary_join_element_wise(system, position, "/"),
        "role": fixed("position"),
        "base_contribution": base,
        "contribution": pc.multiply(base, factor),
        "factor_rule": text("F-", rng.integers(1, 40, n)),
        "source_system": system,
        "position_id": position,
        "source_file": fixed(f"landing/business_date={DATE}/positions.parquet"),
        "source_row": i,
        "rule_id": pc.if_else(ruled, text("R-", rng.integers(1, 50, n)), pa.nulls(n, pa.string())),
        "rule_version": pc.if_else(ruled, pa.array(rng.integers(1, 4, n, dtype=np.int32)), pa.nulls(n, pa.int32())),
    }
    names = [c for c in TABLES[TABLE].names if c not in ("loaded_at", "run_id")]
    assert sorted(names) == sorted(columns), "lineage spec changed: update lineage_rows"
    return pa.table({c: columns[c] for c in names})


def summary(samples: list[float], rows: int) -> dict:
    seconds = statistics.median(samples)
    return {"median_seconds": round(seconds, 3), "rows_per_second": round(rows / seconds),
            "samples_seconds": [round(s, 3) for s in samples]}


def bench_duckdb(rows, partitions, repeats: int, tmp: Path) -> tuple[list[float], str]:
    from regcalc_resources.warehouse import DuckDBWarehouse

    samples, method = [], ""
    for r in range(repeats):
        warehouse = DuckDBWarehouse(path=str(tmp / f"duckdb-{rows.num_rows}-{r}" / "warehouse.duckdb"))
        started = time.perf_counter()
        result = warehouse.load(TABLE, rows, partitions, f"bench-{r}")
        samples.append(time.perf_counter() - started)
        method = result.method
        assert warehouse.query(f"SELECT count(*) AS n FROM {TABLE}") == [{"n": rows.num_rows}]
    return samples, method


def bench_postgres(rows, partitions, repeats: int, dsn: str) -> tuple[list[float], str]:
    from regcalc_resources.warehouse_postgres import PostgresWarehouse

    warehouse, samples, method = PostgresWarehouse(dsn=dsn), [], ""
    for r in range(repeats):
        warehouse.query(f"DROP TABLE IF EXISTS {TABLE}")
        warehouse.query("CHECKPOINT")  # the previous repeat's writes do not land in this one's time
        started = time.perf_counter()
        result = warehouse.load(TABLE, rows, partitions, f"bench-{r}")
        samples.append(time.perf_counter() - started)
        method = result.method
        assert warehouse.query(f"SELECT count(*) AS n FROM {TABLE}") == [{"n": rows.num_rows}]
    warehouse.query(f"DROP TABLE IF EXISTS {TABLE}")
    return samples, method


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "load_benchmark.json"))
    args = parser.parse_args(argv)

    import pgserver

    from regcalc_resources.warehouse import TABLES

    partitions = [(DATE, f"LE_{e}") for e in range(ENTITIES)]
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="regcalc-load-bench-") as tmp:
        server = pgserver.get_server(str(Path(tmp) / "pg"), cleanup_mode="stop")
        try:
            dsn = server.get_uri()
            from regcalc_resources.warehouse_postgres import PostgresWarehouse

            version = PostgresWarehouse(dsn=dsn).query("SHOW server_version")[0]["server_version"]
            for n in args.rows:
                rows = lineage_rows(n)
                duck, duck_method = bench_duckdb(rows, partitions, args.repeats, Path(tmp))
                pg, pg_method = bench_postgres(rows, partitions, args.repeats, dsn)
                duckdb, postgres = summary(duck, n), summary(pg, n)
                postgres["ratio_to_duckdb"] = round(postgres["rows_per_second"] / duckdb["rows_per_second"], 3)
                postgres["meets_target"] = postgres["rows_per_second"] >= REFERENCE["target_postgresql_rows_per_second"]
                postgres["times_s3_staged_copy"] = round(
                    postgres["rows_per_second"] / REFERENCE["s3_staged_copy_rows_per_second"], 1)
                sizes[str(n)] = {
                    "arrow_mib": round(rows.nbytes / 2**20, 1),
                    "duckdb": {"method": duck_method, **duckdb, "ratio_to_duckdb": 1.0},
                    "postgresql": {"method": pg_method, "server_version": version, **postgres},
                }
                del rows
        finally:
            server.cleanup()
    report = {
        "benchmark": "warehouse load",
        "table": TABLE,
        "columns": len(TABLES[TABLE].names) - 2,  # without loaded_at, run_id (added by the load)
        "entities": ENTITIES,
        "partitions_per_load": ENTITIES,
        "repeats": args.repeats,
        "reference": REFERENCE,
        "sizes": sizes,
        "machine": machine(),
    }
    return write_report(report, args.out)


if __name__ == "__main__":
    main()
