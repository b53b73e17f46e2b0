"""The golden example (shared/examples/golden) through the real pipeline: Dagster runs, storage, warehouse."""

from __future__ import annotations

import csv

import pytest

from regcalc_tests.conftest import ENGINES

from regcalc_cli.eod import run_eod
from regcalc_cli.report import fetch_report
from regcalc_tests.helpers import assert_traced_to_the_cent, traced_totals

pytestmark = pytest.mark.slow
DATE = "2024-06-28"
COUNTS = ("positions_accepted", "positions_quarantined")


def expected_rows(golden, name="expected_base.csv") -> dict[str, dict]:
    with open(golden / name, newline="") as fh:
        return {row["entity_id"]: row for row in csv.DictReader(fh)}


def assert_matches(actual: list[dict], expected: dict[str, dict]) -> None:
    assert sorted(r["entity_id"] for r in actual) == sorted(expected)
    for row in actual:
        want = expected[row["entity_id"]]
        assert row["reporting_currency"] == want["reporting_currency"]
        for column, value in want.items():
            if column in ("business_date", "entity_id", "reporting_currency"):
                continue
            if column in COUNTS:
                assert row[column] == int(value), (row["entity_id"], column)
            else:
                assert row[column] == pytest.approx(float(value), rel=1e-9, abs=1e-6), (row["entity_id"], column)


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("landing", ["landing", "landing_csv"])
def test_golden_base_figures(golden, regcalc_home, monkeypatch, engine_name, landing):
    monkeypatch.setenv("REGCALC_ENGINE", engine_name)
    from regcalc_cli.instance import get_instance
    from regcalc_resources import build_resources

    result = run_eod(get_instance(), DATE, str(golden / landing))
    assert result.success, result.error
    assert len(result.run_ids) == 2, "one run serves every entity of the date, one the date-level quarantine"
    warehouse = build_resources()["warehouse"]
    assert_matches(fetch_report(warehouse, DATE, "base"), expected_rows(golden))
    assert_matches(fetch_report(warehouse, DATE), expected_rows(golden))  # no rules: adjusted = base
    assert_traced_to_the_cent(traced_totals(warehouse.query, DATE),
                              {(e, b): r for e, r in expected_rows(golden).items() for b in ("base", "adjusted")})
    assert_column_lineage_and_openlineage(get_instance(), regcalc_home, result.run_ids[0])


STAGES = ["landed_positions", "entity_profiles", "validated_positions", "quarantined_positions", "enriched_positions",
          "adjusted_positions", "component_breakdown", "liquidity_components", "liquidity_metrics", "adjustment_trail",
          "lineage"]
SOURCES = {"landing_delivery", "deal_rules", "aggregation_rules", "final_rules"}


def assert_column_lineage_and_openlineage(instance, home, run_id):
    """Each stage the run stored is described once (an observation of the asset for the run, not
    its every partition's materialization) by its table schema and column lineage: every column
    has at least one upstream column (except the constants the pipeline sets, such as ``basis``)
    and every upstream column exists in that upstream's own schema. The OpenLineage file has a
    START and a COMPLETE event per stage with the same schema and the run's partitions."""
    import json

    import dagster as dg

    constants = {"factor_regime", "basis", "component_order", "stage", "output_stage", "input_stage", "role"}
    schemas, lineages = {}, {}
    for asset in STAGES:
        [record] = instance.fetch_observations(dg.AssetKey(asset), limit=1).records
        meta = record.asset_observation.metadata
        assert meta["run_id"].value == run_id
        schemas[asset] = [c.name for c in meta["dagster/column_schema"].value.columns]
        lineages[asset] = meta["dagster/column_lineage"].value.deps_by_column
    for asset in STAGES:
        assert set(schemas[asset]) - constants <= set(lineages[asset]) <= set(schemas[asset]), \
            (asset, set(schemas[asset]) ^ set(lineages[asset]))
        for column, deps in lineages[asset].items():
            for dep in deps:
                upstream = dep.asset_key.path[-1]
                assert upstream in SOURCES or dep.column_name in schemas[upstream], (asset, column, upstream, dep.column_name)
    assert {d.column_name for d in lineages["enriched_positions"]["amount"]} == {
        "product", "balance", "quantity", "price", "fx_rate", "reporting_fx_rate"}
    assert {d.asset_key.path[-1] for d in lineages["liquidity_components"]["business_date"]} == {
        "component_breakdown", "entity_profiles"}

    events = [json.loads(line) for line in (home / "openlineage" / "events.ndjson").read_text().splitlines()]
    mine = [e for e in events if e["run"]["facets"]["dagster"]["runId"] == run_id]
    complete = {e["job"]["name"]: e for e in mine if e["eventType"] == "COMPLETE"}
    assert set(STAGES) | {"warehouse_liquidity", "warehouse_lineage"} <= set(complete)
    assert sum(e["eventType"] == "START" for e in mine) == len(complete)
    lineage_event = complete["lineage"]
    assert [f["name"] for f in lineage_event["outputs"][0]["facets"]["schema"]["fields"]] == schemas["lineage"]
    assert lineage_event["run"]["facets"]["dagster"]["partitionKeys"] == [f"{DATE}|LE_UK", f"{DATE}|LE_US"]
    assert "adjusted_positions" in {i["name"] for i in lineage_event["inputs"]}


