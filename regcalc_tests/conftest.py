"""Shared fixtures: one session per engine per test run, golden example paths, isolated homes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REGCALC_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "examples" / "golden"
# every engine in turn; the JVM-backed one carries the `spark` marker (`-m "not spark"` skips it)
ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


@pytest.fixture(scope="session")
def duckdb_engine():
    from regcalc_resources.engine import DuckDBEngine

    return DuckDBEngine()


@pytest.fixture(scope="session")
def spark_engine():
    from regcalc_resources.engine import SparkEngine

    return SparkEngine(spark_conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})


@pytest.fixture(scope="session", params=ENGINES)
def engine(request):
    """Each engine in turn: every calculation test runs on both, so they provably agree."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture(scope="session")
def spark(engine):
    """The PySpark-API session of the current engine (sqlframe DuckDB or real Spark)."""
    return engine.session()


@pytest.fixture(scope="session")
def golden() -> Path:
    if not GOLDEN.exists():
        pytest.fail(f"golden example not found at {GOLDEN} (set REGCALC_SHARED)")
    return GOLDEN


@pytest.fixture(autouse=True)
def _star_only_where_tested(request, monkeypatch):
    """The star schema (REGCALC_STAR) is built only by the tests marked ``star``: the others test
    what comes before it, and would each spend seconds building it."""
    if request.node.get_closest_marker("star") is None:
        monkeypatch.setenv("REGCALC_STAR", "off")


@pytest.fixture()
def regcalc_home(tmp_path, monkeypatch) -> Path:
    """A fresh $REGCALC_HOME (Dagster instance, storage, warehouse) for one test."""
    home = tmp_path / "regcalc-home"
    monkeypatch.setenv("REGCALC_HOME", str(home))
    monkeypatch.delenv("REGCALC_STORAGE_ROOT", raising=False)
    monkeypatch.delenv("REGCALC_WAREHOUSE_PATH", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return home


@pytest.fixture(scope="session")
def postgres_uri(tmp_path_factory):
    """A real PostgreSQL 16 (the pgserver wheel) on a local socket, shared by the whole run."""
    import pgserver

    server = pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real S3 API (moto's server) on a loopback port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
