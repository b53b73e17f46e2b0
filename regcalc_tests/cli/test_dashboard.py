"""`regcalc dashboard`: the page's figures against `regcalc report` and direct SQL, the waterfall
against values worked out by hand (from the warehouse, the rules and the independent SQL
oracle's positions), data quality, lineage coverage, runs and cache hit rate against their own
sources, and the page in a real headless Chromium.

One home for the module: three business dates, two entities, four approved rules (two deal
rules on the same positions, one of them clamped; an aggregation rule on LE_001; a final rule),
the last date run with lineage off, then a fifth rule on one entity and date and `regcalc recalc`.
"""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from regcalc_tests.browser import chromium_page, colour_counts, decode_png, keep_artifact
from regcalc_tests.conftest import GOLDEN_DATE, copy_home
from regcalc_tests.helpers import regcalc

pytestmark = pytest.mark.slow

DATES = ["2024-06-24", "2024-06-25", "2024-06-26"]
FOCUS = DATES[-1]
ENTITIES = ["LE_001", "LE_002"]
OFF = {"REGCALC_STAR": "off"}
RULES = """
- rule_id: DASH_AMOUNT
  stage: deal_enrichment
  description: amount cut on deposits and securities
  priority: 10
  conditions: [{field: product, operator: in, value: [DEPOSIT, SECURITY]}]
  adjustments: [{field: amount, operation: multiply, value: 0.9}]
  effective_date: 2024-01-01
- rule_id: DASH_RATES
  stage: deal_enrichment
  description: outflow add-on (clamped at 1) and haircut add-on, on the same positions
  priority: 20
  conditions: [{field: product, operator: in, value: [DEPOSIT, SECURITY]}]
  adjustments: [{field: outflow_rate, operation: add, value: 0.6}, {field: haircut, operation: add, value: 0.1}]
  effective_date: 2024-01-01
- rule_id: DASH_INFLOWS
  stage: aggregation
  description: inflow haircut on LE_001
  conditions: [{field: entity_id, operator: "==", value: LE_001}, {field: component, operator: "==", value: INFLOWS}]
  adjustments: [{field: amount, operation: multiply, value: 0.8}]
  effective_date: 2024-01-01
- rule_id: DASH_BUFFER
  stage: final_calc
  description: management buffer
  conditions: []
  adjustments: [{field: hqla, operation: multiply, value: 0.97}, {field: total_outflows, operation: multiply, value: 1.02}]
  effective_date: 2024-01-01
"""
LATE_RULE = """
- rule_id: DASH_LATE
  stage: final_calc
  description: one entity, one date
  conditions: [{field: entity_id, operator: "==", value: LE_002}]
  adjustments: [{field: asf, operation: multiply, value: 0.99}]
  effective_date: 2024-06-25
  expiry_date: 2024-06-25
"""


class _Cells(HTMLParser):
    """Every element with ``data-*`` attributes: its tag, attributes and text."""

    def __init__(self):
        super().__init__()
        self.found, self._open = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("td", "tr", "div", "rect"):
            item = {"tag": tag, **attrs, "text": ""}
            self._open.append(item)
            if any(k.startswith("data-") for k in attrs):
                self.found.append(item)

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i]["tag"] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for item in self._open:
            item["text"] += data


def parse(page: str) -> list[dict]:
    parser = _Cells()
    parser.feed(page)
    for item in parser.found:
        item["text"] = item["text"].strip()
    return parser.found


def report_text(column: str, value) -> str:
    """How `regcalc report` prints a figure (its table format), written out here."""
    if value is None:
        return "n/a"
    if column in ("lcr", "nsfr", "lcr_variance", "nsfr_variance"):
        return f"{value:.4f}"
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def report(home, date: str, base: bool = False) -> dict[str, dict]:
    out = regcalc("report", "--date", date, "--format", "json", *(["--base"] if base else []), home=home)
    return {r["entity_id"]: r for r in json.loads(out.stdout)}


