"""The disclosure templates (dbt models, regcalc disclose) against `regcalc report` on a generated
landing zone with the twelve month-ends of 2024 and three days in between: LIQ1 averages of
month-ends, LIQ2 at the quarter's end, the US table's daily averages, and the identities between
rows. Expected values come from `regcalc report`, never from the disclosure tables."""

from __future__ import annotations

import csv
import io
import json
import statistics

import pytest

from regcalc_tests.conftest import REPORTING_EXTRA_DAYS, last_business_days
from regcalc_tests.helpers import regcalc

pytestmark = [pytest.mark.slow, pytest.mark.star]
MONTH_ENDS = [d.isoformat() for d in last_business_days(2024)]
Q4_DATES = sorted([d for d in MONTH_ENDS if d >= "2024-10-01"] + REPORTING_EXTRA_DAYS)


@pytest.fixture(scope="module")
def reports(reporting_home) -> dict[str, dict[str, dict]]:
    """`regcalc report --format json` of every business date: {date: {entity: row}}."""
    out = {}
    for day in sorted(MONTH_ENDS + REPORTING_EXTRA_DAYS):
        rows = json.loads(regcalc("report", "--date", day, "--format", "json", home=reporting_home).stdout)
        out[day] = {r["entity_id"]: r for r in rows}
    return out


def disclosed(home, template: str, quarter: str) -> dict[tuple[str, str, str], str]:
    """{(entity, row, column): value} from `regcalc disclose --format csv`."""
    text = regcalc("disclose", "--template", template, "--quarter", quarter, "--format", "csv", home=home).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and list(rows[0]) == ["template", "entity_id", "row", "column", "value"]
    assert {r["template"] for r in rows} == {template}
    return {(r["entity_id"], r["row"], r["column"]): r["value"] for r in rows}


def test_liq1_averages_the_month_ends_of_the_report(reporting_home, reports):
    cells = disclosed(reporting_home, "eu_liq1", "2024Q4")
    entities = sorted(reports[MONTH_ENDS[-1]])
    assert len(entities) == 2
    for entity in entities:
        month_end = [reports[d][entity] for d in MONTH_ENDS]
        assert float(cells[(entity, "1", "e")]) == pytest.approx(statistics.fmean(r["hqla"] for r in month_end), rel=1e-9)
        assert float(cells[(entity, "21", "e")]) == pytest.approx(statistics.fmean(r["hqla"] for r in month_end), rel=1e-9)
        assert float(cells[(entity, "22", "e")]) == pytest.approx(
            statistics.fmean(r["net_outflows"] for r in month_end), rel=1e-9)
        lcr = statistics.fmean(r["lcr"] for r in month_end)
        assert float(cells[(entity, "23", "e")]) == pytest.approx(lcr, rel=1e-9)
        ratio_of_averages = float(cells[(entity, "21", "e")]) / float(cells[(entity, "22", "e")])
        assert abs(lcr - ratio_of_averages) > 1e-6, "row 23 is the average of the LCRs, not row 21 / row 22"
        assert float(cells[(entity, "16", "e")]) == pytest.approx(
            statistics.fmean(r["total_outflows"] for r in month_end), rel=1e-9)
        assert float(cells[(entity, "20", "e")]) == pytest.approx(
            statistics.fmean(r["total_inflows"] for r in month_end), rel=1e-9)
        # the observations: twelve month-ends for T; T-1 (2024Q3) has the nine of January to September
        assert [cells[(entity, "EU-1b", c)] for c in "efgh"] == ["12.0", "9.0", "6.0", "3.0"]
        assert [cells[(entity, "EU-1a", c)] for c in "abcd"] == ["2024-12-31", "2024-09-30", "2024-06-30", "2024-03-31"]
        t_minus_1 = [reports[d][entity] for d in MONTH_ENDS[:9]]
        assert float(cells[(entity, "23", "f")]) == pytest.approx(statistics.fmean(r["lcr"] for r in t_minus_1), rel=1e-9)


def test_liq1_outflow_and_inflow_rows_sum_to_rows_16_and_20(reporting_home):
    cells = disclosed(reporting_home, "eu_liq1", "2024Q4")
    for entity in sorted({e for e, _, _ in cells}):
        for column in "efgh":
            value = lambda row: float(cells[(entity, row, column)])  # noqa: E731
            outflows = sum(value(r) for r in ("2", "5", "9", "10", "14", "15"))
            inflows = sum(value(r) for r in ("17", "18", "19"))
            assert outflows == pytest.approx(value("16"), rel=1e-9, abs=0.01), (entity, column)
            assert inflows == pytest.approx(value("20"), rel=1e-9, abs=0.01), (entity, column)
            # "of which" rows add up to their parent
            assert value("3") + value("4") <= value("2") + 0.01
            assert value("6") + value("7") + value("8") == pytest.approx(value("5"), rel=1e-9, abs=0.01)
            assert value("11") + value("12") + value("13") == pytest.approx(value("10"), rel=1e-9, abs=0.01)
        assert float(cells[(entity, "16", "e")]) > 0 and float(cells[(entity, "20", "e")]) > 0
        for row in ("12", "EU-19a", "EU-19b", "EU-20a", "EU-20b"):  # no concept in the spec: zero
            assert float(cells[(entity, row, "e")]) == 0.0


