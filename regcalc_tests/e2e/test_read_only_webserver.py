"""The viewers' webserver (``dagster-webserver --read-only``, issue 16, section 6) on loopback over a
built home: reads through its GraphQL API work; every mutation (launch a run, launch a backfill,
wipe assets, delete a run, report an asset event, add or delete a dynamic partition)
is refused by the server itself, and the instance is unchanged afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from regcalc_tests.conftest import GOLDEN_DATE, REPO, copy_home
from regcalc_tests.e2e.test_dagster_ui import free_port, graphql, wait_until_serving

pytestmark = pytest.mark.slow
LOCATION = {"repositoryLocationName": "regcalc", "repositoryName": "__repository__"}
METRICS = {"path": ["liquidity_metrics"]}


def mutations(run_id: str) -> dict[str, tuple[str, dict]]:
    """Each mutation an anonymous caller could use to change the instance, well-formed (the
    server validates it against its schema before it checks the permission)."""
    result = "{ __typename ... on Error { message } }"
    return {
        "launchRun": ("mutation($p: ExecutionParams!) { launchRun(executionParams: $p) " + result + " }",
                      {"p": {"selector": {**LOCATION, "jobName": "eod_job"}, "runConfigData": {}}}),
        "launchPartitionBackfill": (
            "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) " + result + " }",
            {"p": {"partitionNames": [f"{GOLDEN_DATE}|LE_UK"], "assetSelection": [METRICS]}}),
        "wipeAssets": ("mutation($r: [PartitionsByAssetSelector!]!) { wipeAssets(assetPartitionRanges: $r) "
                       + result + " }", {"r": [{"assetKey": METRICS}]}),
        "deleteRun": ("mutation($id: String!) { deleteRun(runId: $id) " + result + " }", {"id": run_id}),
        "reportRunlessAssetEvents": (
            "mutation($p: ReportRunlessAssetEventsParams!) { reportRunlessAssetEvents(eventParams: $p) "
            + result + " }",
            {"p": {"eventType": "ASSET_MATERIALIZATION", "assetKey": METRICS, "partitionKeys": [f"{GOLDEN_DATE}|LE_UK"]}}),
        "addDynamicPartition": (
            "mutation($r: RepositorySelector!) { addDynamicPartition(repositorySelector: $r, "
            "partitionsDefName: \"legal_entities\", partitionKey: \"LE_INTRUDER\") " + result + " }", {"r": LOCATION}),
        "deleteDynamicPartitions": (
            "mutation($r: RepositorySelector!) { deleteDynamicPartitions(repositorySelector: $r, "
            "partitionsDefName: \"legal_entities\", partitionKeys: [\"LE_UK\"]) " + result + " }", {"r": LOCATION}),
    }


def state(instance) -> tuple:
    """What a mutation would change: the runs, the materializations of liquidity_metrics, the
    entity partitions, the backfills."""
    import dagster as dg

    runs = sorted(r.run_id for r in instance.get_runs())
    materialized = instance.fetch_materializations(dg.AssetKey("liquidity_metrics"), limit=100).records
    return (runs, sorted(r.storage_id for r in materialized), sorted(instance.get_dynamic_partitions("legal_entities")),
            len(instance.get_backfills()))


def test_the_read_only_webserver_serves_reads_and_refuses_every_mutation(golden_star_home, tmp_path, in_home):
    from regcalc_cli.instance import dagster_home, get_instance

    home = in_home(copy_home(golden_star_home, tmp_path / "home"))
    instance = get_instance()
    before = state(instance)
    assert before[0] and before[1], "the home holds runs and materializations to protect"
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home()), "REGCALC_HOME": str(home),
           "REGCALC_LANDING": str(golden_star_home.parent / "unused-landing")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "--read-only", "-h", "127.0.0.1", "-p", str(port),
         "-w", str(REPO / "workspace.yaml")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(proc, port)
        nodes = []
        for _ in range(120):  # the code location loads in the background
            nodes = graphql(port, "{ assetNodes { assetKey { path } } }", {}).get("data", {}).get("assetNodes") or []
            if nodes:
                break
            time.sleep(0.5)

        # reads work
        assert ["liquidity_metrics"] in [n["assetKey"]["path"] for n in nodes]
        runs = graphql(port, "{ runsOrError { __typename ... on Runs { results { runId status } } } }", {})
        listed = runs["data"]["runsOrError"]["results"]
        assert sorted(r["runId"] for r in listed) == before[0] and {r["status"] for r in listed} == {"SUCCESS"}
        permissions = graphql(port, "{ permissions { permission value } }", {})["data"]["permissions"]
        assert permissions and not [p["permission"] for p in permissions if p["value"]], "every permission off"

        # every mutation is refused by the server
        answers = {name: graphql(port, query, variables) for name, (query, variables) in mutations(before[0][0]).items()}
        refused = {name: (a.get("data") or {}).get(name, {}).get("__typename") for name, a in answers.items()}
        assert refused == dict.fromkeys(answers, "UnauthorizedError"), answers
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert state(instance) == before, "the instance is exactly as it was"