def sql(home: Path, query: str, params: list | None = None) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("dashboard")
    home, landing = root / "home", root / "landing"
    regcalc("generate", "--landing", str(landing), "--start-date", DATES[0], "--days", "3", "--entities", "2",
            "--positions", "300", "--bad-row-rate", "0.02", home=home)
    (root / "rules.yaml").write_text(RULES)
    regcalc("rules", "submit", str(root / "rules.yaml"), "--as-user-unverified", "--user", "alice", home=home)
    for rule in ("DASH_AMOUNT", "DASH_RATES", "DASH_INFLOWS", "DASH_BUFFER"):
        regcalc("rules", "approve", rule, "--as-user-unverified", "--user", "bob", home=home)
    for date in DATES:
        regcalc("eod", "--date", date, "--landing", str(landing), home=home,
                env={**OFF, **({"REGCALC_LINEAGE": "off"} if date == FOCUS else {})})
    (root / "late.yaml").write_text(LATE_RULE)
    regcalc("rules", "submit", str(root / "late.yaml"), "--as-user-unverified", "--user", "alice", home=home)
    regcalc("rules", "approve", "DASH_LATE", "--as-user-unverified", "--user", "bob", home=home)
    recalc = json.loads(regcalc("recalc", "--landing", str(landing), "--format", "json", home=home, env=OFF).stdout)
    out = root / "page" / "dashboard.html"
    printed = regcalc("dashboard", "--from", "2024-06-01", "--to", "2024-06-30", "--out", str(out), home=home).stdout
    page = out.read_text()
    return SimpleNamespace(home=home, landing=landing, out=out, page=page, cells=parse(page), printed=printed,
                           recalc=recalc, reports={d: report(home, d) for d in DATES}, base=report(home, FOCUS, base=True))


def cell(built, figure: str, entity: str | None = None, date: str | None = None, tag: str = "td") -> dict:
    found = [c for c in built.cells if c["tag"] == tag and c.get("data-figure") == figure
             and (entity is None or c.get("data-entity") == entity) and (date is None or c.get("data-date") == date)]
    assert found, f"no {figure} cell for {entity} {date}"
    return found[0]


def test_command_writes_one_page(built):
    assert built.out.exists() and built.page.startswith("<!DOCTYPE html>")
    assert "wrote" in built.printed and "3 business date(s)" in built.printed
    assert built.recalc["success"] and built.recalc["recomputed"], built.recalc


def test_every_figure_equals_report_and_the_warehouse(built):
    columns = ["hqla", "total_outflows", "total_inflows", "net_outflows", "lcr", "asf", "rsf", "nsfr",
               "positions_accepted", "positions_quarantined", "lcr_variance", "nsfr_variance"]
    table = {(c["data-date"], c["data-entity"], c["data-figure"]): c["text"] for c in built.cells
             if c["tag"] == "td" and c.get("data-figure") in columns and "data-date" in c and "data-entity" in c
             and c.get("data-figure") not in ("lcr_base",)}
    seen = set()
    for date, rows in built.reports.items():
        for entity, row in rows.items():
            for column in columns:
                assert table[(date, entity, column)] == report_text(column, row[column]), (date, entity, column)
                seen.add((date, entity))
    assert seen == {(d, e) for d in DATES for e in ENTITIES}
    # the ratios once more, straight from the warehouse table (no command in between)
    for date, entity, lcr, nsfr in sql(built.home, "SELECT CAST(business_date AS VARCHAR), entity_id, lcr, nsfr "
                                       "FROM liquidity_metrics WHERE basis = 'adjusted'"):
        assert table[(date, entity, "lcr")] == f"{lcr:.4f}" and table[(date, entity, "nsfr")] == f"{nsfr:.4f}"
    low = min(built.reports[FOCUS].values(), key=lambda r: r["lcr"])
    kpi = next(c for c in built.cells if c["tag"] == "div" and c.get("data-kpi") == "lowest-lcr")
    assert f"{low['lcr']:.4f}" in kpi["text"] and low["entity_id"] in kpi["text"]


def _steps(built, entity: str) -> list[dict]:
    return [c for c in built.cells if c["tag"] == "tr" and c.get("data-entity") == entity and "data-rule" in c]


def _after(built, entity: str, rule: str) -> float:
    row = next(c for c in _steps(built, entity) if c["data-rule"] == rule)
    index = built.cells.index(row)
    after = next(c for c in built.cells[index:] if c.get("data-figure") == "lcr_after")
    return float(after["data-value"])


