"""The `regcalc` command line as a user runs it: generate, eod (twice), report, bad files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from regcalc_tests.helpers import assert_traced_to_the_cent, regcalc, traced_totals

pytestmark = pytest.mark.slow


def storage_digest(root: Path) -> dict[str, str]:
    """Content of every stage partition (resolved through its symlink), by partition path."""
    digest = {}
    for link in sorted(root.glob("*/business_date=*/entity_id=*")):
        tables = sorted(Path(os.path.realpath(link)).glob("*.parquet"))
        con = duckdb.connect()
        rows = con.execute(
            "SELECT * FROM read_parquet(?, hive_partitioning = false)", [[str(t) for t in tables]]
        ).fetchall()
        digest[str(link.relative_to(root))] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    return digest


def warehouse_rows(home: Path) -> list:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT * EXCLUDE (loaded_at, run_id) FROM liquidity_metrics ORDER BY business_date, entity_id, basis"
        ).fetchall()
    finally:
        con.close()


def test_generate_eod_twice_is_idempotent_and_report_formats(tmp_path):
    home, landing = tmp_path / "home", tmp_path / "landing"
    regcalc("generate", "--landing", str(landing), "--start-date", "2024-07-01", "--days", "2",
            "--entities", "3", "--positions", "3000", "--seed", "11", home=home)
    dates = sorted(p.name.split("=")[1] for p in landing.glob("business_date=*"))
    assert dates == ["2024-07-01", "2024-07-02"]
    out = regcalc("eod", "--date", dates[0], "--landing", str(landing), home=home).stdout
    assert "ok - 3 entities in 2 run(s)" in out  # all entities in one run + the date-level run
    first_storage, first_wh = storage_digest(home / "storage"), warehouse_rows(home)
    assert len(first_wh) == 3 * 2 and len(first_storage) >= 3 * 8  # base and adjusted rows
    regcalc("eod", "--date", dates[0], "--landing", str(landing), home=home)
    assert storage_digest(home / "storage") == first_storage
    assert warehouse_rows(home) == first_wh, "re-running EOD must not duplicate or change rows"

    rows = json.loads(regcalc("report", "--date", dates[0], "--format", "json", home=home).stdout)
    assert [r["entity_id"] for r in rows] == ["LE_001", "LE_002", "LE_003"]
    for row in rows:
        assert row["positions_accepted"] > 0
        assert row["net_outflows"] == pytest.approx(row["total_outflows"] - row["capped_inflows"])
        if row["lcr"] is not None:
            assert row["lcr"] == pytest.approx(row["hqla"] / row["net_outflows"])
    table = regcalc("report", "--date", dates[0], home=home).stdout
    assert "lcr" in table.splitlines()[0] and "LE_002" in table
    csv_out = regcalc("report", "--date", dates[0], "--format", "csv", home=home).stdout
    assert csv_out.splitlines()[0].startswith("business_date,entity_id,reporting_currency")
    assert len(csv_out.strip().splitlines()) == 4

    # lineage: every total of every entity traces, to the cent, to its positions (and rules)
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)

    def query(sql, params):
        cur = con.execute(sql, params)
        return [dict(zip([d[0] for d in cur.description], r)) for r in cur.fetchall()]

    reported = {(r["entity_id"], r["basis"]): r for r in query(
        "SELECT * FROM liquidity_metrics WHERE business_date = CAST(? AS DATE)", [dates[0]])}
    assert_traced_to_the_cent(traced_totals(query, dates[0]), reported)
    con.close()
    explained = json.loads(regcalc("explain", "--date", dates[0], "--entity", "LE_002", "--format", "json", home=home).stdout)
    lcr = explained["metrics"][0]
    assert lcr["metric"] == "lcr" and lcr["value"] == pytest.approx(reported[("LE_002", "adjusted")]["lcr"])
    for component in lcr["components"]:
        assert abs(component["traced_sum"] - component["amount"]) < 0.005
        assert len(component["largest_positions"]) == min(5, component["position_count"])


def test_unreadable_file_fails_the_date_naming_the_file(tmp_path, golden):
    home, landing = tmp_path / "home", tmp_path / "landing"
    shutil.copytree(golden / "landing", landing)
    broken = landing / "business_date=2024-06-28" / "counterparties.parquet"
    broken.write_bytes(b"this is not parquet")
    proc = regcalc("eod", "--date", "2024-06-28", "--landing", str(landing), home=home, check=False)
    assert proc.returncode != 0
    assert str(broken) in proc.stderr


def test_missing_file_fails_the_date_naming_the_file(tmp_path, golden):
    home, landing = tmp_path / "home", tmp_path / "landing"
    shutil.copytree(golden / "landing", landing)
    (landing / "business_date=2024-06-28" / "fx_rates.parquet").unlink()
    proc = regcalc("eod", "--date", "2024-06-28", "--landing", str(landing), home=home, check=False)
    assert proc.returncode != 0
    assert "fx_rates" in proc.stderr and "missing landing file" in proc.stderr
