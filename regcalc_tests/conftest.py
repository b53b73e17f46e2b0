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


def pytest_configure(config):
    """Impact limits no test rule reaches (``REGCALC_IMPACT_THRESHOLDS``, unless it is set), for
    every test and the homes built once: the tests of figures are not about the circuit breaker,
    and the golden rules alone move LE_UK's LCR far past the shipped 10 points. The circuit
    breaker's own tests unset it, so that they run on the shipped limits."""
    os.environ.setdefault("REGCALC_IMPACT_THRESHOLDS", str(REPO / "regcalc_tests" / "metrics" / "impact_thresholds_high.yaml"))


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


def role_dsn(uri: str, role: str, database: str | None = None) -> str:
    """The pgserver URI (``postgresql://postgres:@/postgres?host=...``) as another login role
    and/or database (the local socket trusts its roles; the identity is still the role)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, f"{role}:@", "/" + (database or parts.path.lstrip("/")), parts.query, ""))


RULE_ANALYSTS = ("alice", "analyst_a", "analyst_b", "a", "carol")  # regcalc_analyst
RULE_APPROVERS = ("bob", "carol", "analyst_a", "analyst_b", "risk_admin", "risk_head", "b")  # regcalc_approver


@pytest.fixture()
def rules_database(postgres_uri, request):
    """A fresh PostgreSQL database set up by `regcalc rules init-db --apply` (as the superuser),
    and ``dsn(role)``: the DSN of a login role there. alice is only regcalc_analyst, bob and the
    risk_* roles only regcalc_approver, carol and the analyst_* roles both (so that the database's
    own four-eyes check is what refuses them); ``mallory`` has no group, ``pipeline`` only reads."""
    import re

    import psycopg

    from regcalc_resources.rule_store import PostgresRuleStore

    name = "rules_" + re.sub(r"\W", "_", request.node.name.lower())[-40:]
    with psycopg.connect(postgres_uri, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        con.execute(f"CREATE DATABASE {name}")
    PostgresRuleStore(dsn=role_dsn(postgres_uri, "postgres", name)).init_db()
    with psycopg.connect(role_dsn(postgres_uri, "postgres", name), autocommit=True) as con:
        for role in sorted(set(RULE_ANALYSTS + RULE_APPROVERS + ("mallory", "pipeline"))):
            if not con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                con.execute(f"CREATE ROLE {role} LOGIN")
        con.execute(f"GRANT regcalc_analyst TO {', '.join(RULE_ANALYSTS)}")
        con.execute(f"GRANT regcalc_approver TO {', '.join(RULE_APPROVERS)}")
        con.execute("GRANT regcalc_reader TO pipeline")
        con.execute(f"GRANT CONNECT ON DATABASE {name} TO PUBLIC")
    return lambda role: role_dsn(postgres_uri, role, name)


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real S3 API (moto's server) on a loopback port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory, worker_id) -> Path:
    """A directory every xdist worker of this run sees (the basetemp's parent), for state built
    once per run (see ``built_once``)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if worker_id != "master" else base


def built_once(shared_dir: Path, name: str, build) -> Path:
    """``shared_dir/name``, built by ``build(path)`` by whichever worker gets there first while the
    others wait on a file lock; a ``.done`` marker tells that it is complete. Consumers read it and
    never write to it (copy it first: ``copy_home``)."""
    import fcntl

    target, done = shared_dir / name, shared_dir / f"{name}.done"
    with open(shared_dir / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            import shutil

            shutil.rmtree(target, ignore_errors=True)
            build(target)
            done.touch()
    return target


def copy_home(source: Path, target: Path) -> Path:
    """A writable copy of a home built once (Dagster instance, storage, warehouse, rule store)."""
    import shutil

    shutil.copytree(source, target, symlinks=True)
    config = target / "dagster" / "dagster.yaml"  # the instance names its own storage directory
    if config.exists():
        config.write_text(config.read_text().replace(str(source), str(target)))
    return target


def _clean_env(mp: pytest.MonkeyPatch, home: Path) -> None:
    for name in ("REGCALC_STORAGE_ROOT", "REGCALC_WAREHOUSE_PATH", "REGCALC_WAREHOUSE_DSN", "DAGSTER_HOME",
                 "REGCALC_STAR", "REGCALC_RULES_DSN", "REGCALC_LANDING"):
        mp.delenv(name, raising=False)
    mp.setenv("REGCALC_HOME", str(home))
    mp.setenv("REGCALC_ENGINE", "duckdb")


GOLDEN_DATE = "2024-06-28"


@pytest.fixture(scope="session")
def golden_star_home(shared_dir, golden) -> Path:
    """One golden EOD (2024-06-28, rules.yaml approved) on the embedded default with the star
    schema, built once per test run and shared by every worker: read it, never write to it."""
    import yaml

    def build(home: Path) -> None:
        with pytest.MonkeyPatch.context() as mp:
            _clean_env(mp, home)
            from regcalc_cli.eod import run_eod
            from regcalc_cli.instance import get_instance
            from regcalc_resources import build_rule_store

            store = build_rule_store()
            for raw in yaml.safe_load((golden / "rules.yaml").read_text()):
                store.submit([raw], raw["submitted_by"])
                store.approve(raw["rule_id"], raw["approval"]["user"])
            result = run_eod(get_instance(), GOLDEN_DATE, str(golden / "landing"))
            assert result.success, result.error

    return built_once(shared_dir, "golden-star-home", build)


@pytest.fixture()
def in_home(monkeypatch):
    """Point this test's environment at a home (as ``regcalc_home`` does for a fresh one)."""
    def enter(home: Path) -> Path:
        _clean_env(monkeypatch, home)
        return home

    return enter


def last_business_days(year: int) -> list:
    """The last weekday of each month of ``year``."""
    import datetime as dt

    days = []
    for month in range(1, 13):
        day = (dt.date(year, month % 12 + 1, 1) if month < 12 else dt.date(year + 1, 1, 1)) - dt.timedelta(days=1)
        while day.weekday() >= 5:
            day -= dt.timedelta(days=1)
        days.append(day)
    return days


REPORTING_EXTRA_DAYS = ["2024-10-15", "2024-11-14", "2024-12-17"]


@pytest.fixture(scope="session")
def reporting_home(shared_dir) -> Path:
    """A generated landing zone of two entities with the twelve month-ends of 2024 and three days in
    between (in Q4), every date through the EOD with the star schema (lineage off), and the
    reporting layer (dbt) built once by the last EOD: built once per test run, shared by every worker (read only).
    Its landing zone is ``<home>/landing``."""
    import datetime as dt

    def build(home: Path) -> None:
        with pytest.MonkeyPatch.context() as mp:
            _clean_env(mp, home)
            from regcalc_assets.landing.generate import generate_landing
            from regcalc_cli.eod import run_eod
            from regcalc_cli.instance import get_instance

            landing = home / "landing"
            dates = sorted(last_business_days(2024) + [dt.date.fromisoformat(d) for d in REPORTING_EXTRA_DAYS])
            for day in dates:
                generate_landing(landing, day, 1, entities=2, positions=150, seed=11)
            instance = get_instance()
            mp.setenv("REGCALC_LINEAGE", "off")  # not read by the reporting layer; saves seconds per date
            for day in dates:  # the reporting layer once, at the end: its first build takes every date
                mp.setenv("REGCALC_REPORTING", "on" if day == dates[-1] else "off")
                result = run_eod(instance, day.isoformat(), str(landing))
                assert result.success, (day, result.error)

    return built_once(shared_dir, "reporting-home", build)


@pytest.fixture(scope="session")
def spark_connect(tmp_path_factory):
    """A local Spark Connect server (the pyspark wheel's) on a free loopback port, for the whole
    run, stopped at the end; its logs under ``<tmp>/server``. ``driver``: a directory the server
    cannot see (an empty read-only mount over it, in the server's own mount namespace, where the
    machine allows one: ``isolated``), for what stays on the driver; ``shared``: one both see, for
    the storage root. A pyspark process holds either a Connect or a classic session, never both:
    use the server from a subprocess (``regcalc eod``)."""
    from types import SimpleNamespace

    from regcalc_resources.spark_connect import start_local_connect_server

    work = tmp_path_factory.mktemp("spark-connect")
    driver, shared = work / "driver", work / "shared"
    driver.mkdir()
    shared.mkdir()
    server = start_local_connect_server(work / "server", hidden=[driver])
    try:
        yield SimpleNamespace(url=server.url, driver=driver, shared=shared, isolated=server.isolated, log=server.log)
    finally:
        server.stop()