def _lcr(l1: float, l2a: float, l2b: float, outflows: float, inflows: float) -> float:
    """liquidity-rules.md, written out: the 15% and 40% caps, the 75% inflow cap, HQLA / net outflows."""
    adj15 = max(l2b - 15 / 85 * (l1 + l2a), l2b - 15 / 60 * l1, 0.0)
    adj40 = max(l2a + l2b - adj15 - 2 / 3 * l1, 0.0)
    return (l1 + l2a + l2b - adj15 - adj40) / (outflows - min(inflows, 0.75 * outflows))


def test_waterfall_ends_at_the_reported_ratios_one_step_per_rule(built):
    for entity in ENTITIES:
        steps = _steps(built, entity)
        expected = ["DASH_AMOUNT@v1", "DASH_RATES@v1"] + (["DASH_INFLOWS@v1"] if entity == "LE_001" else []) + ["DASH_BUFFER@v1"]
        assert [s["data-rule"] for s in steps] == expected
        assert [s["data-stage"] for s in steps] == ["deal_enrichment"] * 2 + (["aggregation"] if entity == "LE_001" else []) + ["final_calc"]
        base, adjusted = cell(built, "lcr_base", entity, FOCUS), cell(built, "lcr_adjusted", entity, FOCUS)
        assert float(base["data-value"]) == built.base[entity]["lcr"]
        assert float(adjusted["data-value"]) == built.reports[FOCUS][entity]["lcr"]
        assert base["text"] == f"{built.base[entity]['lcr']:.4f}" and adjusted["text"] == f"{built.reports[FOCUS][entity]['lcr']:.4f}"
        assert _after(built, entity, "DASH_BUFFER@v1") == built.reports[FOCUS][entity]["lcr"]  # the last bar ends there
        bars = [c for c in built.cells if c["tag"] == "rect" and "data-rule" in c]
        assert {"Base LCR", "Adjusted LCR", *expected} <= {b["data-rule"] for b in bars}


def test_final_and_aggregation_steps_match_hand_worked_values(built):
    """Before the final rule (hqla x 0.97, outflows x 1.02) and before the aggregation rule
    (LE_001 inflows x 0.8), undone by hand on the reported adjusted figures."""
    for entity in ENTITIES:
        r = built.reports[FOCUS][entity]
        outflows = r["total_outflows"] / 1.02
        inflows = r["total_inflows"] / (0.8 if entity == "LE_001" else 1.0)
        hqla = r["hqla"] / 0.97
        before_final = hqla / (outflows - min(r["total_inflows"], 0.75 * outflows))
        last_before_final = "DASH_INFLOWS@v1" if entity == "LE_001" else "DASH_RATES@v1"
        assert _after(built, entity, last_before_final) == pytest.approx(before_final, rel=1e-9)
        after_deal = hqla / (outflows - min(inflows, 0.75 * outflows))
        assert _after(built, entity, "DASH_RATES@v1") == pytest.approx(after_deal, rel=1e-9)


