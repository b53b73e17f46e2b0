"""Issue 11 item 11 "Locks": a DuckDB file held by another process (an analyst with the warehouse
open, a second command on the rule store) makes the EOD wait, then fail naming the holder;
readers open read-only and share the file. Every holder here is a real second process."""

from __future__ import annotations

import subprocess
import sys
import time

import pyarrow as pa
import pytest
from click.testing import CliRunner

from regcalc_core.errors import ResourceBusyError

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("holding", flush=True)
time.sleep(float(sys.argv[3]))
con.close()
"""


def hold(path, seconds: float, read_only: bool = False) -> subprocess.Popen:
    """Another process with ``path`` open (read-write unless ``read_only``) for ``seconds``."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "ro" if read_only else "rw", str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def release(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


@pytest.fixture()
def db(tmp_path):
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS a")
    return path


def test_lock_holder_parsed_from_duckdb_message():
    from regcalc_resources.duckdb_files import lock_holder

    message = ('IO Error: Could not set lock on file "/x/w.duckdb": Conflicting lock is held in '
               "/usr/bin/python3.11 (PID 5597). See also https://duckdb.org/docs/current/connect/concurrency")
    assert lock_holder(message) == (5597, "/usr/bin/python3.11")
    assert lock_holder('IO Error: Cannot open file "/x": Permission denied') is None


def test_writer_waits_for_the_holder_then_succeeds(db):
    from regcalc_resources.duckdb_files import connect

    holder = hold(db, 2.0)
    started = time.monotonic()
    con = connect(str(db), timeout=60)
    waited = time.monotonic() - started
    try:
        assert con.execute("SELECT a FROM t").fetchone() == (1,)
    finally:
        con.close()
        release(holder)
    assert waited > 1.0  # it waited for the holder instead of failing at once


def test_writer_gives_up_naming_the_holder(db, monkeypatch):
    from regcalc_resources.duckdb_files import connect

    monkeypatch.setenv("REGCALC_LOCK_TIMEOUT", "1")
    holder = hold(db, 60)
    try:
        started = time.monotonic()
        with pytest.raises(ResourceBusyError, match=rf"locked by another process \(PID {holder.pid}, ") as err:
            connect(str(db))
        assert 0.9 < time.monotonic() - started < 10
        assert str(db) in str(err.value) and "REGCALC_LOCK_TIMEOUT" in str(err.value)
    finally:
        release(holder)


def test_warehouse_load_waits_for_an_analyst_session(db):
    """The EOD's load does not fail while an analyst reads the warehouse; it loads once they leave."""
    from regcalc_resources.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(path=str(db))
    analyst = hold(db, 2.0, read_only=True)
    rows = pa.table({"business_date": ["2024-06-28"], "entity_id": ["LE_001"], "basis": ["base"], "lcr": [1.5]})
    try:
        result = warehouse.load("liquidity_metrics", rows, [("2024-06-28", "LE_001")], "run-1")
    finally:
        release(analyst)
    assert result.rows == 1
    assert warehouse.query("SELECT lcr FROM liquidity_metrics") == [{"lcr": 1.5}]


def test_readers_share_the_file(db):
    """A reader (report, explain) opens read-only, so it works while another reader has it open."""
    from regcalc_resources.warehouse import DuckDBWarehouse

    analyst = hold(db, 60, read_only=True)
    try:
        started = time.monotonic()
        assert DuckDBWarehouse(path=str(db)).query("SELECT a FROM t") == [{"a": 1}]
        assert time.monotonic() - started < 5  # no waiting for the other reader
    finally:
        release(analyst)


def invoke_while_warehouse_held(home, monkeypatch, timeout: str, args: list[str]):
    """(the command's result, the process that held the warehouse throughout, the file) for a
    command run in-process while another process writes the home's warehouse."""
    import duckdb

    from regcalc_cli.main import cli

    home.mkdir(parents=True)
    path = home / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    monkeypatch.setenv("REGCALC_LOCK_TIMEOUT", timeout)
    holder = hold(path, 600)
    try:
        return CliRunner().invoke(cli, args), holder, path
    finally:
        release(holder)


def test_report_names_the_writer_holding_the_warehouse(regcalc_home, monkeypatch):
    """`regcalc report` while another process writes the warehouse: one line naming it, exit 2."""
    result, writer, _ = invoke_while_warehouse_held(regcalc_home, monkeypatch, "0.5", ["report", "--date", "2024-06-28"])
    assert result.exit_code == 2, result.output
    assert f"PID {writer.pid}" in result.output and "Traceback" not in result.output


def test_rule_store_waits_then_names_the_holder(tmp_path, monkeypatch):
    from regcalc_resources.rule_store import DuckDBRuleStore

    store = DuckDBRuleStore(path=str(tmp_path / "rules.duckdb"))
    assert store.rule_ids() == []  # creates the file
    holder = hold(tmp_path / "rules.duckdb", 1.5)
    try:
        assert store.rule_ids() == []  # waited for the holder (default timeout), then read
    finally:
        release(holder)
    monkeypatch.setenv("REGCALC_LOCK_TIMEOUT", "0.5")
    holder = hold(tmp_path / "rules.duckdb", 60)
    try:
        with pytest.raises(ResourceBusyError, match=f"PID {holder.pid}"):
            store.rule_ids()
    finally:
        release(holder)


def test_lock_timeout_setting(monkeypatch):
    from regcalc_core.errors import RegcalcInputError
    from regcalc_resources.settings import DEFAULT_LOCK_TIMEOUT, lock_timeout

    monkeypatch.delenv("REGCALC_LOCK_TIMEOUT", raising=False)
    assert lock_timeout() == DEFAULT_LOCK_TIMEOUT == 600
    monkeypatch.setenv("REGCALC_LOCK_TIMEOUT", "2.5")
    assert lock_timeout() == 2.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("REGCALC_LOCK_TIMEOUT", bad)
        with pytest.raises(RegcalcInputError, match="REGCALC_LOCK_TIMEOUT"):
            lock_timeout()


def test_eod_names_the_process_holding_the_warehouse(regcalc_home, golden, monkeypatch):
    """An analyst's session writing the warehouse through the whole EOD: the load waits
    REGCALC_LOCK_TIMEOUT, then the EOD fails with one line naming that process."""
    result, analyst, path = invoke_while_warehouse_held(
        regcalc_home, monkeypatch, "1", ["eod", "--date", "2024-06-28", "--landing", str(golden / "landing")])
    assert result.exit_code == 2, result.output  # a busy resource, not a failure of the code
    assert f"{path} is locked by another process (PID {analyst.pid}, " in result.output
    assert "Traceback" not in result.output
