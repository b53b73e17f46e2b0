"""The circuit breaker for large impacts, end to end on the golden delivery with the shipped limits
(10 LCR points, 5 NSFR points): a rule that moves LE_US's LCR by 15 points holds LE_US back from
the warehouse, the star and the dbt marts while LE_UK publishes; the Dagster check says which
rule and what impact; an approver who made none of the rules acknowledges it; the next
recalculation publishes it with the figures of an unblocked run; a new version of the rule needs
a new acknowledgment."""

from __future__ import annotations

import csv

import pytest

from regcalc_tests.helpers import regcalc

pytestmark = pytest.mark.slow

DATE = "2024-06-28"
SHIPPED = {"REGCALC_IMPACT_THRESHOLDS": None}  # the shipped limits (conftest names high ones for the other tests)
QUICK = {**SHIPPED, "REGCALC_LINEAGE": "off"}
AS = ("--as-user-unverified", "--user")
ADJUSTED = "AND lower(basis) = 'adjusted'"  # the star's basis is upper case


def rule_file(tmp_path, hqla_add: float):
    """CB_US: a final-stage rule on LE_US's HQLA (the golden rules are not used)."""
    path = tmp_path / f"cb_{abs(int(hqla_add))}.yaml"
    path.write_text("- rule_id: CB_US\n  stage: final_calc\n  description: Liquidity buffer cut for LE_US\n"
                    "  conditions: [{field: entity_id, operator: '==', value: LE_US}]\n"
                    f"  adjustments: [{{field: hqla, operation: add, value: {hqla_add}}}]\n"
                    "  effective_date: 2024-01-01\n")
    return str(path)


def golden_us(golden) -> dict:
    with open(golden / "expected_base.csv", newline="") as fh:
        return next(r for r in csv.DictReader(fh) if r["entity_id"] == "LE_US")


def cut_for_points(golden, points: float) -> tuple[float, float]:
    """(the HQLA add-on that moves LE_US's LCR by ``points``, the LCR it gives), from the golden
    base figures: the rule changes HQLA after the caps, net outflows stay (liquidity-rules.md)."""
    base = golden_us(golden)
    net = float(base["net_outflows"])
    cut = -points / 100.0 * net
    return cut, (float(base["hqla"]) + cut) / net


def approve(tmp_path, home, hqla_add):
    regcalc("rules", "submit", rule_file(tmp_path, hqla_add), *AS, "analyst_a", home=home)
    regcalc("rules", "approve", "CB_US", *AS, "risk_admin", home=home)


def published(home, table: str, column: str = "lcr", where: str = "") -> dict[str, float]:
    """{entity: column} of the date's rows of a warehouse table (none while nothing was loaded)."""
    import duckdb

    if not (home / "warehouse.duckdb").exists():
        return {}
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        if not con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [table]).fetchall():
            return {}
        return dict(con.execute(f"SELECT entity_id, {column} FROM {table} WHERE business_date = DATE '{DATE}' {where}"
                                " ORDER BY entity_id").fetchall())
    finally:
        con.close()


def evaluation(instance, entity: str):
    """The latest evaluation of the circuit breaker for the entity's partition."""
    from regcalc_assets.circuit_breaker import latest_evaluation

    return latest_evaluation(instance, f"{DATE}|{entity}").event.dagster_event.event_specific_data