def test_first_deal_step_matches_the_independent_oracle(built):
    """After DASH_AMOUNT alone: the oracle's base position fields (benchmarks/baseline_sql.py, no
    code shared with the pipeline), amounts of deposits and securities x 0.9, summed by hand."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from baseline_sql import position_fields_sql

    positions = position_fields_sql(str(built.landing), FOCUS).to_pylist()
    for entity in ENTITIES:
        sums = {"L1": 0.0, "L2A": 0.0, "L2B": 0.0, "out": 0.0, "in": 0.0}
        for p in (p for p in positions if p["entity_id"] == entity and p["is_valid"]):
            amount = p["amount"] * (0.9 if p["product"] in ("DEPOSIT", "SECURITY") else 1.0)
            if p["hqla_level"] is not None:
                sums["L2B" if p["hqla_level"].startswith("L2B") else p["hqla_level"]] += amount * (1 - p["haircut"])
            sums["out"] += amount * (p["outflow_rate"] or 0.0)
            sums["in"] += amount * (p["inflow_rate"] or 0.0)
        expected = _lcr(sums["L1"], sums["L2A"], sums["L2B"], sums["out"], sums["in"])
        assert _after(built, entity, "DASH_AMOUNT@v1") == pytest.approx(expected, rel=1e-6)
        # the oracle's base figures are the report's base ones: the replay starts where it should
        assert built.base[entity]["lcr"] == pytest.approx(
            _lcr(*_oracle_base(positions, entity)), rel=1e-6)


def _oracle_base(positions, entity):
    l1 = l2a = l2b = out = inf = 0.0
    for p in (p for p in positions if p["entity_id"] == entity and p["is_valid"]):
        if p["hqla_level"] == "L1":
            l1 += p["amount"] * (1 - p["haircut"])
        elif p["hqla_level"] == "L2A":
            l2a += p["amount"] * (1 - p["haircut"])
        elif p["hqla_level"] is not None:
            l2b += p["amount"] * (1 - p["haircut"])
        out += p["amount"] * (p["outflow_rate"] or 0.0)
        inf += p["amount"] * (p["inflow_rate"] or 0.0)
    return l1, l2a, l2b, out, inf


def test_clamp_is_in_the_trail_and_counted_for_its_rule(built):
    clamped = sql(built.home, "SELECT rule_id, COUNT(*) FROM adjustment_trail WHERE business_date = CAST(? AS DATE) "
                  "AND clamped GROUP BY rule_id", [FOCUS])
    assert dict(clamped).get("DASH_RATES", 0) > 0  # the scenario does exercise a clamp
    for entity in ENTITIES:
        trail = dict(sql(built.home, "SELECT rule_id, COUNT(*) FROM adjustment_trail WHERE business_date = CAST(? AS DATE) "
                         "AND entity_id = ? GROUP BY rule_id", [FOCUS, entity]))
        page_counts = _changes(built, entity)
        assert page_counts == {f"{k}@v1": v for k, v in trail.items()}


def _changes(built, entity: str) -> dict[str, int]:
    """The 'values changed' column of the entity's waterfall table."""
    out = {}
    for match in re.finditer(rf'<tr data-date="{FOCUS}" data-entity="{entity}" data-rule="([^"]+)"[^>]*>(.*?)</tr>', built.page):
        texts = re.findall(r"<td[^>]*>(.*?)</td>", match.group(2))
        out[match.group(1)] = int(texts[2].replace(",", ""))
    return out


def test_data_quality_is_the_validation_pass_rate(built):
    for date, rows in built.reports.items():
        accepted = sum(r["positions_accepted"] for r in rows.values())
        quarantined = sum(r["positions_quarantined"] for r in rows.values())
        assert cell(built, "pass_rate", date=date)["text"] == f"{accepted / (accepted + quarantined) * 100:.2f}%"
    accepted = sum(r["positions_accepted"] for rows in built.reports.values() for r in rows.values())
    total = accepted + sum(r["positions_quarantined"] for rows in built.reports.values() for r in rows.values())
    kpi = next(c for c in built.cells if c["tag"] == "div" and c.get("data-kpi") == "pass-rate")
    assert f"{accepted / total * 100:.2f}%" in kpi["text"]
    assert total > accepted  # the generated delivery has quarantined rows: the rate can be wrong


def test_lineage_coverage_counts_only_traced_dates(built):
    traced_dates = {d for (d,) in sql(built.home, "SELECT DISTINCT CAST(business_date AS VARCHAR) FROM lineage")}
    assert traced_dates == set(DATES[:-1])  # the last date ran with lineage off
    for date in DATES:
        assert cell(built, "lineage_coverage", date=date)["text"] == ("100.00%" if date in traced_dates else "0.00%")
    kpi = next(c for c in built.cells if c["tag"] == "div" and c.get("data-kpi") == "lineage-coverage")
    assert f"{2 / 3 * 100:.2f}%" in kpi["text"]