@pytest.mark.parametrize("engine_name", ENGINES)
def test_golden_rules_through_the_store_give_the_adjusted_figures(golden, regcalc_home, monkeypatch, engine_name):
    """rules.yaml submitted by analysts and approved by another user reproduces expected_adjusted.csv."""
    import yaml

    monkeypatch.setenv("REGCALC_ENGINE", engine_name)
    from regcalc_cli.instance import get_instance
    from regcalc_resources import build_resources, build_rule_store

    store = build_rule_store()
    rules = yaml.safe_load((golden / "rules.yaml").read_text())
    for raw in rules:
        store.submit([raw], raw["submitted_by"])
        store.approve(raw["rule_id"], raw["approval"]["user"])
    result = run_eod(get_instance(), DATE, str(golden / "landing"))
    assert result.success, result.error
    warehouse = build_resources()["warehouse"]
    adjusted = fetch_report(warehouse, DATE)
    assert_matches(adjusted, expected_rows(golden, "expected_adjusted.csv"))
    assert_matches(fetch_report(warehouse, DATE, "base"), expected_rows(golden))
    base = {r["entity_id"]: r for r in fetch_report(warehouse, DATE, "base")}
    for row in adjusted:
        assert row["lcr_variance"] == pytest.approx(row["lcr"] - base[row["entity_id"]]["lcr"])
    assert_golden_trail(golden, warehouse)
    assert_golden_lineage(golden, warehouse, get_instance())
    assert_golden_explain()


def assert_golden_lineage(golden, warehouse, instance):
    """Each total of expected_base.csv and expected_adjusted.csv is, to the cent, the sum of the
    contributions of the positions the warehouse lineage traces to it (plus the rules' changes);
    the lineage checks passed on the materialization."""
    import dagster as dg

    expected = {(e, "base"): r for e, r in expected_rows(golden).items()}
    expected |= {(e, "adjusted"): r for e, r in expected_rows(golden, "expected_adjusted.csv").items()}
    assert_traced_to_the_cent(traced_totals(warehouse.query, DATE), expected)
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("lineage"), name) for name in ("keys_survive_every_stage", "figures_trace_to_inputs_to_the_cent")])
    assert len(checks) == 2 and all(c.status.value == "SUCCEEDED" for c in checks.values()), checks


def assert_golden_explain():
    """`regcalc explain` on UK-0003 (a Level 1 bond maturing 2031-01-31, held by LE_UK): the exact
    liquidity-rules.md rows behind its haircut and RSF factor, and ADJ_2024_001 (RSF x 0.95 then
    haircut + 0.05) with its before and after values."""
    import json

    from click.testing import CliRunner

    from regcalc_cli.main import cli

    out = CliRunner().invoke(cli, ["explain", "--date", DATE, "--entity", "LE_UK", "--position", "UK-0003", "--format", "json"])
    assert out.exit_code == 0, out.output
    position = json.loads(out.output)["position"]
    assert position["position"] == "TREASURY/UK-0003" and position["source_row"] == 3
    assert position["source_file"].endswith("business_date=2024-06-28/positions.parquet")
    factors = {f["field"]: f for f in position["factors"]}
    assert factors["haircut"]["factor_rule"] == "HAIRCUT.L1"
    assert factors["haircut"]["spec"] == [{"document": "liquidity-rules.md", "section": "LCR: stock of HQLA", "row": "| L1 | 0.00 |"}]
    assert factors["rsf_factor"]["factor_rule"] == "RSF.SEC.L1"
    assert factors["rsf_factor"]["spec"][0]["row"] == "| SECURITY | level L1 | 0.05 |"
    assert factors["rsf_factor"]["spec"][0]["section"] == "NSFR: required stable funding (assets and off balance sheet)"
    assert (factors["rsf_factor"]["value"], factors["rsf_factor"]["base_value"]) == pytest.approx((0.0475, 0.05))
    assert factors["outflow_rate"]["factor_rule"] is None
    assert [(a["rule"], a["field"], a["before"], a["after"]) for a in position["adjustments"]] == [
        ("ADJ_2024_001@v1", "rsf_factor", 0.05, pytest.approx(0.0475)), ("ADJ_2024_001@v1", "haircut", 0.0, 0.05)]
    # amount 9,850,000 (golden positions.parquet): HQLA_L1 x (1 - 0.05), RSF x 0.0475
    assert {c["component"]: c["adjusted"] for c in position["contributions"]} == {
        "HQLA_L1": pytest.approx(9_357_500.0), "RSF": pytest.approx(467_875.0)}


