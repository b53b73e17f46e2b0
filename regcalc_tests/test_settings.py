"""Settings read from the environment: DuckDB's memory limit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_duckdb_memory_limit_defaults_to_a_quarter_of_the_machine(monkeypatch):
    from regcalc_resources.settings import duckdb_memory_limit

    monkeypatch.delenv("REGCALC_DUCKDB_MEMORY", raising=False)
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    assert duckdb_memory_limit() == f"{total_mb // 4}MB"


def test_the_engine_applies_the_configured_limit_and_spill_directory(tmp_path):
    # a fresh process: sqlframe keeps one DuckDB session per process, made by the first engine
    code = ("from regcalc_resources import build_engine; "
            "print(*build_engine().session()._conn.execute(\"SELECT current_setting('memory_limit'), "
            "current_setting('temp_directory')\").fetchone(), sep='|')")
    env = {**os.environ, "REGCALC_DUCKDB_MEMORY": "1GB", "REGCALC_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    limit, spill = out.stdout.strip().split("|")
    assert limit in ("953.6 MiB", "1.0 GB", "1.0 GiB") and spill == str(tmp_path / "duckdb-spill")