def test_runs_throughput_and_cache_hit_rate(built, in_home):
    import dagster as dg

    in_home(built.home)
    from regcalc_cli.instance import get_instance

    instance = get_instance()
    try:
        runs = instance.get_runs(dg.RunsFilter(tags={"regcalc/business_date": DATES}))
    finally:
        instance.dispose()
    run_rows = re.findall(r"<td class=\"t\"><code>([0-9a-f]{8})</code></td><td>([0-9.n/a]+)</td><td>(\d+)</td>"
                          r"<td>([0-9,n/a]+)</td>", built.page)
    assert sorted(r[0] for r in run_rows) == sorted(r.run_id[:8] for r in runs)
    eod = {r.tags["regcalc/business_date"]: r.run_id[:8] for r in runs
           if r.tags.get("regcalc/trigger") == "cli-eod" and "dagster/asset_partition_range_start" in r.tags}
    by_id = {r[0]: r for r in run_rows}
    for date, run in eod.items():
        positions = sum(r["positions_accepted"] + r["positions_quarantined"] for r in built.reports[date].values())
        assert by_id[run][2] == "2" and by_id[run][3] == f"{positions:,}"
    kpi = next(c for c in built.cells if c["tag"] == "div" and c.get("data-kpi") == "cache-hit-rate")
    assert f"{built.recalc['hit_rate'] * 100:.2f}%" in kpi["text"] and "1 recalculation(s)" in kpi["text"]
    assert 0 < built.recalc["hit_rate"] < 1


def test_page_in_headless_chromium(built, tmp_path):
    with chromium_page() as (page, log):
        page.goto(built.out.resolve().as_uri())
        page.wait_for_load_state("load")
        shot = tmp_path / "dashboard.png"
        png = page.screenshot(path=str(shot), full_page=True)
        keep_artifact(shot)
        assert log.console_errors == []
        assert log.requests == [built.out.resolve().as_uri()]  # self-contained: nothing else fetched
        text = page.inner_text("body")
        for date, rows in built.reports.items():
            for entity, row in rows.items():
                shown = page.locator(f'#figures td[data-date="{date}"][data-entity="{entity}"][data-figure="lcr"]')
                assert shown.inner_text() == f"{row['lcr']:.4f}"
        for entity in ENTITIES:
            assert f"{built.reports[FOCUS][entity]['lcr']:.4f}" in text
        # the entity picker shows one entity's waterfall at a time (the inline script runs)
        panel = page.locator('.entity-panel[data-entity="LE_002"]')
        assert not panel.is_visible()
        page.select_option("#entity-picker", "LE_002")
        assert panel.is_visible() and not page.locator('.entity-panel[data-entity="LE_001"]').is_visible()
        assert f"{built.reports[FOCUS]['LE_002']['lcr']:.4f}" in panel.inner_text()
        assert log.console_errors == []
    counts = colour_counts(png)
    width, height, _ = decode_png(png)
    assert width == 1400 and height > 2000
    assert len(counts) >= 50, f"{len(counts)} colours: the screenshot looks blank"
    assert counts.most_common(1)[0][1] < 0.9 * width * height
    assert counts[bytes((0x10, 0x2A, 0x43))] > 1000  # the header's colour, decoded where it was drawn


def test_golden_waterfall_by_hand(golden_star_home, tmp_path):
    """The golden example (one rule per stage): LE_UK's deal rule changes only haircuts and RSF
    factors, then its aggregation rule outflows x 1.10; LE_US's deal rule, then hqla x 0.97."""
    home = copy_home(golden_star_home, tmp_path / "home")
    out = tmp_path / "golden.html"
    regcalc("dashboard", "--from", GOLDEN_DATE, "--to", GOLDEN_DATE, "--out", str(out), home=home)
    built = SimpleNamespace(cells=parse(out.read_text()))
    adjusted = {e: r for e, r in report(home, GOLDEN_DATE).items()}
    base = report(home, GOLDEN_DATE, base=True)
    uk, us = adjusted["LE_UK"], adjusted["LE_US"]
    # LE_UK: after the deal rule, the adjusted hqla over the base net outflows (outflows untouched yet)
    assert _after(built, "LE_UK", "ADJ_2024_001@v1") == pytest.approx(uk["hqla"] / base["LE_UK"]["net_outflows"], rel=1e-12)
    assert _after(built, "LE_UK", "ADJ_2024_002@v1") == uk["lcr"]
    # LE_US: after the deal rule, hqla before the 0.97 buffer over the (unchanged) net outflows
    assert _after(built, "LE_US", "ADJ_2024_001@v1") == pytest.approx(us["hqla"] / 0.97 / us["net_outflows"], rel=1e-12)
    assert _after(built, "LE_US", "ADJ_2024_003@v1") == us["lcr"]
    assert [s["data-rule"] for s in _steps(built, "LE_UK")] == ["ADJ_2024_001@v1", "ADJ_2024_002@v1"]
    assert [s["data-rule"] for s in _steps(built, "LE_US")] == ["ADJ_2024_001@v1", "ADJ_2024_003@v1"]