@pytest.mark.star
def test_a_large_impact_is_held_back_then_published_once_acknowledged(tmp_path, golden, in_home, monkeypatch, request):
    home, landing = tmp_path / "home", str(golden / "landing")
    cut, lcr_us = cut_for_points(golden, 15)
    assert cut == pytest.approx(-438_000.0)
    approve(tmp_path, home, cut)

    eod = regcalc("eod", "--date", DATE, "--landing", landing, home=home, env=QUICK, check=False)
    assert eod.returncode == 3, eod.stdout + eod.stderr
    assert "ok, 1 held back" in eod.stdout and "held back: LE_US, over its limit: LCR 700.17% -> 685.17% " \
        "(-15.00 points, limit 10)" in eod.stdout and "CB_US@v1 (final_calc, 1 change)" in eod.stdout
    # LE_UK is published everywhere; LE_US nowhere: the wide tables, the star, the dbt marts
    for table, column, where in (("liquidity_metrics", "lcr", ADJUSTED), ("fact_metric", "lcr", ADJUSTED),
                                 ("mart_lcr_daily", "lcr_adjusted", "")):
        assert list(published(home, table, column, where)) == ["LE_UK"], table
    in_home(home)
    from regcalc_cli.instance import get_instance

    instance = get_instance()
    request.addfinalizer(instance.dispose)
    held = evaluation(instance, "LE_US")
    assert not held.passed and held.blocking and held.description.startswith("over its limit: LCR 700.17% -> 685.17%")
    assert "regcalc rules acknowledge --date 2024-06-28 --entity LE_US" in held.description
    meta = {k: v.value for k, v in held.metadata.items()}
    assert meta["rules"] == ["CB_US@v1"] and meta["over_limit"] == "LCR" and meta["lcr_limit_points"] == 10.0
    assert meta["lcr_change_points"] == pytest.approx(-15.0) and meta["lcr"] == pytest.approx(lcr_us, rel=1e-12)
    assert meta["impact"]["rules"][0] == {"rule": "CB_US@v1", "rule_id": "CB_US", "version": 1, "stage": "final_calc",
                                          "changes": 1}
    assert meta["thresholds"].startswith("impact_thresholds@v1")
    within = evaluation(instance, "LE_UK")
    assert within.passed and within.description == ("within its limits: LCR 1191.22% -> 1191.22% (+0.00 points, "
                                                    "limit 10); NSFR 337.33% -> 337.33% (+0.00 points, limit 5)")

    # a run that selects a loader without liquidity_metrics (as from the UI) cannot publish it either
    import dagster as dg

    from regcalc_assets.definitions import build_definitions
    from regcalc_assets.partitions import date_range_tags

    monkeypatch.setenv("REGCALC_LANDING", landing)
    defs = build_definitions()
    sneaked = defs.resolve_job_def("eod_job").execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("warehouse_liquidity")], raise_on_error=False,
        tags=date_range_tags(DATE, "LE_US", "LE_US"))
    assert not sneaked.success
    assert "held back by the circuit breaker" in str(sneaked.all_events[-1].event_specific_data.error)
    assert list(published(home, "liquidity_metrics")) == ["LE_UK"]

    nothing = regcalc("recalc", "--date", DATE, "--landing", landing, home=home, env=QUICK)
    assert "nothing is stale" in nothing.stdout, "a held entity is not published by a recalculation"

    own = regcalc("rules", "acknowledge", "--date", DATE, "--entity", "LE_US", *AS, "analyst_a", home=home, check=False)
    assert own.returncode == 2 and "analyst_a made a version of rule CB_US and cannot acknowledge" in own.stderr
    unflagged = regcalc("rules", "acknowledge", "--date", DATE, "--entity", "LE_US", "--user", "risk_head", home=home,
                        check=False)
    assert unflagged.returncode == 2 and "--as-user-unverified" in unflagged.stderr
    not_held = regcalc("rules", "acknowledge", "--date", DATE, "--entity", "LE_UK", *AS, "risk_head", home=home,
                       check=False)
    assert not_held.returncode == 2 and "LE_UK on 2024-06-28 is not held back" in not_held.stderr
    ack = regcalc("rules", "acknowledge", "--date", DATE, "--entity", "LE_US", *AS, "risk_head", home=home)
    assert ack.stdout.startswith("acknowledged: LE_US on 2024-06-28 by risk_head (unverified)")
    assert "regcalc recalc --date 2024-06-28" in ack.stdout

    # the sensor would release it: one run, liquidity_metrics (its check) and what it held back
    from regcalc_assets.sensors import recalc_sensor
    from regcalc_resources import build_rule_store

    with dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def(),
                                 resources={"rules": build_rule_store()}) as context:
        requests = recalc_sensor(context).run_requests
    assert len(requests) == 1 and requests[0].tags["dagster/asset_partition_range_start"] == f"{DATE}|LE_US"
    assert {"liquidity_metrics", "warehouse_liquidity", "fact_metric", "mart_lcr_daily"} <= {
        k.to_user_string() for k in requests[0].asset_selection}

    released = regcalc("recalc", "--date", DATE, "--landing", landing, home=home, env=QUICK)
    assert "recomputed: liquidity_metrics 2024-06-28|LE_US" in released.stdout
    assert "recomputed: mart_lcr_daily 2024-06-28|LE_US" in released.stdout
    passed = evaluation(instance, "LE_US")
    assert passed.passed and passed.description.startswith("over its limit, acknowledged by risk_head")
    lcr = published(home, "liquidity_metrics", where=ADJUSTED)
    assert lcr["LE_US"] == pytest.approx(lcr_us, rel=1e-12)
    assert published(home, "fact_metric", where=ADJUSTED)["LE_US"] == lcr["LE_US"]
    assert published(home, "mart_lcr_daily", "lcr_adjusted")["LE_US"] == lcr["LE_US"]
    assert "nothing is stale" in regcalc("recalc", "--date", DATE, "--landing", landing, home=home, env=QUICK).stdout

    # the figures are an unblocked run's: the same rule, limits no rule reaches, another home
    other = tmp_path / "unblocked"
    approve(tmp_path, other, cut)
    regcalc("eod", "--date", DATE, "--landing", landing, "--entity", "LE_US", home=other,
            env={"REGCALC_LINEAGE": "off", "REGCALC_STAR": "off"})
    columns = "hqla, net_outflows, lcr, asf, rsf, nsfr, total_outflows, capped_inflows, positions_accepted"
    for basis in ("base", "adjusted"):
        where = f"AND basis = '{basis}' AND entity_id = 'LE_US'"
        assert published(home, "liquidity_metrics", f"({columns})", where) == \
            published(other, "liquidity_metrics", f"({columns})", where), basis


