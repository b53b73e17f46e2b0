"""PostgresWarehouse on a real PostgreSQL 16 (pgserver): partitions replaced exactly and
idempotently, a failed load leaves the previous partition intact, and so does a SIGKILL mid-load."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest

from regcalc_resources.warehouse import TABLES
from regcalc_resources.warehouse_postgres import PostgresWarehouse, to_pyformat

pytestmark = pytest.mark.slow  # a real server; the fault test loads 2,000,000 rows twice

REPO = Path(__file__).resolve().parents[2]
D, EARLIER = "2024-06-28", "2024-06-27"
DAY = dt.date(2024, 6, 28)
# liquidity_components without the load columns, deliberately not in the table's column order
SCHEMA = pa.schema([("component", pa.string()), ("entity_id", pa.string()), ("business_date", pa.date32()),
                    ("basis", pa.string()), ("amount", pa.float64()), ("component_order", pa.int32()),
                    ("position_count", pa.int64()), ("reporting_currency", pa.string()),
                    ("aggregation_rules_version", pa.string())])
FIELDS = ["business_date", "entity_id", "basis", "component", "component_order", "amount", "position_count",
          "reporting_currency", "aggregation_rules_version"]
ALL = f"SELECT {', '.join(FIELDS)}, loaded_at, run_id FROM liquidity_components ORDER BY business_date, entity_id, basis, component"


def components(*rows: tuple) -> pa.Table:
    """Rows given as (date, entity, basis, component, order, amount, count, currency, rules version)."""
    dicts = [dict(zip(FIELDS, (dt.date.fromisoformat(r[0]), *r[1:]))) for r in rows]
    return pa.Table.from_pylist(dicts, schema=SCHEMA)


def stored(warehouse) -> list[tuple]:
    """Every row of the table as (FIELDS..., run_id), dates as ISO strings."""
    return [(str(r["business_date"]), *(r[f] for f in FIELDS[1:]), r["run_id"]) for r in warehouse.query(ALL)]


@pytest.fixture()
def warehouse(postgres_uri):
    """A PostgresWarehouse on an empty database (no killed load of an earlier test left over)."""
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'regcalc-fault-%'")
        for table in TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    return PostgresWarehouse(dsn=postgres_uri)


E2_COMPONENT = 'OUT,"FLOWS"\n\\. é€'  # CSV/text-format specials and non-ASCII
E1_V1 = [(D, "E1", "adjusted", "HQLA_L1", 1, 1250000.5, 3, "EUR", "v1"),
         (D, "E1", "base", "HQLA_L1", 1, float("-inf"), 1, None, "")]
E2_V1 = [(D, "E2", "adjusted", E2_COMPONENT, -2**31, None, 2**63 - 1, "USD", None)]
OLD_DAY = [(EARLIER, "E1", "adjusted", "HQLA_L1", 1, -2.5e-300, 9, "EUR", "v0")]


def test_partitions_are_replaced_exactly_and_idempotently(warehouse):
    started = dt.datetime.now(dt.timezone.utc)
    warehouse.load("liquidity_components", components(*OLD_DAY), [(EARLIER, "E1")], "r0")
    result = warehouse.load("liquidity_components", components(*E1_V1, *E2_V1), [(D, "E1"), (D, "E2")], "r1")
    assert (result.table, result.rows, result.method) == ("liquidity_components", 3, "postgresql copy binary + delete/insert swap")
    old = (EARLIER, "E1", "adjusted", "HQLA_L1", 1, -2.5e-300, 9, "EUR", "v0", "r0")
    # nulls stay null, '' stays '', the odd component, the extreme ints and the doubles round-trip exactly
    assert stored(warehouse) == [
        old,
        (D, "E1", "adjusted", "HQLA_L1", 1, 1250000.5, 3, "EUR", "v1", "r1"),
        (D, "E1", "base", "HQLA_L1", 1, float("-inf"), 1, None, "", "r1"),
        (D, "E2", "adjusted", E2_COMPONENT, -2**31, None, 2**63 - 1, "USD", None, "r1"),
    ]
    rows = warehouse.query(ALL)
    assert all(started <= r["loaded_at"] <= dt.datetime.now(dt.timezone.utc) for r in rows)
    assert rows[1]["business_date"] == DAY

    # the same load again: one copy, now from r2
    warehouse.load("liquidity_components", components(*E1_V1, *E2_V1), [(D, "E1"), (D, "E2")], "r2")
    assert [r[-1] for r in stored(warehouse)] == ["r0", "r2", "r2", "r2"]
    e2 = warehouse.query("SELECT * FROM liquidity_components WHERE entity_id = ? AND business_date = CAST(? AS DATE)",
                         ["E2", D])

    # (D, E1) with other rows: E1 replaced, E2 and the earlier day untouched (same load time too)
    warehouse.load("liquidity_components", components((D, "E1", "adjusted", "INFLOWS", 12, 42.0, 4, "EUR", "v2")),
                   [(D, "E1")], "r3")
    assert stored(warehouse) == [
        old,
        (D, "E1", "adjusted", "INFLOWS", 12, 42.0, 4, "EUR", "v2", "r3"),
        (D, "E2", "adjusted", E2_COMPONENT, -2**31, None, 2**63 - 1, "USD", None, "r2"),
    ]
    assert warehouse.query("SELECT * FROM liquidity_components WHERE entity_id = 'E2'") == e2

    # (D, E1) with no rows: E1 gone
    assert warehouse.load("liquidity_components", components(), [(D, "E1")], "r4").rows == 0
    assert stored(warehouse) == [old, (D, "E2", "adjusted", E2_COMPONENT, -2**31, None, 2**63 - 1, "USD", None, "r2")]


def test_query_translates_duckdb_placeholders(warehouse):
    assert to_pyformat("SELECT '?%' AS q FROM t WHERE a LIKE 'x%' AND d = CAST(? AS DATE) AND e = ?") == \
        "SELECT '?%%' AS q FROM t WHERE a LIKE 'x%%' AND d = CAST(%s AS DATE) AND e = %s"
    assert to_pyformat("SELECT %s") == "SELECT %s"
    assert warehouse.query("SELECT '?%' AS q, CAST(? AS DATE) AS d, ? AS e", [D, "E1"]) == [
        {"q": "?%", "d": DAY, "e": "E1"}]
    assert warehouse.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'liquidity_metrics'") == []


BAD = {  # a bad row in the second COPY chunk (rows 3-4), a duplicate key caught only by the INSERT
    # (after the DELETE), or a value that cannot be an INTEGER (caught before the database is touched)
    "null in a NOT NULL column": (psycopg.errors.NotNullViolation, 3, {"component": None}),
    "not an integer": (pa.ArrowInvalid, 3, {"component_order": "three"}),
    "duplicate key, after the DELETE": (psycopg.errors.UniqueViolation, 4, {"component": "C0"}),
}


@pytest.mark.parametrize("case", BAD)
def test_failed_load_leaves_the_previous_partition(warehouse, case):
    error, index, change = BAD[case]
    warehouse.load("liquidity_components", components(*E1_V1, *E2_V1), [(D, "E1"), (D, "E2")], "good")
    before = warehouse.query(ALL)
    rows = [dict(zip(FIELDS, (DAY, "E1", "adjusted", f"C{i}", i, float(i), i, "EUR", "v9"))) for i in range(5)]
    schema = SCHEMA
    if case == "not an integer":  # the column as text, so the bad value reaches the server
        schema = SCHEMA.set(SCHEMA.get_field_index("component_order"), pa.field("component_order", pa.string()))
        rows = [{**r, "component_order": str(r["component_order"])} for r in rows]
    rows[index].update(change)
    chunked = PostgresWarehouse(dsn=warehouse.dsn, copy_chunk_rows=2)
    with pytest.raises(error):
        chunked.load("liquidity_components", pa.Table.from_pylist(rows, schema=schema), [(D, "E1")], "bad")
    assert warehouse.query(ALL) == before


FAULT_SCRIPT = """
import sys
import numpy as np, pyarrow as pa, pyarrow.compute as pc
from regcalc_resources.warehouse_postgres import PostgresWarehouse
dsn, n = sys.argv[1], int(sys.argv[2])
i, zeros = pa.array(np.arange(n)), np.zeros(n, dtype=np.int32)
const = lambda value: pa.array([value]).take(zeros)
rows = pa.table({
    "business_date": pa.array(np.full(n, np.datetime64("2024-06-28", "D"))),
    "entity_id": const("E1"), "reporting_currency": const("EUR"), "basis": const("adjusted"),
    "component": pc.binary_join_element_wise("C", pc.cast(i, pa.string()), ""),
    "component_order": pc.cast(i, pa.int32()), "amount": pc.multiply(pc.cast(i, pa.float64()), 0.5),
    "position_count": i, "aggregation_rules_version": const("new")})
