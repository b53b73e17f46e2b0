"""Warehouse load benchmark: ways of loading PostgreSQL, in rows per second, measured in one run.

    python benchmarks/load_benchmark.py [--rows 1000000] [--repeats 5] [--variants a_encoder_staging ...]
                                        [--out benchmarks/results/load_benchmark.json]

For each size, synthetic rows shaped like the widest warehouse table (``lineage``: every column of
``TABLES["lineage"]`` but the load columns) are generated once, deterministically and untimed,
spread over 20 entities of one date. Every timed load replaces those 20 (date, entity) partitions
in one transaction, on a PostgreSQL 16 (the ``pgserver`` wheel, stock settings) that this script
starts in a temporary directory; before each one the table is recreated and a CHECKPOINT taken
(untimed), so one load's writes do not land in the next one's time, and the script waits until
other processes leave the CPUs idle (a shared machine; the samples it could not wait for are
counted in the report). Two scenarios:

  * ``new_date``: the table exists and the partitions are empty (the daily load of a new date);
  * ``rerun``: the partitions hold a previous version of the same size, vacuumed (a re-run of the
    date), so the DELETE removes as many rows as the COPY adds.

Variants (repeats interleaved: repeat 1 of every variant, then repeat 2, ...):

  a_encoder_staging       the load before issue 12, the baseline: the hand-written Arrow -> binary
                          COPY encoder (``binary_copy_chunks``) into a TEMP staging table, then
                          DELETE + INSERT ... SELECT (psycopg);
  b_adbc_staging          ADBC's ``adbc_ingest`` (its Arrow -> binary COPY in C) into the TEMP
                          staging table, then DELETE + INSERT ... SELECT, on the ADBC connection;
  e_adbc_unlogged_staging as b, into an UNLOGGED staging table (created and dropped in the load);
  c_adbc_direct           ADBC: DELETE, then ``adbc_ingest`` straight into the table (loaded_at
                          and run_id appended as columns);
  f_encoder_direct        ``PostgresWarehouse.load`` as it is now: DELETE, then the hand-written
                          encoder's COPY straight into the table, encoding overlapped with sending
                          (psycopg's queued writer thread).
  d_index_after           a first load into a fresh table with a key index: CREATE TABLE, COPY as
                          f, then build the key index; ``d_index_before`` builds it before the
                          COPY. ``lineage`` declares no key (``declare_key=False``), so both use its
                          natural key as a unique index, to show what deferring it would give.
                          Only in the ``new_date`` scenario.

``duckdb`` (``DuckDBWarehouse``, a file in the temporary directory) is the embedded reference.
The ADBC variants need ``adbc-driver-postgresql`` (``pip install -e ".[bench]"``); the load itself
does not use it.
Prints JSON (and writes it to ``--out``): per scenario and variant the median seconds, rows per
second, all samples and the ratio to ``a_encoder_staging`` of the same run and scenario, with the
design's reference figures and the PostgreSQL target beside them, and the machine.
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
BASELINE = "a_encoder_staging"
ADBC_BATCH_ROWS = 5_000  # record batches handed to adbc_ingest (one 1M-row batch: one 250 MB buffer)
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


# --- the variants: each one load of ``rows`` (already of the table's Arrow types) -----------------
# ``rows`` replaces ``partitions`` of TABLE in one transaction; the target table exists unless the
# variant creates it.

def _delete_sql() -> str:
    return (f"DELETE FROM {TABLE} WHERE (business_date, entity_id) IN "
            "(SELECT * FROM unnest(%s::date[], %s::text[]))")


def _adbc_batches(rows):
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches(max_chunksize=ADBC_BATCH_ROWS))


def load_encoder_staging(dsn, rows, partitions, run_id) -> None:
    """a: the load before issue 12 (psycopg; TEMP staging; DELETE + INSERT ... SELECT)."""
    import psycopg

    from regcalc_resources.warehouse import create_table_sql
    from regcalc_resources.warehouse_postgres import POSTGRES_TYPES, binary_copy_chunks

    cols = ", ".join(rows.column_names)
    dates, entities = [d for d, _ in partitions], [e for _, e in partitions]
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute(create_table_sql(TABLE, POSTGRES_TYPES))
        cur.execute(f"CREATE TEMP TABLE staging_{TABLE} (LIKE {TABLE} INCLUDING DEFAULTS) ON COMMIT DROP")
        with cur.copy(f"COPY staging_{TABLE} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            for chunk in binary_copy_chunks(rows, 100_000):
                copy.write(chunk)
        cur.execute(_delete_sql(), [dates, entities])
        cur.execute(f"INSERT INTO {TABLE} ({cols}, loaded_at, run_id) "
                    f"SELECT {cols}, now(), %s FROM staging_{TABLE}", [run_id])


def load_adbc(dsn, rows, partitions, run_id, staging: str | None) -> None:
    """b, e, c: ADBC's ingest into a TEMP (b) or UNLOGGED (e) staging table then DELETE + INSERT
    ... SELECT, or (c, ``staging=None``) DELETE then ingest straight into the table; one
    transaction on the ADBC connection (not autocommit)."""
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow as pa

    from regcalc_resources.warehouse import create_table_sql
    from regcalc_resources.warehouse_postgres import POSTGRES_TYPES

    cols = ", ".join(rows.column_names)
    dates, entities = [d for d, _ in partitions], [e for _, e in partitions]
    with adbc.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(create_table_sql(TABLE, POSTGRES_TYPES))
        stage = {"temp": f"staging_{TABLE}", "unlogged": f"staging_{TABLE}_{run_id.replace('-', '_')}"}.get(staging)
        if staging == "temp":
            cur.execute(f"CREATE TEMP TABLE {stage} (LIKE {TABLE} INCLUDING DEFAULTS) ON COMMIT DROP")
            cur.adbc_ingest(stage, _adbc_batches(rows), mode="append", temporary=True)
        elif staging == "unlogged":
            cur.execute(f"CREATE UNLOGGED TABLE {stage} (LIKE {TABLE} INCLUDING DEFAULTS)")
            cur.adbc_ingest(stage, _adbc_batches(rows), mode="append")
        # ADBC's parameter binding: $1-style, one row of array parameters
        cur.execute(_delete_sql().replace("%s", "$1", 1).replace("%s", "$2", 1), [dates, entities])
        if staging:
            cur.execute(f"INSERT INTO {TABLE} ({cols}, loaded_at, run_id) SELECT {cols}, now(), $1 FROM {stage}",
                        [run_id])
            if staging == "unlogged":
                cur.execute(f"DROP TABLE {stage}")
        else:
            cur.execute("SELECT now()")
            [loaded_at] = cur.fetchone()
            n = rows.num_rows
            full = rows.append_column("loaded_at", pa.repeat(pa.scalar(loaded_at, pa.timestamp("us", "UTC")), n))
            full = full.append_column("run_id", pa.repeat(pa.scalar(run_id, pa.string()), n))
            cur.adbc_ingest(TABLE, _adbc_batches(full), mode="append")
        conn.commit()


def load_encoder_direct(dsn, rows, partitions, run_id) -> None:
    """f: ``PostgresWarehouse.load`` (DELETE, then the encoder's COPY straight into the table)."""
    from regcalc_resources.warehouse_postgres import METHOD, PostgresWarehouse

    assert PostgresWarehouse(dsn=dsn).load(TABLE, rows, partitions, run_id).method == METHOD


def load_fresh_keyed(dsn, rows, partitions, run_id, index_after: bool) -> None:
    """d: a first load: CREATE TABLE, its key as a unique index before or after the COPY (f's)."""
    import psycopg

    from regcalc_resources.warehouse import TABLES, create_table_sql
    from regcalc_resources.warehouse_postgres import PostgresWarehouse, POSTGRES_TYPES, copy_rows

    index = f"CREATE UNIQUE INDEX {TABLE}_key ON {TABLE} ({', '.join(TABLES[TABLE].key)})"
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute(create_table_sql(TABLE, POSTGRES_TYPES))
        if not index_after:
            cur.execute(index)
        copy_rows(cur, TABLE, rows, run_id, PostgresWarehouse(dsn=dsn).copy_chunk_rows)
        if index_after:
            cur.execute(index)


VARIANTS = {  # name: (load function, scenarios it runs in)
    "a_encoder_staging": (load_encoder_staging, ("new_date", "rerun")),
    "b_adbc_staging": (lambda *a: load_adbc(*a, staging="temp"), ("new_date", "rerun")),
    "e_adbc_unlogged_staging": (lambda *a: load_adbc(*a, staging="unlogged"), ("new_date", "rerun")),
    "c_adbc_direct": (lambda *a: load_adbc(*a, staging=None), ("new_date", "rerun")),
    "f_encoder_direct": (load_encoder_direct, ("new_date", "rerun")),
    "d_index_before": (lambda *a: load_fresh_keyed(*a, index_after=False), ("new_date",)),
    "d_index_after": (lambda *a: load_fresh_keyed(*a, index_after=True), ("new_date",)),
}


def _cpu_idle(interval: float = 0.5) -> float:
    """The machine's idle CPU fraction over ``interval`` seconds (1.0 where /proc/stat is missing)."""
    def ticks():
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total
    try:
        idle0, total0 = ticks()
        time.sleep(interval)
        idle1, total1 = ticks()
    except OSError:
        return 1.0
    return (idle1 - idle0) / max(total1 - total0, 1)


def wait_until_quiet(min_idle: float = 0.9, timeout: float = 300.0) -> bool:
    """Untimed: wait until other processes leave the CPUs idle (a shared 2-core machine), so a
    sample measures the load and not a neighbour; False if they never did within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _cpu_idle() >= min_idle:
            return True
    return False


def summary(samples: list[float], rows: int) -> dict:
    seconds = statistics.median(samples)
    return {"median_seconds": round(seconds, 3), "rows_per_second": round(rows / seconds),
            "samples_seconds": [round(s, 3) for s in samples]}


def prepare(dsn, rows, partitions, scenario: str, variant: str) -> None:
    """Untimed: the table as the scenario wants it, then a CHECKPOINT."""
    import psycopg

    from regcalc_resources.warehouse import create_table_sql
    from regcalc_resources.warehouse_postgres import PostgresWarehouse, POSTGRES_TYPES

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        if not variant.startswith("d_"):
            conn.execute(create_table_sql(TABLE, POSTGRES_TYPES))
    if scenario == "rerun":
        PostgresWarehouse(dsn=dsn).load(TABLE, rows, partitions, "previous")
    with psycopg.connect(dsn, autocommit=True) as conn:
        if scenario == "rerun":
            conn.execute(f"VACUUM ANALYZE {TABLE}")  # as autovacuum would have between the two runs
        conn.execute("CHECKPOINT")


def check(dsn, rows, run_id: str) -> None:
    """Untimed: exactly the new rows are in the table."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        got = conn.execute(f"SELECT count(*), count(*) FILTER (WHERE run_id = %s), min(loaded_at) = max(loaded_at) "
                           f"FROM {TABLE}", [run_id]).fetchone()
    assert got == (rows.num_rows, rows.num_rows, True), (run_id, got)