def ancestors(job, asset: str) -> set:
    """The asset and everything it is built from, in the job."""
    import dagster as dg

    graph, out, todo = job.asset_layer.asset_graph, set(), [dg.AssetKey(asset)]
    while todo:
        key = todo.pop()
        if key not in out and graph.get(key).is_materializable:
            out.add(key)
            todo += list(graph.get(key).parent_keys)
    return out


def test_a_scheduled_run_publishes_the_others_and_a_new_rule_version_needs_a_new_acknowledgment(
        tmp_path, golden, in_home, monkeypatch, request):
    """A run launched as the schedule launches it (one run for the date, no command line to finish
    it): the breaker stops it for both entities; the next recalculation publishes LE_UK and not
    LE_US. After the acknowledgment LE_US publishes; a new version of the rule moves it further,
    the old acknowledgment does not cover that impact, and LE_US keeps its published figures
    until the new impact is acknowledged."""
    import dagster as dg

    from regcalc_assets.definitions import build_definitions
    from regcalc_assets.partitions import date_range_tags
    from regcalc_assets.schedules import eod_run_request
    from regcalc_assets.sources.versions import observe

    home, landing = tmp_path / "home", str(golden / "landing")
    cut15, lcr15 = cut_for_points(golden, 15)
    cut20, lcr20 = cut_for_points(golden, 20)
    approve(tmp_path, home, cut15)
    in_home(home)
    for name, value in {**QUICK, "REGCALC_STAR": "off", "REGCALC_LANDING": landing}.items():
        monkeypatch.delenv(name) if value is None else monkeypatch.setenv(name, value)
    from regcalc_cli.instance import get_instance

    instance = get_instance()
    request.addfinalizer(instance.dispose)
    eod_run_request(instance, DATE, ["LE_UK", "LE_US"])  # registers the partitions, as the schedule does
    observe(instance, landing, [DATE])  # as the sensor keeps doing
    job = build_definitions().resolve_job_def("eod_job")
    wide = ancestors(job, "warehouse_liquidity") - {dg.AssetKey("lineage"), dg.AssetKey("warehouse_lineage")}
    run = job.execute_in_process(instance=instance, raise_on_error=False, tags=date_range_tags(DATE, "LE_UK", "LE_US"),
                                 asset_selection=sorted(wide))  # the wide tables: faster than the whole job
    assert not run.success and published(home, "liquidity_metrics") == {}

    after = regcalc("recalc", "--date", DATE, "--landing", landing, home=home, env=QUICK)
    recomputed = [line for line in after.stdout.splitlines() if line.startswith("recomputed:")]
    assert recomputed == ["recomputed: adjustment_trail 2024-06-28|LE_UK", "recomputed: warehouse_liquidity 2024-06-28|LE_UK"]
    assert list(published(home, "liquidity_metrics", where=ADJUSTED)) == ["LE_UK"]

    regcalc("rules", "acknowledge", "--date", DATE, "--entity", "LE_US", *AS, "risk_head", home=home)
    regcalc("recalc", "--date", DATE, "--landing", landing, home=home, env=QUICK)
    assert published(home, "liquidity_metrics", where=ADJUSTED)["LE_US"] == pytest.approx(lcr15, rel=1e-12)

    approve(tmp_path, home, cut20)  # CB_US version 2: -20 points
    again = regcalc("recalc", "--date", DATE, "--landing", landing, home=home, env=QUICK, check=False)
    assert again.returncode == 3, again.stdout + again.stderr
    assert "held back: LE_US on 2024-06-28, over its limit: LCR 700.17% -> 680.17% (-20.00 points" in again.stdout
    assert "CB_US@v2" in evaluation(instance, "LE_US").metadata["rules"].value[0]
    assert published(home, "liquidity_metrics", where=ADJUSTED)["LE_US"] == pytest.approx(lcr15, rel=1e-12), \
        "the published figures stay those acknowledged"
    assert "nothing is stale" in regcalc("recalc", "--date", DATE, "--landing", landing, home=home, env=QUICK).stdout

    ack = regcalc("rules", "acknowledge", "--date", DATE, "--entity", "LE_US", *AS, "risk_head", "--format", "json",
                  home=home)
    import json

    assert [r["rule"] for r in json.loads(ack.stdout)["impact"]["rules"]] == ["CB_US@v2"]
    regcalc("recalc", "--date", DATE, "--landing", landing, home=home, env=QUICK)
    assert published(home, "liquidity_metrics", where=ADJUSTED)["LE_US"] == pytest.approx(lcr20, rel=1e-12)
