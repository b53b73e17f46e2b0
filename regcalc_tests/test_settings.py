"""Settings read from the environment: DuckDB's memory limit; a multi-pod deployment refuses pod-local state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


# -- a multi-pod deployment (REGCALC_DEPLOYMENT=k8s) refuses state that would stay in one pod

SHARED_STATE = ("REGCALC_DEPLOYMENT", "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP", "REGCALC_RULES_DSN",
                "REGCALC_WAREHOUSE_DSN", "REGCALC_REDSHIFT_DSN", "REGCALC_STORAGE_ROOT", "REGCALC_WAREHOUSE_PATH")


@pytest.fixture()
def clean_deployment(monkeypatch, tmp_path):
    """No deployment variable of this machine's own; a fresh REGCALC_HOME."""
    for name in SHARED_STATE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REGCALC_HOME", str(tmp_path / "home"))
    return monkeypatch


def refusal(build) -> str:
    from regcalc_resources.settings import SharedStateError

    with pytest.raises(SharedStateError) as caught:
        build()
    assert "\n" not in str(caught.value)  # the command line prints one line
    return str(caught.value)


def test_a_multi_pod_deployment_on_local_state_refuses_naming_every_variable(clean_deployment):
    from regcalc_resources import build_resources, build_rule_store, build_stage_store, build_warehouse

    clean_deployment.setenv("REGCALC_DEPLOYMENT", "k8s")
    message = refusal(build_resources)
    assert message.startswith("a multi-pod deployment (REGCALC_DEPLOYMENT=k8s)")
    for variable in ("set REGCALC_RULES_DSN", "REGCALC_REDSHIFT_DSN", "REGCALC_WAREHOUSE_DSN", "set REGCALC_STORAGE_ROOT"):
        assert variable in message
    for build in (build_rule_store, build_stage_store, build_warehouse):  # each store alone too (the CLI)
        refusal(build)
    # only what is still missing is named
    clean_deployment.setenv("REGCALC_RULES_DSN", "postgresql://u@rules.invalid/rules")
    clean_deployment.setenv("REGCALC_STORAGE_ROOT", "s3://bucket/stages")
    message = refusal(build_resources)
    assert "REGCALC_RULES_DSN" not in message and "REGCALC_STORAGE_ROOT" not in message
    assert "REGCALC_WAREHOUSE_DSN" in message
    # a DuckDB warehouse at an explicit path is still pod-local
    clean_deployment.setenv("REGCALC_WAREHOUSE_PATH", "/data/warehouse.duckdb")
    assert "REGCALC_REDSHIFT_DSN" in refusal(build_resources)


def test_a_multi_pod_deployment_on_shared_state_starts(clean_deployment):
    from regcalc_resources import build_resources
    from regcalc_resources.rule_store import PostgresRuleStore
    from regcalc_resources.stage_store_s3 import S3StageStore
    from regcalc_resources.warehouse_postgres import PostgresWarehouse

    clean_deployment.setenv("REGCALC_DEPLOYMENT", "k8s")
    clean_deployment.setenv("REGCALC_RULES_DSN", "postgresql://u@rules.invalid/rules")
    clean_deployment.setenv("REGCALC_WAREHOUSE_DSN", "postgresql://u@warehouse.invalid/warehouse")
    clean_deployment.setenv("REGCALC_STORAGE_ROOT", "s3://bucket/stages")
    resources = build_resources()  # nothing is connected to while building
    assert isinstance(resources["rules"], PostgresRuleStore)
    assert isinstance(resources["warehouse"], PostgresWarehouse)
    assert isinstance(resources["stages"], S3StageStore)


def test_the_deployment_is_local_unless_said_or_in_a_chart_code_server(clean_deployment):
    from regcalc_core.errors import RegcalcInputError
    from regcalc_resources import build_resources
    from regcalc_resources.settings import check_shared_state, deployment

    assert deployment() == "local"
    check_shared_state()  # local state is fine on one machine
    assert set(build_resources()) >= {"rules", "warehouse", "stages"}
    # the official chart's code server sets this variable: that pod is multi-pod without being told
    clean_deployment.setenv("DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP", "regcalc-dagster-pipeline-env")
    assert deployment() == "k8s"
    assert "(DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP is set)" in refusal(check_shared_state)
    clean_deployment.setenv("REGCALC_DEPLOYMENT", "local")  # said explicitly: one pod, local state
    assert deployment() == "local"
    clean_deployment.setenv("REGCALC_DEPLOYMENT", "kubernetes")
    with pytest.raises(RegcalcInputError, match="REGCALC_DEPLOYMENT must be 'local' or 'k8s'"):
        deployment()


def test_the_command_line_refuses_a_pod_local_rule_store_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in SHARED_STATE}
    env.update(REGCALC_DEPLOYMENT="k8s", REGCALC_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "regcalc_cli.main", "rules", "list"], env=env, cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.startswith("error: a multi-pod deployment (REGCALC_DEPLOYMENT=k8s)")
    assert "set REGCALC_RULES_DSN" in out.stderr and len(out.stderr.strip().splitlines()) == 1
