"""Settings read from the environment: DuckDB's memory limit."""

from __future__ import annotations

import os


def test_duckdb_memory_limit_defaults_to_a_third_of_the_machine_and_is_configurable(monkeypatch, tmp_path):
    from regcalc_resources import build_engine
    from regcalc_resources.settings import duckdb_memory_limit

    monkeypatch.delenv("REGCALC_DUCKDB_MEMORY", raising=False)
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    assert duckdb_memory_limit() == f"{total_mb // 3}MB"
    monkeypatch.setenv("REGCALC_DUCKDB_MEMORY", "1GB")
    monkeypatch.setenv("REGCALC_HOME", str(tmp_path))
    engine = build_engine()
    limit, spill = engine.session()._conn.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    assert limit in ("953.6 MiB", "1.0 GB", "1.0 GiB") and spill == str(tmp_path / "duckdb-spill")