def assert_golden_trail(golden, warehouse):
    """The warehouse trail of rules.yaml, worked out from the spec: ADJ_2024_001 changes the RSF
    factor (x 0.95) of the 8 SECURITY / LOAN positions maturing after 2025-01-01 and the haircut
    (+ 0.05) of the 6 of them that are HQLA (UK-0007 is encumbered, UK-0020 is a loan: haircut
    null); ADJ_2024_002 the OUTFLOWS of LE_UK; ADJ_2024_003 the HQLA of LE_US. Nothing is clamped."""
    rows = warehouse.query(
        "SELECT stage, rule_id, version, row_key, position_id, component, field, value_before, value_after, clamped "
        "FROM adjustment_trail WHERE business_date = DATE '2024-06-28' ORDER BY stage, row_key, step")
    assert len(rows) == 16 and not any(r["clamped"] for r in rows)
    assert {(r["rule_id"], r["version"]) for r in rows} == {("ADJ_2024_001", 1), ("ADJ_2024_002", 1), ("ADJ_2024_003", 1)}
    deal = {(r["position_id"], r["field"]): (r["value_before"], r["value_after"]) for r in rows if r["stage"] == "deal_enrichment"}
    assert {p for p, _ in deal} == {"UK-0003", "UK-0004", "UK-0005", "UK-0007", "UK-0020", "US-0029", "US-0030", "US-0031"}
    assert deal[("UK-0003", "haircut")] == pytest.approx((0.0, 0.05))  # L1
    assert deal[("UK-0003", "rsf_factor")] == pytest.approx((0.05, 0.0475))
    assert deal[("US-0030", "haircut")] == pytest.approx((0.15, 0.20))  # L2A
    assert deal[("UK-0005", "haircut")] == pytest.approx((0.25, 0.30))  # L2B RMBS
    assert deal[("UK-0020", "rsf_factor")] == pytest.approx((1.0, 0.95))  # non-performing loan
    assert ("UK-0020", "haircut") not in deal and ("UK-0007", "haircut") not in deal
    base, adjusted = expected_rows(golden), expected_rows(golden, "expected_adjusted.csv")
    [outflows] = [r for r in rows if r["stage"] == "aggregation"]
    assert (outflows["rule_id"], outflows["row_key"], outflows["component"], outflows["field"]) == \
        ("ADJ_2024_002", "OUTFLOWS", "OUTFLOWS", "amount")
    assert (outflows["value_before"], outflows["value_after"]) == pytest.approx(
        (float(base["LE_UK"]["total_outflows"]), float(adjusted["LE_UK"]["total_outflows"])))
    [buffer] = [r for r in rows if r["stage"] == "final_calc"]
    assert (buffer["rule_id"], buffer["row_key"], buffer["field"]) == ("ADJ_2024_003", "LE_US", "hqla")
    assert buffer["value_after"] == pytest.approx(float(adjusted["LE_US"]["hqla"]))
    assert buffer["value_before"] == pytest.approx(float(adjusted["LE_US"]["hqla"]) / 0.97)


def test_rules_as_of_reproduces_what_was_reported(golden, regcalc_home, monkeypatch):
    """Retiring a rule changes today's figures; `--rules-as-of` the earlier moment gives the old ones back."""
    import datetime as dt
    import time

    import yaml

    monkeypatch.setenv("REGCALC_ENGINE", "duckdb")
    from regcalc_cli.instance import get_instance
    from regcalc_resources import build_resources, build_rule_store

    store = build_rule_store()
    for raw in yaml.safe_load((golden / "rules.yaml").read_text()):
        store.submit([raw], raw["submitted_by"])
        store.approve(raw["rule_id"], raw["approval"]["user"])
    time.sleep(0.05)
    reported_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat()
    time.sleep(0.05)
    store.retire("ADJ_2024_003", "risk_head")
    store.approve("ADJ_2024_003", "risk_admin")  # a retirement takes effect once a second person approves it
    instance, warehouse = get_instance(), build_resources()["warehouse"]
    landing = str(golden / "landing")

    assert run_eod(instance, DATE, landing).success
    now = {r["entity_id"]: r for r in fetch_report(warehouse, DATE)}
    # without the final-stage buffer, LE_US's HQLA is back to its post-cap sum (deal rule still applies)
    assert now["LE_US"]["hqla"] == pytest.approx(15342500.0 + 3200000.0 + 1309500.0)

    assert run_eod(instance, DATE, landing, rules_as_of=reported_at).success
    assert_matches(fetch_report(warehouse, DATE), expected_rows(golden, "expected_adjusted.csv"))
