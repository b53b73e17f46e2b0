"""The EOD at bank-scale settings, by configuration only: every stage stored on S3 (a real moto
server on loopback; REGCALC_STORAGE_ROOT=s3://...) and PostgreSQL as the warehouse (a real server;
REGCALC_WAREHOUSE_DSN): the golden figures, the load metadata, the S3 layout, and the command
line reading it back."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.star]


def test_golden_eod_on_s3_loads_postgresql_and_the_cli_reads_it(golden, regcalc_home, monkeypatch, postgres_uri,
                                                                 moto_endpoint):
    import boto3
    import dagster as dg
    import psycopg
    from click.testing import CliRunner

    from regcalc_cli.eod import run_eod
    from regcalc_cli.instance import get_instance
    from regcalc_cli.main import cli

    with psycopg.connect(postgres_uri, autocommit=True) as con:
        for table in ("liquidity_metrics", "liquidity_components", "adjustment_trail", "lineage"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        for view in ("agg_liquidity_month_end", "agg_liquidity_quarterly"):
            con.execute(f"DROP MATERIALIZED VIEW IF EXISTS {view}")
    monkeypatch.setenv("REGCALC_ENGINE", "duckdb")
    monkeypatch.setenv("REGCALC_WAREHOUSE_DSN", postgres_uri)
    monkeypatch.setenv("REGCALC_STORAGE_ROOT", "s3://regcalc-golden/stages")
    monkeypatch.setenv("REGCALC_S3_ENDPOINT_URL", moto_endpoint)
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    if "regcalc-golden" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="regcalc-golden")
    instance = get_instance()
    result = run_eod(instance, "2024-06-28", str(golden / "landing"))
    assert result.success, result.error

    with psycopg.connect(postgres_uri) as con:
        rows = con.execute("SELECT entity_id, basis, lcr, nsfr FROM liquidity_metrics ORDER BY entity_id, basis").fetchall()
        edges = con.execute("SELECT count(*) FROM lineage WHERE input_stage = 'adjusted_positions'").fetchone()[0]
        aggregated = con.execute("SELECT sum(position_count) FROM liquidity_components WHERE basis = 'adjusted'").fetchone()[0]
    # expected_base.csv (no rules: adjusted = base)
    assert [(e, b) for e, b, _, _ in rows] == [("LE_UK", "adjusted"), ("LE_UK", "base"), ("LE_US", "adjusted"), ("LE_US", "base")]
    assert rows[1][2] == pytest.approx(11.912166780588) and rows[3][3] == pytest.approx(1.822102098454)
    assert edges == aggregated > 42, "one lineage edge per (position, component) the components counted"
    with psycopg.connect(postgres_uri) as con:  # the star schema, loaded into PostgreSQL from S3-stored tables
        star = con.execute("SELECT e.entity_id, b.basis, d.date, m.lcr FROM fact_metric m "
                           "JOIN dim_legal_entity e USING (legal_entity_key) JOIN dim_basis b USING (basis_key) "
                           "JOIN dim_date d USING (date_key) ORDER BY 1, 2").fetchall()
    assert [(e, b, str(d)) for e, b, d, _ in star] == [
        ("LE_UK", "ADJUSTED", "2024-06-28"), ("LE_UK", "BASE", "2024-06-28"),
        ("LE_US", "ADJUSTED", "2024-06-28"), ("LE_US", "BASE", "2024-06-28")]
    assert star[1][3] == pytest.approx(11.912166780588, rel=1e-9)
    with psycopg.connect(postgres_uri) as con:  # the reporting layer, built by dbt-postgres from the environment
        marts = con.execute("SELECT entity_id, lcr_base, lcr_adjusted, lcr_variance FROM mart_lcr_daily "
                            "WHERE business_date = '2024-06-28' ORDER BY entity_id").fetchall()
        views = {r[0] for r in con.execute("SELECT matviewname FROM pg_matviews")}
        liq1 = con.execute("SELECT value FROM disclosures WHERE template = 'eu_liq1' AND entity_id = 'LE_UK' "
                           "AND quarter = '2024Q2' AND row = '23' AND column_code = 'e'").fetchone()
    assert [(e, round(b, 9), v) for e, b, _, v in marts] == [("LE_UK", 11.912166781, 0.0), ("LE_US", 7.001712329, 0.0)]
    assert {"agg_liquidity_month_end", "agg_liquidity_quarterly"} <= views, "the aggregates are materialized views"
    assert liq1[0] == pytest.approx(11.912166780588, rel=1e-9)

    [load] = instance.fetch_materializations(dg.AssetKey("warehouse_liquidity"), limit=1).records
    meta = load.asset_materialization.metadata
    assert meta["rows_loaded"].value == {"liquidity_metrics": 4, "liquidity_components": 32, "adjustment_trail": 0}
    assert all(m.startswith("postgresql") for m in meta["load_methods"].value.values())
    assert meta["rows_per_second"].value > 0

    pointers = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="regcalc-golden", Prefix="stages/")
                for o in page.get("Contents", []) if o["Key"].endswith("/_CURRENT")]
    assert "stages/lineage/business_date=2024-06-28/entity_id=LE_UK/_CURRENT" in pointers
    # 11 stages and 7 star tables (2 snapshots, 4 facts, the bridge) x 2 entities, the date-level
    # quarantine, and 12 whole star tables (10 dimensions with dim_date, 2 aggregates)
    assert len(pointers) == (11 + 7) * 2 + 1 + 12
    assert "stages/dim_legal_entity/table/_CURRENT" in pointers
    assert not (regcalc_home / "storage").exists(), "nothing stored on the local disk"

    out = CliRunner().invoke(cli, ["report", "--date", "2024-06-28", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert {r["entity_id"]: r["lcr"] for r in json.loads(out.output)} == {
        "LE_UK": pytest.approx(11.912166780588), "LE_US": pytest.approx(7.001712328767)}

    # the drill-down reads PostgreSQL (figures, lineage, trail) and the S3-stored position
    out = CliRunner().invoke(cli, ["explain", "--date", "2024-06-28", "--entity", "LE_UK", "--position", "UK-0003",
                                   "--format", "json"])
    assert out.exit_code == 0, out.output
    position = json.loads(out.output)["position"]
    factors = {f["field"]: f for f in position["factors"]}
    assert (position["source_row"], factors["rsf_factor"]["factor_rule"]) == (3, "RSF.SEC.L1")
    assert {c["component"] for c in position["contributions"]} == {"HQLA_L1", "RSF"}
