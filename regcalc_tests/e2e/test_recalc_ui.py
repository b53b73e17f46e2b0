"""Staleness in the Dagster UI and the daemon's sensor, against real servers on loopback: an
approved rule makes exactly the affected partitions stale (webserver GraphQL), and the running
daemon brings them up to date by itself, with no CLI call."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import dagster as dg
import pytest
import yaml

from regcalc_cli.eod import run_eod
from regcalc_tests.conftest import REPO
from regcalc_tests.e2e.test_dagster_ui import free_port, graphql
from regcalc_tests.e2e.test_recalc import FROM_FINAL, STAR, expected, last_storage_id, materialized_since

pytestmark = pytest.mark.slow
DATE = "2024-06-28"
STALE_QUERY = """
query ($key: AssetKeyInput!, $partitions: [String!]) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode { staleStatusByPartition(partitions: $partitions) } }
}
"""


def golden_rule(golden, rule_id: str) -> dict:
    return next(r for r in yaml.safe_load((golden / "rules.yaml").read_text()) if r["rule_id"] == rule_id)


def start(command: list[str], env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise AssertionError(f"{command[2]} did not start: {proc.stderr.read()[-3000:]}")
            time.sleep(1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def next_sensor_tick(instance, after: float, timeout: float = 120):
    """The first completed tick of the recalc sensor that started after ``after`` (epoch seconds)."""
    from dagster._core.scheduler.instigation import TickStatus

    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [s for s in instance.all_instigator_state() if s.name == SENSOR["sensorName"]]
        for state in states:
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20)
            done = [t for t in ticks if t.timestamp > after and t.status != TickStatus.STARTED]
            if done:
                return min(done, key=lambda t: t.timestamp)
        time.sleep(2)
    raise AssertionError(f"no sensor tick completed within {timeout}s after the recomputation")


def stale_status(port: int, asset: str, entities: list[str]) -> dict[str, str]:
    partitions = [f"{DATE}|{e}" for e in entities]
    for _ in range(60):  # the code location loads in the background
        data = graphql(port, STALE_QUERY, {"key": {"path": [asset]}, "partitions": partitions})
        node = (data.get("data") or {}).get("assetNodeOrError") or {}
        if "staleStatusByPartition" in node:
            return dict(zip(entities, node["staleStatusByPartition"]))
        time.sleep(1)
    raise AssertionError(f"no stale status for {asset}: {data}")


@pytest.fixture()
def golden_eod(golden, regcalc_home, monkeypatch):
    monkeypatch.setenv("REGCALC_ENGINE", "duckdb")
    from regcalc_cli.instance import dagster_home, get_instance

    instance = get_instance()
    assert run_eod(instance, DATE, str(golden / "landing")).success
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home()), "REGCALC_LANDING": str(golden / "landing")}
    return instance, env


SENSOR = {"repositoryLocationName": "regcalc", "repositoryName": "__repository__", "sensorName": "recalc_sensor"}
SENSOR_STATE = """
query ($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor { sensorState { id status } } } }
"""
STOP_SENSOR = "mutation ($id: String) { stopSensor(id: $id) { __typename } }"
START_SENSOR = "mutation ($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename } }"


def sensor_state(port: int) -> dict:
    for _ in range(60):
        data = graphql(port, SENSOR_STATE, {"s": SENSOR})
        state = ((data.get("data") or {}).get("sensorOrError") or {}).get("sensorState")
        if state:
            return state
        time.sleep(1)
    raise AssertionError(f"no sensor state: {data}")


def test_stale_in_the_ui_until_the_daemon_recomputes_by_itself(golden, golden_eod):
    """`dagster dev` (webserver and daemon) on loopback. With the sensor paused, an approved rule
    shows exactly the partition it feeds as stale (GraphQL); once the sensor runs again, the daemon
    observes, recomputes that partition and what depends on it, and the UI shows it fresh."""
    from regcalc_assets.sources.versions import observe
    from regcalc_resources import build_resources, build_rule_store

    instance, env = golden_eod
    cursor = last_storage_id(instance)
    port = free_port()
    dev = start([sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port),
                 "-w", str(REPO / "workspace.yaml")], {**env, "REGCALC_SENSOR_SECONDS": "5"}, port)
    try:
        assert sensor_state(port)["status"] == "RUNNING", "the sensor runs by default"
        graphql(port, STOP_SENSOR, {"id": sensor_state(port)["id"]})
        assert sensor_state(port)["status"] == "STOPPED"
        assert stale_status(port, "liquidity_metrics", ["LE_UK", "LE_US"]) == {"LE_UK": "FRESH", "LE_US": "FRESH"}

        store = build_rule_store()
        rule = golden_rule(golden, "ADJ_2024_003")  # final stage, entities reporting in USD: LE_US
        store.submit([rule], rule["submitted_by"])
        store.approve(rule["rule_id"], rule["approval"]["user"])
        observe(instance, str(golden / "landing"))
        # the stage the rule feeds is stale for LE_US only (Dagster marks the asset whose direct
        # input changed; the sensor and `recalc` also recompute what lies downstream of it)
        assert stale_status(port, "liquidity_metrics", ["LE_UK", "LE_US"]) == {"LE_UK": "FRESH", "LE_US": "STALE"}
        assert stale_status(port, "liquidity_components", ["LE_UK", "LE_US"]) == {"LE_UK": "FRESH", "LE_US": "FRESH"}

        graphql(port, START_SENSOR, {"s": SENSOR})
        want = expected(FROM_FINAL - STAR, [DATE], ["LE_US"])  # the star is off here (REGCALC_STAR)
        deadline = time.time() + 300
        while not want <= materialized_since(instance, cursor):
            assert time.time() < deadline, f"the daemon did not recompute: {materialized_since(instance, cursor)}"
            time.sleep(3)
        done = time.time()
        tick = next_sensor_tick(instance, after=done)  # a further tick happened and found nothing to do
        assert tick.status.value == "SKIPPED" and not tick.run_ids, (tick.status, tick.run_ids, tick.skip_reason)
        assert materialized_since(instance, cursor) == want
        runs = instance.get_runs(dg.RunsFilter(tags={"regcalc/trigger": "sensor"}))
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
        assert stale_status(port, "liquidity_metrics", ["LE_UK", "LE_US"]) == {"LE_UK": "FRESH", "LE_US": "FRESH"}
    finally:
        stop(dev)
    rows = build_resources()["warehouse"].query("SELECT basis, hqla FROM liquidity_metrics WHERE entity_id = 'LE_US'")
    by_basis = {r["basis"]: r["hqla"] for r in rows}
    assert by_basis["adjusted"] == pytest.approx(by_basis["base"] * 0.97)
