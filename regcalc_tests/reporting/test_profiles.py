"""dbt's profile comes from the environment the warehouse resource gives it: DuckDB by default,
PostgreSQL or Redshift from their DSNs, credentials never in a file; the Redshift and PostgreSQL
targets make the aggregates materialized views (checked by dbt's own parser with each adapter)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from regcalc_assets.reporting.logic import PROJECT_DIR, build_vars, dbt_executable


def test_duckdb_is_the_embedded_default(tmp_path):
    from regcalc_resources.warehouse import DuckDBWarehouse

    env = DuckDBWarehouse(path=str(tmp_path / "w.duckdb")).dbt_profile_env()
    assert env == {"REGCALC_DBT_TARGET": "duckdb", "REGCALC_DBT_DUCKDB_PATH": str(tmp_path / "w.duckdb")}


def test_postgres_profile_from_the_dsn():
    from regcalc_resources.warehouse_postgres import PostgresWarehouse

    env = PostgresWarehouse(dsn="postgresql://analyst:s%40cret@db.internal:5433/risk?sslmode=require").dbt_profile_env()
    assert env == {"REGCALC_DBT_TARGET": "postgres", "REGCALC_DBT_HOST": "db.internal", "REGCALC_DBT_PORT": "5433",
                   "REGCALC_DBT_USER": "analyst", "REGCALC_DBT_PASSWORD": "s@cret", "REGCALC_DBT_DBNAME": "risk",
                   "REGCALC_DBT_SSLMODE": "require"}
    with pytest.raises(ValueError) as bad:
        PostgresWarehouse(dsn="postgresql://analyst:SECRETPASS@db:notaport/risk").dbt_profile_env()
    assert "SECRETPASS" not in str(bad.value)


def test_redshift_profile_from_the_dsn():
    from regcalc_resources.warehouse_redshift import RedshiftWarehouse

    warehouse = RedshiftWarehouse(dsn="redshift://loader:pw@cluster.abc.eu-west-1.redshift.amazonaws.com:5439/dev",
                                  iam_role="arn:aws:iam::1:role/r", staging_bucket="bucket")
    env = warehouse.dbt_profile_env()
    assert env["REGCALC_DBT_TARGET"] == "redshift" and env["REGCALC_DBT_PORT"] == "5439"
    assert env["REGCALC_DBT_DBNAME"] == "dev" and env["REGCALC_DBT_PASSWORD"] == "pw"


def test_the_profile_file_holds_no_secret():
    text = (PROJECT_DIR / "profiles.yml").read_text()
    assert "password: \"{{ env_var('REGCALC_DBT_PASSWORD'" in text
    for line in text.splitlines():
        if "password" in line:
            assert "env_var" in line


@pytest.mark.parametrize("target, materialized", [("duckdb", "table"), ("postgres", "materialized_view"),
                                                   ("redshift", "materialized_view")])
def test_each_adapter_parses_the_project(tmp_path, target, materialized):
    """dbt parse with each adapter (no connection is made): the project is valid for all three, and
    the aggregates are materialized views where the warehouse has them."""
    env = {**os.environ, "REGCALC_DBT_TARGET": target, "REGCALC_DBT_DUCKDB_PATH": ":memory:",
           "REGCALC_DBT_HOST": "127.0.0.1", "REGCALC_DBT_PASSWORD": "unused", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(
        [dbt_executable(), "parse", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
         "--target-path", str(tmp_path), "--log-path", str(tmp_path), "--vars", build_vars("2024-12-31", ["LE_A"])],
        env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == target
    nodes = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert nodes["agg_liquidity_month_end"]["config"]["materialized"] == materialized
    assert nodes["mart_lcr_daily"]["config"]["materialized"] == "incremental"
    assert nodes["stg_metric"]["config"]["materialized"] == "view"