def bench_postgres(dsn, rows, partitions, repeats: int, variants: list[str]) -> tuple[dict, int]:
    """Per scenario and variant the figures, and how many samples started on a busy machine."""
    samples: dict[tuple[str, str], list[float]] = {}
    noisy = 0
    for r in range(repeats):
        for scenario in ("new_date", "rerun"):
            for variant in variants:
                load, scenarios = VARIANTS[variant]
                if scenario not in scenarios:
                    continue
                prepare(dsn, rows, partitions, scenario, variant)
                noisy += not wait_until_quiet()
                run_id = f"bench-{variant}-{r}"
                started = time.perf_counter()
                load(dsn, rows, partitions, run_id)
                samples.setdefault((scenario, variant), []).append(time.perf_counter() - started)
                check(dsn, rows, run_id)
                print(f"  {rows.num_rows:,} rows {scenario:8s} {variant:24s} {samples[scenario, variant][-1]:.3f} s",
                      file=sys.stderr, flush=True)
    out: dict[str, dict] = {}
    for (scenario, variant), s in samples.items():
        out.setdefault(scenario, {})[variant] = summary(s, rows.num_rows)
    for scenario, figures in out.items():
        base = figures.get(BASELINE)
        for variant, f in figures.items():
            if base:
                f["ratio_to_baseline"] = round(f["rows_per_second"] / base["rows_per_second"], 2)
            f["meets_target"] = f["rows_per_second"] >= REFERENCE["target_postgresql_rows_per_second"]
    return out, noisy