def test_refusals(built, tmp_path):
    out = tmp_path / "x.html"
    none = regcalc("dashboard", "--from", "2023-01-01", "--to", "2023-01-31", "--out", str(out), home=built.home, check=False)
    assert none.returncode == 1 and "no figures" in none.stderr and not out.exists()
    backwards = regcalc("dashboard", "--from", "2024-06-30", "--to", "2024-06-01", "--out", str(out), home=built.home, check=False)
    assert backwards.returncode == 2 and "after --to" in backwards.stderr
    bad = regcalc("dashboard", "--from", "2024-06-01", "--to", "2024-06-30", "--out", str(out), "--entity", "../x",
                  home=built.home, check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    one = regcalc("dashboard", "--from", "2024-06-01", "--to", "2024-06-30", "--out", str(out), "--entity", "LE_002",
                  home=built.home)
    page = out.read_text()
    assert "1 entities" in one.stdout and 'data-entity="LE_001"' not in page and 'data-entity="LE_002"' in page


def test_read_only_home_still_gives_the_page(built, tmp_path):
    """`regcalc dashboard` reads: on a read-only home the figures are all there, the runs are
    left out with one warning (the Dagster instance cannot be opened there)."""
    from regcalc_tests.cli.test_readonly_home import _read_only_runner, _regcalc

    home = copy_home(built.home, tmp_path / "home")
    prefix = _read_only_runner(home)
    out = tmp_path / "page.html"
    result = _regcalc(prefix, home, "dashboard", "--from", DATES[0], "--to", DATES[-1], "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "warning: no runs on the page" in result.stderr and str(home) in result.stderr
    cells = parse(out.read_text())
    shown = {(c["data-date"], c["data-entity"]): c["text"] for c in cells
             if c["tag"] == "td" and c.get("data-figure") == "lcr" and "data-entity" in c}
    assert shown == {(d, e): f"{r['lcr']:.4f}" for d, rows in built.reports.items() for e, r in rows.items()}
    assert "could not be opened: no runs" in out.read_text()


def test_golden_waterfall_without_stored_positions(golden_star_home, tmp_path, in_home, duckdb_engine):
    """With no stored adjusted positions the deal-stage rules are one step (what the components
    changed before the aggregation rules), and the replay still reaches the reported ratios."""
    from regcalc_cli.report import fetch_report
    from regcalc_cli.waterfall import ALL_DEAL_RULES, build_waterfalls
    from regcalc_resources import cli_resource

    in_home(copy_home(golden_star_home, tmp_path / "home"))
    warehouse = cli_resource("warehouse")

    class NothingStored:
        def read_dir(self, asset, date, entity):
            return None

    adjusted = {r["entity_id"]: r for r in fetch_report(warehouse, GOLDEN_DATE)}
    base = {r["entity_id"]: r for r in fetch_report(warehouse, GOLDEN_DATE, "base")}
    waterfalls = build_waterfalls(warehouse, NothingStored(), duckdb_engine, GOLDEN_DATE, sorted(adjusted), base, adjusted)
    us, uk = waterfalls["LE_US"], waterfalls["LE_UK"]
    assert [s.rule for s in us.steps] == [ALL_DEAL_RULES, "ADJ_2024_003@v1"] and us.reconciled, us.mismatches
    assert us.steps[0].lcr_after == pytest.approx(adjusted["LE_US"]["hqla"] / 0.97 / adjusted["LE_US"]["net_outflows"], rel=1e-12)
    assert [s.rule for s in uk.steps] == [ALL_DEAL_RULES, "ADJ_2024_002@v1"] and uk.reconciled, uk.mismatches
    assert uk.steps[-1].lcr_after == adjusted["LE_UK"]["lcr"] and uk.steps[0].lcr_before == base["LE_UK"]["lcr"]
    assert any("not stored" in note for note in us.notes)
