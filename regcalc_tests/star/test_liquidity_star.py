"""The liquidity star schema after the golden EOD (rules approved): a plain star join gives the
golden figures, every fact key resolves, the bridge and the factor-row dimension are complete,
and the Redshift DDL carries the operator's physical design."""

from __future__ import annotations

import csv

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.star]
DATE = "2024-06-28"  # conftest.GOLDEN_DATE
FACTS = ["fact_position", "fact_component", "fact_metric", "fact_adjustment", "bridge_position_rule"]
METRIC_COLUMNS = ["hqla_l1", "hqla_l2a", "hqla_l2b", "adj15", "adj40", "hqla", "total_outflows", "total_inflows",
                  "capped_inflows", "net_outflows", "lcr", "asf", "rsf", "nsfr"]


@pytest.fixture(scope="module")
def star_home(golden_star_home):
    """The golden EOD with rules.yaml approved and the star built (shared by the run; read only)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REGCALC_HOME", str(golden_star_home))
        mp.setenv("REGCALC_ENGINE", "duckdb")
        for name in ("REGCALC_STORAGE_ROOT", "REGCALC_WAREHOUSE_PATH", "REGCALC_WAREHOUSE_DSN", "DAGSTER_HOME"):
            mp.delenv(name, raising=False)
        from regcalc_resources import build_resources, resolved

        resources = build_resources()
        yield golden_star_home, resolved(resources["warehouse"]), resolved(resources["stages"])


def expected(golden, name: str) -> dict[str, dict]:
    with open(golden / name, newline="") as fh:
        return {row["entity_id"]: row for row in csv.DictReader(fh)}


def test_a_plain_star_join_gives_the_golden_figures(star_home, golden):
    _, warehouse, _ = star_home
    rows = warehouse.query(
        f"SELECT e.entity_id, b.basis, d.date, {', '.join('m.' + c for c in METRIC_COLUMNS)} "
        "FROM fact_metric m JOIN dim_legal_entity e USING (legal_entity_key) JOIN dim_date d USING (date_key) "
        "JOIN dim_basis b USING (basis_key) ORDER BY 1, 2")
    want = {"BASE": expected(golden, "expected_base.csv"), "ADJUSTED": expected(golden, "expected_adjusted.csv")}
    assert sorted((r["entity_id"], r["basis"]) for r in rows) == sorted((e, b) for b in want for e in want[b])
    for row in rows:
        assert str(row["date"]) == DATE
        for column in METRIC_COLUMNS:
            assert row[column] == pytest.approx(float(want[row["basis"]][row["entity_id"]][column]), rel=1e-9, abs=1e-6), \
                (row["entity_id"], row["basis"], column)


def test_fact_component_summed_by_entity_gives_the_golden_components(star_home, golden):
    _, warehouse, _ = star_home
    rows = warehouse.query(
        "SELECT e.entity_id, b.basis, c.component, SUM(f.amount) AS amount FROM fact_component f "
        "JOIN dim_legal_entity e USING (legal_entity_key) JOIN dim_basis b USING (basis_key) "
        "JOIN dim_component c USING (component_key) GROUP BY 1, 2, 3")
    sums = {(r["entity_id"], r["basis"], r["component"]): r["amount"] for r in rows}
    columns = {"hqla_l1": ["HQLA_L1"], "hqla_l2a": ["HQLA_L2A"], "hqla_l2b": ["HQLA_L2B_RMBS", "HQLA_L2B_OTHER"],
               "total_outflows": ["OUTFLOWS"], "total_inflows": ["INFLOWS"], "asf": ["ASF"], "rsf": ["RSF"]}
    for basis, name in (("BASE", "expected_base.csv"), ("ADJUSTED", "expected_adjusted.csv")):
        for entity, row in expected(golden, name).items():
            for column, components in columns.items():
                got = sum(sums[(entity, basis, c)] for c in components)
                assert got == pytest.approx(float(row[column]), rel=1e-9, abs=1e-6), (entity, basis, column)


def test_no_fact_row_has_a_null_key_and_every_key_resolves(star_home):
    from regcalc_assets.star.logic import liquidity_spec, referenced_dimensions

    _, warehouse, _ = star_home
    for table, keys in referenced_dimensions(liquidity_spec()).items():
        total = warehouse.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
        assert total > 0 or table in ("fact_adjustment", "bridge_position_rule") or pytest.fail(f"{table} is empty")
        for key, dim in keys.items():
            member = dim[len("dim_"):] + "_key"  # the dimension's own surrogate key
            [row] = warehouse.query(f"SELECT COUNT(*) - COUNT(f.{key}) AS nulls, "
                                    f"SUM(CASE WHEN d.{member} IS NULL THEN 1 ELSE 0 END) AS dangling "
                                    f"FROM {table} f LEFT JOIN {dim} d ON f.{key} = d.{member}")
            assert row["nulls"] == 0, (table, key)
            assert (row["dangling"] or 0) == 0, (table, key, dim)


def test_facts_keep_every_row_of_their_stage(star_home):
    _, warehouse, _ = star_home
    for fact, stage in (("fact_metric", "liquidity_metrics"), ("fact_component", "liquidity_components"),
                        ("fact_adjustment", "adjustment_trail")):
        assert warehouse.query(f"SELECT COUNT(*) AS n FROM {fact}") == warehouse.query(f"SELECT COUNT(*) AS n FROM {stage}")
    [positions] = warehouse.query("SELECT COUNT(*) AS n FROM fact_position")
    [accepted] = warehouse.query("SELECT SUM(positions_accepted) AS n FROM liquidity_metrics WHERE basis = 'adjusted'")
    assert positions["n"] == accepted["n"]


def test_the_bridge_links_each_position_to_the_deal_rules_that_changed_it(star_home):
    _, warehouse, _ = star_home
    trail = warehouse.query("SELECT DISTINCT entity_id, source_system, position_id, rule_id FROM adjustment_trail "
                            "WHERE stage = 'deal_enrichment'")
    bridge = warehouse.query(
        "SELECT p.entity_id, p.source_system, p.position_id, r.rule_id, b.weight FROM bridge_position_rule b "
        "JOIN fact_position p USING (position_key) JOIN dim_adjustment_rule r USING (adjustment_rule_key)")
    assert trail, "the golden deal rule changes positions"
    assert sorted((r["entity_id"], r["source_system"], r["position_id"], r["rule_id"]) for r in bridge) == \
        sorted(tuple(r.values()) for r in trail)
    assert {r["rule_id"] for r in bridge} == {"ADJ_2024_001"}
    weights = warehouse.query("SELECT position_key, SUM(weight) AS w FROM bridge_position_rule GROUP BY 1")
    assert all(w["w"] == pytest.approx(1.0, abs=1e-12) for w in weights)


def test_rule_and_factor_dimensions(star_home):
    from regcalc_core.factors import load_factor_tables

    _, warehouse, _ = star_home
    rules = {r["rule_id"]: r for r in warehouse.query("SELECT * FROM dim_adjustment_rule WHERE adjustment_rule_key <> -1")}
    assert set(rules) == {"ADJ_2024_001", "ADJ_2024_002", "ADJ_2024_003"}
    assert (rules["ADJ_2024_003"]["submitted_by"], rules["ADJ_2024_003"]["approved_by"]) == ("analyst_a", "risk_head")
    assert str(rules["ADJ_2024_003"]["effective_date"]) == "2024-06-28" and str(rules["ADJ_2024_003"]["expiry_date"]) == "2024-09-30"
    assert str(rules["ADJ_2024_003"]["valid_from"]) == "2024-06-28" and rules["ADJ_2024_003"]["is_current"]
    factor_rows = {r["factor_row"]: r for r in warehouse.query("SELECT * FROM dim_factor_row WHERE factor_row_key <> -1")}
    shipped = {row.id for rows in load_factor_tables().tables.values() for row in rows}
    assert set(factor_rows) == shipped
    assert all(r["citation"] and r["section"] for r in factor_rows.values())
    # a trail row points at the version of its rule in force on its date
    resolved = warehouse.query("SELECT DISTINCT r.rule_id, f.rule_version, r.version FROM fact_adjustment f "
                               "JOIN dim_adjustment_rule r USING (adjustment_rule_key)")
    assert resolved and all(r["rule_version"] == r["version"] for r in resolved)


def test_redshift_ddl_of_the_star_carries_the_physical_design(star_home):
    from sqlglot import exp, parse_one

    from regcalc_assets.publication.assets import STAR_PARTITIONED, STAR_WHOLE, register_star_tables
    from regcalc_resources import warehouse_redshift as rs

    _, _, stages = star_home
    designs = register_star_tables(stages, DATE, "LE_UK")
    for table in STAR_PARTITIONED + STAR_WHOLE:
        tree = parse_one(rs.create_table(table), read="redshift")
        assert isinstance(tree, exp.Create), table
        sortkey = [i.name for i in tree.find(exp.SortKeyProperty).this] if tree.find(exp.SortKeyProperty) else []
        dist = tree.find(exp.DistStyleProperty).this.name
        if table.startswith("dim_"):
            assert dist == "ALL" and tree.find(exp.DistKeyProperty) is None, table
        elif table.startswith("agg_"):
            assert dist == "AUTO" and sortkey[0] == "date_key", table
        else:
            assert dist == "KEY" and sortkey[0] == "date_key", table
            distkey = tree.find(exp.DistKeyProperty).this.name
            assert distkey == designs[table].distkey and distkey not in ("date_key", "legal_entity_key") or \
                table in ("fact_metric", "fact_component", "fact_adjustment"), (table, distkey)
    # the fact's highest-cardinality foreign key in the partition the design was taken from
    _, warehouse, _ = star_home
    keys = [c for c in warehouse.query("SELECT * FROM fact_position LIMIT 1")[0]
            if c.endswith("_key") and c not in ("date_key", "position_key")]
    [counts] = warehouse.query(f"SELECT {', '.join(f'COUNT(DISTINCT {k}) AS {k}' for k in keys)} FROM fact_position "
                               "WHERE entity_id = 'LE_UK'")
    assert designs["fact_position"].distkey == sorted(keys, key=lambda k: (-counts[k], k))[0]
    assert designs["bridge_position_rule"].distkey == "position_key"