def test_us_table_averages_the_quarters_business_dates(reporting_home, reports):
    cells = disclosed(reporting_home, "us_lcr", "2024Q4")
    for entity in sorted(reports[MONTH_ENDS[-1]]):
        daily = [reports[d][entity] for d in Q4_DATES]
        assert len(daily) == 6
        assert float(cells[(entity, "35", "b")]) == pytest.approx(statistics.fmean(r["lcr"] for r in daily), rel=1e-9)
        assert float(cells[(entity, "29", "b")]) == pytest.approx(statistics.fmean(r["hqla"] for r in daily), rel=1e-9)
        assert float(cells[(entity, "34", "b")]) == pytest.approx(
            statistics.fmean(r["net_outflows"] for r in daily), rel=1e-9)
        value = lambda row: float(cells[(entity, row, "b")])  # noqa: E731
        assert sum(value(r) for r in ("5", "9", "13", "14", "17", "18")) == pytest.approx(value("19"), rel=1e-9, abs=0.01)
        assert sum(value(r) for r in ("20", "21", "22", "23")) == pytest.approx(value("28"), rel=1e-9, abs=0.01)
        assert value("33") == 1.0 and value("31") == 0.0


def test_liq2_is_the_quarter_end(reporting_home, reports):
    cells = disclosed(reporting_home, "eu_liq2", "2024Q4")
    for entity, report in reports["2024-12-31"].items():
        value = lambda row, column="e": float(cells[(entity, row, column)])  # noqa: E731
        assert value("34") == pytest.approx(report["nsfr"], rel=1e-9)
        assert value("14") == pytest.approx(report["asf"], rel=1e-9)
        assert value("33") == pytest.approx(report["rsf"], rel=1e-9)
        assert sum(value(r) for r in ("1", "4", "7", "10", "11")) == pytest.approx(value("14"), rel=1e-9, abs=0.01)
        assert sum(value(r) for r in ("15", "EU-15a", "16", "17", "25", "26", "32")) == pytest.approx(
            value("33"), rel=1e-9, abs=0.01)
        # unweighted amounts by residual maturity: four columns, none negative
        assert all(value(r, c) >= 0 for r in ("4", "7", "17") for c in "abcd")
        assert sum(value("17", c) for c in "abcd") > 0


def test_disclose_table_and_json(reporting_home):
    table = regcalc("disclose", "--template", "eu_liq1", "--quarter", "2024q4", home=reporting_home).stdout
    assert "EU LIQ1" in table and "LIQUIDITY COVERAGE RATIO" in table and "%" in table
    assert "2024-12-31" in table and "e: weighted T" in table
    assert "never an invented figure" in table  # the notes of rows without a concept in the spec
    rows = json.loads(regcalc("disclose", "--template", "us_lcr", "--quarter", "2024Q4", "--format", "json",
                              home=reporting_home).stdout)
    lcr = [r for r in rows if r["row"] == "35"]
    assert {r["column"] for r in lcr} == {"b"} and all(r["unit"] == "ratio" and r["value"] < 100 for r in lcr)
    entity = rows[0]["entity_id"]
    one = json.loads(regcalc("disclose", "--template", "us_lcr", "--quarter", "2024Q4", "--entity", entity,
                             "--format", "json", home=reporting_home).stdout)
    assert {r["entity_id"] for r in one} == {entity}


def test_disclose_names_what_is_wrong(reporting_home):
    bad = regcalc("disclose", "--template", "eu_liq1", "--quarter", "2024-12", home=reporting_home, check=False)
    assert bad.returncode == 2 and "YYYYQn" in bad.stderr
    none = regcalc("disclose", "--template", "eu_liq1", "--quarter", "2019Q4", home=reporting_home, check=False)
    assert none.returncode == 1 and "2024Q4" in none.stderr  # the quarters that do have results
    unknown = regcalc("disclose", "--template", "eu_liq1", "--quarter", "2024Q4", "--entity", "LE_NOPE",
                      home=reporting_home, check=False)
    assert unknown.returncode == 1 and "LE_NOPE" in unknown.stderr