def bench_duckdb(rows, partitions, repeats: int, tmp: Path) -> dict:
    from regcalc_resources.warehouse import DuckDBWarehouse

    samples = []
    for r in range(repeats):
        warehouse = DuckDBWarehouse(path=str(tmp / f"duckdb-{rows.num_rows}-{r}" / "warehouse.duckdb"))
        wait_until_quiet()
        started = time.perf_counter()
        method = warehouse.load(TABLE, rows, partitions, f"bench-{r}").method
        samples.append(time.perf_counter() - started)
        assert warehouse.query(f"SELECT count(*) AS n FROM {TABLE}") == [{"n": rows.num_rows}]
    return {"method": method, **summary(samples, rows.num_rows)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--out", default=str(HERE / "results" / "load_benchmark.json"))
    args = parser.parse_args(argv)

    import pgserver

    from regcalc_resources.warehouse import TABLES
    from regcalc_resources.warehouse_postgres import METHOD, _as_table_types

    partitions = [(DATE, f"LE_{e}") for e in range(ENTITIES)]
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="regcalc-load-bench-") as tmp:
        server = pgserver.get_server(str(Path(tmp) / "pg"), cleanup_mode="stop")
        try:
            dsn = server.get_uri()
            import psycopg

            with psycopg.connect(dsn) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
            for n in args.rows:
                rows = lineage_rows(n)
                rows = _as_table_types(TABLE, rows, rows.column_names)  # untimed: every variant gets table types
                postgres, busy = bench_postgres(dsn, rows, partitions, args.repeats, args.variants)
                sizes[str(n)] = {
                    "arrow_mib": round(rows.nbytes / 2**20, 1),
                    "postgresql": postgres,
                    "postgresql_samples_started_while_busy": busy,  # other processes using the CPUs
                    "duckdb": bench_duckdb(rows, partitions, args.repeats, Path(tmp)),
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
        "postgresql_server_version": version,
        "baseline": BASELINE,
        "load_method": METHOD,  # what PostgresWarehouse.load does now: f_encoder_direct
        "adbc_batch_rows": ADBC_BATCH_ROWS,
        "reference": REFERENCE,
        "sizes": sizes,
        "machine": machine(),
    }
    return write_report(report, args.out)


if __name__ == "__main__":
    main()
