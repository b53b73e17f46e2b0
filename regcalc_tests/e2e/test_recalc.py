"""Incremental recalculation end to end: after an EOD of several dates and entities, a rule
approval, a retirement and a re-delivered file each make exactly the affected (date, entity)
partitions stale from the changed source's stage downward; `recalc` materializes those and
nothing else (counted from the instance's event log), and the figures equal a full recompute."""

from __future__ import annotations

import datetime as dt
import shutil

import dagster as dg
import duckdb
import pytest

from regcalc_assets.sources.versions import consumed_versions, last_observed
from regcalc_cli.eod import run_eod
from regcalc_cli.recalc import run_recalc

pytestmark = [pytest.mark.slow, pytest.mark.star]
DATES = ["2024-07-01", "2024-07-02", "2024-07-03"]
ENTITIES = ["LE_001", "LE_002", "LE_003"]
INGESTION = {"landed_positions", "entity_profiles", "validated_positions", "quarantined_positions", "enriched_positions"}
LINEAGE = {"lineage", "warehouse_lineage"}  # downstream of every stage
# the star's facts (one multi-asset over every stage's output) and their load
# the dbt reporting layer downstream of the star, partition by partition (its seeds and what reads
# only them, the disclosure templates' rows and line map, are not touched by a rule or a delivery)
REPORTING = {"stg_metric", "stg_position_lines", "mart_lcr_daily", "mart_nsfr_daily", "mart_disclosure_lines_daily",
             "agg_liquidity_month_end", "agg_liquidity_quarterly", "disclosure_daily_values", "disclosure_observations",
             "disclosures"}
STAR = {"fact_position", "fact_component", "fact_metric", "fact_adjustment", "bridge_position_rule",
        "warehouse_star"} | REPORTING
SNAPSHOTS = {"counterparty_snapshot", "currency_snapshot"}
FROM_AGGREGATION = {"liquidity_components", "liquidity_metrics", "adjustment_trail", "warehouse_liquidity"} | LINEAGE | STAR
FROM_FINAL = {"liquidity_metrics", "adjustment_trail", "warehouse_liquidity"} | LINEAGE | STAR
FROM_DEAL = {"adjusted_positions", "component_breakdown"} | SNAPSHOTS | FROM_AGGREGATION
EVERY_STAGE = INGESTION | FROM_DEAL
# whole tables rebuilt in every run that recomputes a partition next to them (no partition key)
WHOLE = {(name, None) for name in ("dim_legal_entity", "dim_counterparty", "dim_product", "dim_currency",
                                   "dim_hqla_level", "dim_component", "dim_factor_row", "dim_adjustment_rule",
                                   "dim_basis", "dim_date", "agg_daily_liquidity", "agg_component_by_date")}

DEAL_RULE = {  # one entity, one date
    "rule_id": "LE002_LOANS", "stage": "deal_enrichment",
    "conditions": [{"field": "entity_id", "operator": "==", "value": "LE_002"},
                   {"field": "product", "operator": "==", "value": "LOAN"}],
    "adjustments": [{"field": "rsf_factor", "operation": "multiply", "value": 0.5}],
    "effective_date": "2024-07-02", "expiry_date": "2024-07-02",
}
AGGREGATION_RULE = {  # every entity, a date range
    "rule_id": "OUTFLOW_ADDON", "stage": "aggregation",
    "conditions": [{"field": "component", "operator": "==", "value": "OUTFLOWS"}],
    "adjustments": [{"field": "amount", "operation": "multiply", "value": 1.2}],
    "effective_date": "2024-07-01", "expiry_date": "2024-07-02",
}


def materialized_since(instance, cursor: int) -> set[tuple[str, str]]:
    """(asset, partition) of every materialization recorded after the storage id ``cursor``."""
    done = set()
    for key in instance.get_asset_keys():
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, after_storage_id=cursor),
                                                  limit=10_000).records
        done |= {(key.to_user_string(), r.partition_key) for r in records}
    return done


def last_storage_id(instance) -> int:
    """The newest materialization's storage id, over every asset."""
    ids = [r.storage_id for key in instance.get_asset_keys()
           for r in instance.fetch_materializations(key, limit=1).records]
    return max(ids, default=0)


def expected(assets: set[str], dates: list[str], entities: list[str]) -> set[tuple[str, str]]:
    return {(a, f"{d}|{e}") for a in assets for d in dates for e in entities}


