"""PostgresWarehouse on a real PostgreSQL 16 (pgserver): partitions replaced exactly and
idempotently, a failed load leaves the previous partition intact (bad rows before the database is
touched; a failure after the DELETE, in the server or in the client, rolled back), and so does a
SIGKILL mid-COPY, after the DELETE."""

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
from regcalc_resources import warehouse_postgres
from regcalc_resources.warehouse_postgres import METHOD, PostgresWarehouse, to_pyformat

pytestmark = pytest.mark.slow  # a real server; the fault test loads up to 2,000,000 rows

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
    assert (result.table, result.rows, result.method) == ("liquidity_components", 3, METHOD)
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


BAD = {  # a bad row in the second COPY chunk (rows 3-4): a value that cannot be an INTEGER or a NULL
    # in a NOT NULL column (both caught before the database is touched), or a duplicate key (caught by
    # the server during the COPY, after the DELETE)
    "not an integer": (pa.ArrowInvalid, 3, {"component_order": "three"}),
    "null in a NOT NULL column": (ValueError, 3, {"component": None}),
    "duplicate key, after the DELETE": (psycopg.errors.UniqueViolation, 4, {"component": "C0"}),
}


def bad_rows(case: str) -> pa.Table:
    """Five rows of (D, E1) with ``case``'s bad value in one of them."""
    _, index, change = BAD[case]
    rows = [dict(zip(FIELDS, (DAY, "E1", "adjusted", f"C{i}", i, float(i), i, "EUR", "v9"))) for i in range(5)]
    schema = SCHEMA
    if case == "not an integer":  # the column as text, so the bad value reaches the load
        schema = SCHEMA.set(SCHEMA.get_field_index("component_order"), pa.field("component_order", pa.string()))
        rows = [{**r, "component_order": str(r["component_order"])} for r in rows]
    rows[index].update(change)
    return pa.Table.from_pylist(rows, schema=schema)


@pytest.mark.parametrize("case", BAD)
def test_failed_load_leaves_the_previous_partition(warehouse, case, monkeypatch):
    error = BAD[case][0]
    warehouse.load("liquidity_components", components(*E1_V1, *E2_V1), [(D, "E1"), (D, "E2")], "good")
    before = warehouse.query(ALL)
    connects = []
    if case != "duplicate key, after the DELETE":  # rejected before any connection is opened
        monkeypatch.setattr(PostgresWarehouse, "_connect", lambda self, **kw: connects.append(kw))
    chunked = PostgresWarehouse(dsn=warehouse.dsn, copy_chunk_rows=2)
    with pytest.raises(error):
        chunked.load("liquidity_components", bad_rows(case), [(D, "E1")], "bad")
    monkeypatch.undo()
    assert connects == []
    assert warehouse.query(ALL) == before


def unlocked_e1(warehouse) -> list[dict]:
    """How many of (D, E1)'s rows no open transaction holds locked (a DELETE locks them)."""
    return warehouse.query("SELECT count(*) AS n FROM (SELECT 1 FROM liquidity_components WHERE business_date = "
                           f"DATE '{D}' AND entity_id = 'E1' FOR UPDATE SKIP LOCKED) AS rows")


def test_client_failure_after_the_delete_rolls_back(warehouse, monkeypatch):
    """The encoder fails after the DELETE and after the first COPY chunk has gone to the server
    (a bug, memory): the load raises that error and the previous rows are all there, unlocked."""
    warehouse.load("liquidity_components", components(*E1_V1, *E2_V1), [(D, "E1"), (D, "E2")], "good")
    before = warehouse.query(ALL)
    encode, sent = warehouse_postgres.binary_copy_chunks, []

    def failing(rows, chunk_rows, constants=()):
        for chunk in encode(rows, chunk_rows, constants):
            yield chunk
            sent.append(len(chunk))
            if len(sent) == 2:  # the signature and one chunk of rows
                assert unlocked_e1(warehouse) == [{"n": 0}], "the DELETE has run: E1's rows are locked by the load"
                assert warehouse.query(ALL) == before, "and readers still see them"
                raise MemoryError("injected")

    monkeypatch.setattr(warehouse_postgres, "binary_copy_chunks", failing)
    rows = components(*[(D, "E1", "adjusted", f"C{i}", i, float(i), i, "EUR", "v9") for i in range(5)])
    with pytest.raises(MemoryError, match="injected"):
        PostgresWarehouse(dsn=warehouse.dsn, copy_chunk_rows=2).load("liquidity_components", rows, [(D, "E1")], "bad")
    assert len(sent) == 2
    assert warehouse.query(ALL) == before
    monkeypatch.undo()
    warehouse.load("liquidity_components", rows, [(D, "E1")], "next")
    assert [r[-1] for r in stored(warehouse)] == ["next"] * 5 + ["good"]


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


def test_sigkill_mid_copy_after_the_delete_leaves_the_previous_partition(warehouse, postgres_uri, tmp_path):
    """The loading process is killed with SIGKILL while streaming the COPY, after its DELETE (the
    previous rows locked by it): the previous (D, E1) stays exactly as it was, before and after
    the server notices and rolls the transaction back, and nothing of the new version appears."""
    warehouse.load("liquidity_components", components(*E1_V1, *E2_V1), [(D, "E1"), (D, "E2")], "old")
    before = warehouse.query(ALL)
    script = tmp_path / "load.py"
    script.write_text(FAULT_SCRIPT)
    app = "regcalc-fault-copy"
    dsn = f"{postgres_uri}{'&' if '?' in postgres_uri else '?'}application_name={app}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), dsn, str(FAULT_ROWS)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with psycopg.connect(postgres_uri, autocommit=True) as conn:
            active = (f"SELECT a.pid FROM pg_stat_activity a WHERE a.application_name = '{app}' "
                      "AND a.state = 'active' AND a.query LIKE 'COPY %'")
            # some rows streamed, far from all
            row = _poll(conn, f"SELECT p.tuples_processed FROM ({active}) a JOIN pg_stat_progress_copy p "
                              "USING (pid) WHERE p.tuples_processed > 0", proc)
            assert row[0] < FAULT_ROWS
            assert unlocked_e1(warehouse) == [{"n": 0}], "the DELETE has run: E1's rows are locked by the load"
            assert warehouse.query(ALL) == before, "and readers still see them"
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
    assert unlocked_e1(warehouse) == [{"n": 2}]
    # and the partition is not left locked: the next load replaces it
    warehouse.load("liquidity_components", components(E1_V1[0]), [(D, "E1")], "next")
    assert [(r[1], r[-1]) for r in stored(warehouse)] == [("E1", "next"), ("E2", "old")]
