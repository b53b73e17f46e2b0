"""The Dagster webserver (on loopback) shows the partitions and materializations the CLI wrote."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from regcalc_cli.eod import run_eod
from regcalc_tests.conftest import REPO

pytestmark = pytest.mark.slow
DATE = "2024-06-28"

QUERY = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      partitionKeysByDimension { name partitionKeys }
      assetMaterializations(limit: 10) { partition metadataEntries { label } }
      description
    }
  }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(proc, port: int, poll: float = 0.5, timeout: float = 120) -> None:
    """Wait for a webserver started as ``proc`` to answer /server_info on loopback; fail with the
    end of its stderr if it exits or does not answer in time."""
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
            return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"webserver did not start: {proc.stderr.read()[-3000:]}")
            time.sleep(poll)


def graphql(port: int, query: str, variables: dict) -> dict:
    body = json.dumps({"query": query, "variables": variables}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_webserver_shows_cli_state(golden, regcalc_home, monkeypatch):
    monkeypatch.setenv("REGCALC_ENGINE", "duckdb")
    from regcalc_cli.instance import dagster_home, get_instance

    assert run_eod(get_instance(), DATE, str(golden / "landing")).success
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home()), "REGCALC_LANDING": str(golden / "landing")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until_serving(proc, port, poll=1)
        node = {}
        for _ in range(60):  # the code location loads in the background
            data = graphql(port, QUERY, {"key": {"path": ["liquidity_metrics"]}})
            node = data.get("data", {}).get("assetNodeOrError") or {}
            if "partitionKeysByDimension" in node:
                break
            time.sleep(1)
        dims = {d["name"]: d["partitionKeys"] for d in node["partitionKeysByDimension"]}
        assert sorted(dims["entity"]) == ["LE_UK", "LE_US"]
        assert DATE in dims["date"]
        partitions = {m["partition"] for m in node["assetMaterializations"]}
        assert partitions == {f"{DATE}|LE_UK", f"{DATE}|LE_US"}
        labels = {e["label"] for m in node["assetMaterializations"] for e in m["metadataEntries"]}
        assert {"row_count", "rows_per_second", "write_seconds", "figures"} <= labels
        assert "One row per (business_date, entity_id)" in node["description"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
