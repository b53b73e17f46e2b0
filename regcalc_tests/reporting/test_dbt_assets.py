"""The dbt project as Dagster assets: its models downstream of the star, partitioned like the
stages, its data tests as asset checks that pass after the golden EOD, and a failing test that
fails the build and holds back what depends on the tested model."""

from __future__ import annotations

import dagster as dg
import pytest

from regcalc_tests.conftest import GOLDEN_DATE, copy_home

pytestmark = [pytest.mark.slow, pytest.mark.star]
MODELS = ["stg_metric", "stg_position_lines", "mart_lcr_daily", "mart_nsfr_daily", "mart_disclosure_lines_daily",
          "agg_liquidity_month_end", "agg_liquidity_quarterly", "disclosure_daily_values", "disclosures"]


def test_the_models_are_partitioned_assets_downstream_of_the_star():
    from regcalc_assets.definitions import defs
    from regcalc_assets.partitions import DATE_ENTITY

    graph = defs.resolve_asset_graph()
    for name in MODELS:
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == "reporting"
        assert node.partitions_def == DATE_ENTITY
    assert dg.AssetKey("warehouse_star") in graph.get(dg.AssetKey("stg_metric")).parent_keys
    checks = {c.asset_key.to_user_string(): c.name for c in graph.asset_check_keys}
    assert {"mart_lcr_daily", "mart_nsfr_daily", "disclosures", "mart_disclosure_lines_daily"} <= set(checks)
    assert dg.AssetKey("disclosures") in defs.resolve_job_def("eod_job").asset_layer.executable_asset_keys


def test_after_the_golden_eod_every_dbt_test_passed(golden_star_home, in_home):
    from regcalc_cli.instance import get_instance

    in_home(golden_star_home)
    instance = get_instance()
    from regcalc_assets.definitions import defs

    checks = [k for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key.to_user_string() in MODELS]
    assert len(checks) >= 15
    for key in checks:
        [record] = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
        evaluation = record.event.dagster_event.event_specific_data
        assert evaluation.passed, key
    for name in ("mart_lcr_daily", "disclosures"):
        assert instance.get_latest_materialization_event(dg.AssetKey(name)) is not None


def test_a_failing_dbt_test_fails_the_build_and_holds_back_what_depends_on_it(golden_star_home, tmp_path, in_home):
    """LE_UK's adjusted LCR is nulled in the star behind the pipeline's back: the not_null test of
    mart_lcr_daily fails, the run fails, and the aggregates built on that mart and the disclosures
    are not built. (dbt holds back only what follows a failing test of one model: a relationships
    test, which reads two, reports its failure without skipping.)"""
    import duckdb

    from regcalc_assets.definitions import build_definitions
    from regcalc_assets.reporting.assets import reporting_assets
    from regcalc_cli.instance import get_instance

    home = in_home(copy_home(golden_star_home, tmp_path / "home"))
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute("UPDATE fact_metric SET lcr = NULL WHERE entity_id = 'LE_UK' AND basis = 'ADJUSTED'")
    job = build_definitions().resolve_job_def("eod_job")
    result = job.execute_in_process(
        instance=get_instance(), asset_selection=list(reporting_assets().keys), raise_on_error=False,
        partition_key=dg.MultiPartitionKey({"date": GOLDEN_DATE, "entity": "LE_UK"}))
    assert not result.success
    failed = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations() if not e.passed}
    assert "mart_lcr_daily" in failed and failed["mart_lcr_daily"].check_name.startswith("not_null")
    built = {e.event_specific_data.materialization.asset_key.to_user_string()
             for e in result.get_asset_materialization_events()}
    assert {"mart_lcr_daily", "mart_nsfr_daily"} <= built
    assert not built & {"agg_liquidity_month_end", "agg_liquidity_quarterly", "disclosures"}
