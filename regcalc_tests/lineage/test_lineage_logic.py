"""Lineage logic on hand-worked frames: the wrapper, key audits that name the stage, position
edges and the to-the-cent completeness check. Both engines."""

from __future__ import annotations

from datetime import date

import pytest

from regcalc_assets.lineage.logic import audit_keys, completeness, derived_arrow, lineage_edges, position_edges
from regcalc_core.lineage import LineageError, traced

D = date(2024, 6, 28)
FACTORS = ["amount", "haircut", "outflow_rate", "inflow_rate", "asf_factor", "rsf_factor"]
RULES = ["haircut_rule", "outflow_rule", "inflow_rule", "asf_rule", "rsf_rule"]
POSITION_SCHEMA = ", ".join(
    ["business_date date", "entity_id string", "source_system string", "position_id string", "source_file string",
     "source_row bigint", "hqla_level string"]
    + [f"{f} double" for f in FACTORS] + [f"base_{f} double" for f in FACTORS] + [f"{r} string" for r in RULES])


def position(pid, row, hqla_level=None, base=None, **fields):
    """A position row: ``fields`` are the adjusted values (and *_rule ids); ``base`` overrides the
    base_ values, which otherwise equal the adjusted ones."""
    values = {f: fields.get(f) for f in FACTORS}
    bases = {f: (base or {}).get(f, values[f]) for f in FACTORS}
    return (D, "LE1", "SYS", pid, "positions.csv", row, hqla_level, *values.values(), *bases.values(),
            *[fields.get(r) for r in RULES])


@pytest.fixture(scope="module")
def positions(spark):
    # P1: L2A security 100, haircut 0.15 -> HQLA_L2A 85; RSF 0.15 -> 15.
    # P2: deposit 200, outflow 0.10 adjusted to 0.20 by a deal rule -> OUTFLOWS base 20, adjusted 40;
    #     ASF 0.90 -> 180.
    # P3: loan 50 with no factor at all -> no edge.
    rows = [
        position("P1", 1, "L2A", amount=100.0, haircut=0.15, rsf_factor=0.15, haircut_rule="HAIRCUT.L2A",
                 rsf_rule="RSF.SEC.L2A"),
        position("P2", 2, amount=200.0, outflow_rate=0.20, asf_factor=0.90, base={"outflow_rate": 0.10},
                 outflow_rule="OUT.DEPOSIT.RETAIL_LESS_STABLE", asf_rule="ASF.DEPOSIT.RETAIL_LESS_STABLE"),
        position("P3", 3, amount=50.0),
    ]
    return spark.createDataFrame(rows, POSITION_SCHEMA)


def test_position_edges_link_each_contribution_to_its_position_and_source_row(positions):
    got = sorted((r["output_key"], r["input_key"], r["base_contribution"], r["contribution"], r["factor_rule"],
                  r["source_file"], r["source_row"]) for r in position_edges(positions).collect())
    assert got == [
        ("ASF", "SYS/P2", pytest.approx(180.0), pytest.approx(180.0), "ASF.DEPOSIT.RETAIL_LESS_STABLE", "positions.csv", 2),
        ("HQLA_L2A", "SYS/P1", pytest.approx(85.0), pytest.approx(85.0), "HAIRCUT.L2A", "positions.csv", 1),
        ("OUTFLOWS", "SYS/P2", pytest.approx(20.0), pytest.approx(40.0), "OUT.DEPOSIT.RETAIL_LESS_STABLE", "positions.csv", 2),
        ("RSF", "SYS/P1", pytest.approx(15.0), pytest.approx(15.0), "RSF.SEC.L2A", "positions.csv", 1),
    ]


def test_wrapper_refuses_a_transformation_that_loses_a_lineage_column(positions):
    lossy = traced("enrichment")(lambda df: df.drop("source_row"))
    with pytest.raises(LineageError, match=r"stage 'enrichment'.*output lacks.*source_row"):
        lossy(positions)
    with pytest.raises(LineageError, match=r"stage 'aggregation'.*input lacks.*position_id"):
        traced("aggregation")(lambda df: df)(positions.drop("position_id"))


def test_audit_names_the_stage_that_drops_or_duplicates_a_key(spark, positions):
    F = __import__("regcalc_core.dataframes", fromlist=["functions_for"]).functions_for(positions)[0]
    keep_all = traced("enrichment")(lambda df: df.withColumn("amount", F.col("amount") * F.lit(2.0)))
    drop_p2 = traced("enrichment")(lambda df: df.where(F.col("position_id") != F.lit("P2")))
    double_p1 = traced("deal_enrichment")(lambda df: df.unionByName(df.where(F.col("position_id") == F.lit("P1"))))

    ok = audit_keys("enrichment", positions, keep_all(positions))
    assert ok.passed and (ok.rows_in, ok.rows_out) == (3, 3)

    dropped = audit_keys("enrichment", positions, drop_p2(positions))
    assert not dropped.passed and (dropped.dropped, dropped.duplicated, dropped.added) == (1, 0, 0)
    assert "stage 'enrichment'" in dropped.message and "SYS/P2" in dropped.message and "dropped" in dropped.message

    duplicated = audit_keys("deal_enrichment", positions, double_p1(positions))
    assert (duplicated.dropped, duplicated.duplicated, duplicated.added) == (0, 1, 0)
    assert "stage 'deal_enrichment'" in duplicated.message and "SYS/P1" in duplicated.message and "x2" in duplicated.message


COMPONENT_SCHEMA = "business_date date, entity_id string, reporting_currency string, basis string, component string, amount double, position_count bigint"


def _components(spark, outflows_adjusted=40.0):
    amounts = {"HQLA_L1": 0.0, "HQLA_L2A": 85.0, "HQLA_L2B_RMBS": 0.0, "HQLA_L2B_OTHER": 0.0, "OUTFLOWS": 20.0,
               "INFLOWS": 0.0, "ASF": 180.0, "RSF": 15.0}
    counts = {"HQLA_L2A": 1, "OUTFLOWS": 1, "ASF": 1, "RSF": 1}
    rows = [(D, "LE1", "EUR", basis, c, outflows_adjusted if (basis, c) == ("adjusted", "OUTFLOWS") else a, counts.get(c, 0))
            for basis in ("base", "adjusted") for c, a in amounts.items()]
    return spark.createDataFrame(rows, COMPONENT_SCHEMA)


def _metrics(spark, components):
    from regcalc_assets.metrics.logic import compute_final_metrics

    return compute_final_metrics(components)


def test_completeness_holds_to_the_cent_and_names_what_does_not_add_up(engine, spark, positions):
    comps = _components(spark)
    metrics = _metrics(spark, comps)
    # by hand: hqla 85 (adj15 0; adj40 = max(85 - 0 - 0, 0) = 85 -> hqla 0); outflows 20 / 40
    edges = lineage_edges(positions, engine.from_arrow(derived_arrow(comps, metrics)))
    result = completeness(edges, comps, metrics)
    assert result.passed, result.failures
    assert result.checked == 16 + 2 * (9 + 2)  # 16 component rows; 9 totals and 2 ratios per basis

    off_by_a_cent = _components(spark, outflows_adjusted=40.01)
    bad = completeness(edges, off_by_a_cent, metrics)
    assert [f for f in bad.failures if "OUTFLOWS" in f] == [
        "2024-06-28 LE1 adjusted component OUTFLOWS: reported 40.01, traced inputs sum to 40.00"]
    within = completeness(edges, _components(spark, outflows_adjusted=40.004), metrics)
    assert not [f for f in within.failures if "component" in f]