def warehouse_rows(home) -> dict[str, list]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        out = {}
        for table, order in (("liquidity_metrics", "business_date, entity_id, basis"),
                             ("liquidity_components", "business_date, entity_id, basis, component"),
                             ("adjustment_trail", "business_date, entity_id, stage, row_key, step"),
                             ("lineage", "ALL"), ("fact_metric", "ALL"), ("fact_component", "ALL"),
                             ("fact_position", "ALL"), ("fact_adjustment", "ALL"), ("bridge_position_rule", "ALL"),
                             ("dim_legal_entity", "ALL"), ("dim_adjustment_rule", "ALL"),
                             ("agg_daily_liquidity", "ALL")):
            cur = con.execute(f"SELECT * EXCLUDE (loaded_at, run_id) FROM {table} ORDER BY {order}")
            out[table] = cur.fetchall()
        return out
    finally:
        con.close()


def recalc(instance, landing):
    cursor = last_storage_id(instance)
    result = run_recalc(instance, str(landing))
    assert result.success, result.error
    return result, materialized_since(instance, cursor)


def test_recalc_recomputes_exactly_what_changed(tmp_path, monkeypatch):
    from regcalc_assets.landing.generate import generate_landing
    from regcalc_cli.instance import get_instance
    from regcalc_resources import build_rule_store

    landing, home = tmp_path / "landing", tmp_path / "incremental"
    generate_landing(landing, dt.date(2024, 7, 1), len(DATES), len(ENTITIES), 3000, seed=11)
    # LE_002 renamed on the second date only: three versions in dim_legal_entity (A -> B -> A)
    entities = landing / "business_date=2024-07-02" / "entities.parquet"
    renamed = tmp_path / "renamed.parquet"
    duckdb.execute(f"COPY (SELECT * REPLACE (CASE WHEN entity_id = 'LE_002' THEN name || ' (renamed)' ELSE name END "
                   f"AS name) FROM read_parquet('{entities}')) TO '{renamed}' (FORMAT parquet)")
    shutil.move(renamed, entities)
    monkeypatch.setenv("REGCALC_ENGINE", "duckdb")
    monkeypatch.setenv("REGCALC_HOME", str(home))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    instance, store = get_instance(), build_rule_store()
    for date in DATES:
        assert run_eod(instance, date, str(landing)).success

    first, done = recalc(instance, landing)
    assert done == set() and first.recomputed_count == 0, "right after the EOD nothing is stale"

    # 1. a deal rule for one entity on one date: that partition, from the deal stage down
    store.submit([DEAL_RULE], "analyst")
    store.approve("LE002_LOANS", "approver")
    result, done = recalc(instance, landing)
    assert done == expected(FROM_DEAL, ["2024-07-02"], ["LE_002"]) | WHOLE
    assert result.changed_sources == {"deal_rules": ["2024-07-02|LE_002"]}
    assert len(result.run_ids) == 1
    # 34 partitioned assets (21, and the dbt project's 13) x 9 (date, entity) partitions + the date-level
    # quarantine of 3 dates are in scope; the deal stage down is 26 of them (8 stages, 2 snapshots,
    # 5 star facts, the star load, and the 10 dbt models that read the star)
    in_scope = (21 + 13) * len(DATES) * len(ENTITIES) + len(DATES)
    assert (result.recomputed_count, result.reused) == (26, in_scope - 26)
    [load] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("warehouse_liquidity"), asset_partitions=["2024-07-02|LE_002"]),
        limit=1).records
    meta = load.asset_materialization.metadata
    assert meta["recalc_partitions_recomputed"].value == 26 and meta["recalc_partitions_reused"].value == in_scope - 26
    assert meta["recalc_cache_hit_rate"].value == pytest.approx(round((in_scope - 26) / in_scope, 4))
    assert meta["recalc_rows_affected"].value > 0
    # the recomputed stage recorded the rule-set version it consumed, in its metadata and output
    observed = last_observed(instance, "deal_rules")["2024-07-02|LE_002"]
    assert consumed_versions(instance, "adjusted_positions")["2024-07-02|LE_002"] == observed
    assert consumed_versions(instance, "adjusted_positions")["2024-07-01|LE_002"] != observed
    stored = home / "storage" / "adjusted_positions" / "business_date=2024-07-02" / "entity_id=LE_002"
    assert duckdb.execute(f"SELECT DISTINCT deal_rules_version FROM '{stored}/*.parquet'").fetchall() == [(observed,)]

    # 2. an aggregation rule over two dates and every entity: aggregation down, those dates
    store.submit([AGGREGATION_RULE], "analyst")
    store.approve("OUTFLOW_ADDON", "approver")
    result, done = recalc(instance, landing)
    assert done == expected(FROM_AGGREGATION, DATES[:2], ENTITIES) | WHOLE
    assert len(result.run_ids) == 2, "one run per date, all entities together"

    # 3. retiring the deal rule (asked, then approved): back to its partition only
    store.retire("LE002_LOANS", "analyst")
    store.approve("LE002_LOANS", "approver")  # a retirement takes effect once a second person approves it
    _, done = recalc(instance, landing)
    assert done == expected(FROM_DEAL, ["2024-07-02"], ["LE_002"]) | WHOLE

    # 4. a re-delivered positions file (one balance corrected): every stage of that date
    positions = landing / "business_date=2024-07-03" / "positions.parquet"
    corrected = tmp_path / "corrected.parquet"
    duckdb.execute(f"COPY (SELECT * REPLACE (CASE WHEN row_number() OVER () = 1 THEN balance * 2 ELSE balance END "
                   f"AS balance) FROM read_parquet('{positions}')) TO '{corrected}' (FORMAT parquet)")
    shutil.move(corrected, positions)
    result, done = recalc(instance, landing)
    assert done == expected(EVERY_STAGE, ["2024-07-03"], ENTITIES) | {("unassigned_positions", "2024-07-03")} | WHOLE
    assert result.changed_sources == {"landing_delivery": ["2024-07-03"]}

    # the incremental state equals a full recompute with the same rules and delivery, run backwards
    # (each date a backfill of the ones already done): the same warehouse rows, and star dimension
    # files identical byte for byte
    full = tmp_path / "full"
    full.mkdir()
    shutil.copy(home / "rules.duckdb", full / "rules.duckdb")
    monkeypatch.setenv("REGCALC_HOME", str(full))
    monkeypatch.setenv("REGCALC_REPORTING", "off")  # compared below: the warehouse tables, not the dbt marts
    full_instance = get_instance()
    for date in reversed(DATES):
        assert run_eod(full_instance, date, str(landing)).success
    for name, _ in sorted(WHOLE):
        if name.startswith("dim_"):
            mine, theirs = (h / "storage" / name / "table" / "part-0.parquet" for h in (home, full))
            assert mine.read_bytes() == theirs.read_bytes(), f"{name} depends on the order the dates were processed in"
    versions = duckdb.execute(
        f"SELECT name_col, valid_from, valid_to, is_current FROM (SELECT entity_name AS name_col, * FROM "
        f"read_parquet('{full}/storage/dim_legal_entity/table/*.parquet')) WHERE entity_id = 'LE_002' "
        "ORDER BY valid_from").fetchall()
    assert [(v[1].isoformat(), v[2].isoformat(), v[3]) for v in versions] == [
        ("2024-07-01", "2024-07-02", False), ("2024-07-02", "2024-07-03", False), ("2024-07-03", "9999-12-31", True)]
    assert versions[1][0].endswith("(renamed)") and versions[0][0] == versions[2][0]
    # a backfill that extends an SCD2 version backwards gives it a new key (its valid_from is in
    # the key): the facts of the later dates keep the old one until their EOD runs again
    dangling = duckdb.execute(
        f"SELECT count(*) FROM read_parquet('{full}/storage/fact_metric/business_date=*/entity_id=*/*.parquet', hive_partitioning = false) "
        f"WHERE legal_entity_key NOT IN (SELECT legal_entity_key FROM read_parquet("
        f"'{full}/storage/dim_legal_entity/table/*.parquet'))").fetchone()[0]
    assert dangling > 0
    for date in DATES[1:]:
        assert run_eod(full_instance, date, str(landing)).success
    incremental, recomputed = warehouse_rows(home), warehouse_rows(full)
    assert incremental == recomputed
    assert any(r[4] == "OUTFLOW_ADDON" for r in incremental["adjustment_trail"]), "the aggregation rule applied"
    assert any(r[1] == "OUTFLOW_ADDON" for r in incremental["dim_adjustment_rule"]), "the star keeps the rule versions"