print("loading", flush=True)
PostgresWarehouse(dsn=dsn).load("liquidity_components", rows, [("2024-06-28", "E1")], "new")
print("done", flush=True)
"""
FAULT_ROWS = 2_000_000


def _poll(conn, sql: str, proc=None, timeout: float = 60.0) -> tuple:
    """The first row of ``sql`` once it has one (failing if ``proc``, the load, ends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(sql).fetchone()
        if row:
            return row
        assert proc is None or proc.poll() is None, f"the load ended before it was killed: {proc.communicate()}"
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for: {sql}")


@pytest.mark.parametrize("stage", ["COPY", "INSERT"])
def test_sigkill_mid_load_leaves_the_previous_partition(warehouse, postgres_uri, tmp_path, stage):
    """The loading process is killed with SIGKILL while streaming the COPY, or after its DELETE
    while the INSERT runs: the previous (D, E1) stays exactly as it was, before and after the
    server notices and rolls the transaction back, and nothing of the new version appears."""
    warehouse.load("liquidity_components", components(*E1_V1, *E2_V1), [(D, "E1"), (D, "E2")], "old")
    before = warehouse.query(ALL)
    script = tmp_path / "load.py"
    script.write_text(FAULT_SCRIPT)
    app = f"regcalc-fault-{stage.lower()}"
    dsn = f"{postgres_uri}{'&' if '?' in postgres_uri else '?'}application_name={app}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), dsn, str(FAULT_ROWS)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with psycopg.connect(postgres_uri, autocommit=True) as conn:
            active = (f"SELECT a.pid FROM pg_stat_activity a WHERE a.application_name = '{app}' "
                      f"AND a.state = 'active' AND a.query LIKE '{stage} %'")
            if stage == "COPY":  # some rows streamed, far from all
                row = _poll(conn, f"SELECT p.tuples_processed FROM ({active}) a JOIN pg_stat_progress_copy p "
                                  "USING (pid) WHERE p.tuples_processed > 0", proc)
                assert row[0] < FAULT_ROWS
            else:
                _poll(conn, active, proc)
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == -signal.SIGKILL
            assert out.splitlines() == ["loading"]  # killed inside load(), never reached "done"

            assert warehouse.query(ALL) == before  # while the killed transaction may still be open
            # the server has rolled the transaction back and its backend is gone
            _poll(conn, f"SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = '{app}')")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert warehouse.query(ALL) == before
    assert warehouse.query("SELECT count(*) AS n FROM liquidity_components WHERE run_id = 'new'") == [{"n": 0}]
    # and the partition is not left locked: the next load replaces it
    warehouse.load("liquidity_components", components(E1_V1[0]), [(D, "E1")], "next")
    assert [(r[1], r[-1]) for r in stored(warehouse)] == [("E1", "next"), ("E2", "old")]
