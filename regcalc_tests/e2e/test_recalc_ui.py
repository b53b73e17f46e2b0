"""The Dagster UI over a golden EOD, against real servers on loopback (`dagster dev`: webserver
and daemon), as its users see it in a headless Chromium and through the webserver's GraphQL: the
asset graph with every stage in its group, the date x entity partitions of `liquidity_metrics`,
and an approved rule that makes exactly the affected partition stale until the running daemon's
sensor recomputes it by itself, with no CLI call. Screenshots of each page are kept in
``test-artifacts/ui/`` (or ``$REGCALC_ARTIFACTS/ui/``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import dagster as dg
import pytest
import yaml

from regcalc_cli.eod import run_eod
from regcalc_tests.browser import artifacts_dir, chromium_page, decode_png
from regcalc_tests.conftest import REPO
from regcalc_tests.e2e.test_dagster_ui import free_port, graphql, wait_until_serving
from regcalc_tests.e2e.test_recalc import FROM_FINAL, STAR, expected, last_storage_id, materialized_since

pytestmark = pytest.mark.slow
DATE = "2024-06-28"
STALE_QUERY = """
query ($key: AssetKeyInput!, $partitions: [String!]) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode { staleStatusByPartition(partitions: $partitions) } }
}
"""


def golden_rule(golden, rule_id: str) -> dict:
    return next(r for r in yaml.safe_load((golden / "rules.yaml").read_text()) if r["rule_id"] == rule_id)


def start(command: list[str], env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(proc, port, poll=1)
    except AssertionError:
        proc.kill()
        raise
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def next_sensor_tick(instance, after: float, timeout: float = 120):
    """The first completed tick of the recalc sensor that started after ``after`` (epoch seconds)."""
    from dagster._core.scheduler.instigation import TickStatus

    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [s for s in instance.all_instigator_state() if s.name == SENSOR["sensorName"]]
        for state in states:
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20)
            done = [t for t in ticks if t.timestamp > after and t.status != TickStatus.STARTED]
            if done:
                return min(done, key=lambda t: t.timestamp)
        time.sleep(2)
    raise AssertionError(f"no sensor tick completed within {timeout}s after the recomputation")


def stale_status(port: int, asset: str, entities: list[str]) -> dict[str, str]:
    partitions = [f"{DATE}|{e}" for e in entities]
    for _ in range(60):  # the code location loads in the background
        data = graphql(port, STALE_QUERY, {"key": {"path": [asset]}, "partitions": partitions})
        node = (data.get("data") or {}).get("assetNodeOrError") or {}
        if "staleStatusByPartition" in node:
            return dict(zip(entities, node["staleStatusByPartition"]))
        time.sleep(1)
    raise AssertionError(f"no stale status for {asset}: {data}")


# -- the pages, in a headless Chromium ---------------------------------------------------------
VIEWPORT = (1600, 1000)
NUX_TITLE = "Join the Dagster community"  # the first-run dialog's title in the Dagster UI bundle
# groups larger than a screen (the star schema, the dbt reporting layer): shown collapsed, one
# node each, beside the calculation's stages, each of which the graph shows inside its group
LAYERS = {"star", "reporting"}
NODES = """() => [...document.querySelectorAll('svg foreignObject')].map(e => ({
  group: e.classList.contains('group'), text: e.textContent.trim(),
  x: +e.getAttribute('x'), y: +e.getAttribute('y'), w: +e.getAttribute('width'), h: +e.getAttribute('height')}))"""
# the graph draws its edges after its nodes: settled once its paths stop changing for 300 ms
SETTLED = """() => { const n = document.querySelectorAll('svg path').length, s = window.__paths;
  window.__paths = {n, t: s && s.n === n ? s.t : performance.now()};
  return performance.now() - window.__paths.t > 300; }"""
TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


class Browser:
    """One Chromium tab on the webserver: opens pages (each told by the webserver not to show the
    first-run dialog), keeps checked screenshots, and names the hosts the pages fetched from."""

    def __init__(self, page, log, port: int, out: Path):
        self.page, self.log, self.port, self.out = page, log, port, out

    def open(self, path: str) -> None:
        """Load a page; the app asks the webserver whether to show the first-run dialog: never."""
        with self.page.expect_response(lambda r: "op=ShouldShowNux" in r.url) as answer:
            self.page.goto(f"http://127.0.0.1:{self.port}{path}")
        assert answer.value.json()["data"]["shouldShowNux"] is False

    def shot(self, name: str) -> Path:
        """Screenshot of the viewport into the artifacts directory, checked to show a real page."""
        path = self.out / f"{name}.png"
        png = self.page.screenshot(path=str(path))
        width, height, rows = decode_png(png)
        counts = Counter(row[i:i + 3] for row in rows for i in range(0, len(row), 3))  # RGB colours
        assert (width, height) == VIEWPORT, (name, width, height)
        # drawn text and shapes: hundreds of anti-aliased shades, and more than the background
        assert len(counts) > 500, f"{name}: only {len(counts)} colours"
        assert counts.most_common(1)[0][1] < 0.98 * width * height, f"{name}: one colour covers the page"
        self.no_dialog()
        return path

    def no_dialog(self) -> None:
        """The community dialog (which, when on, opens a second after the app starts) is not on the
        page: each screenshot is taken after the page has shown its content."""
        assert self.page.get_by_text(NUX_TITLE).count() == 0, "the first-run community dialog covers the page"

    def hosts(self) -> set[str]:
        return {u.split("/")[2] for u in self.log.requests if u.startswith(("http://", "https://"))}

    # -- asset graph --------------------------------------------------------------------------
    def graph(self) -> tuple[dict[str, dict], list[dict]]:
        """(group boxes by name, asset nodes) as the graph draws them, in graph coordinates."""
        drawn = self.page.evaluate(NODES)
        return {d["text"]: d for d in drawn if d["group"]}, [d for d in drawn if not d["group"] and d["text"]]

    def expand_group(self, group: str) -> list[str]:
        """Click a collapsed group's node, as a user opens it; its assets are laid out inside it,
        and the page records the open groups in its address. Returns the ids it records."""
        node = self.page.locator("svg foreignObject.group").filter(has=self.page.locator(f'[data-tooltip="{group}"]'))
        node.click()
        self.page.wait_for_url(re.compile(r"[?&]expanded="))
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('svg foreignObject:not(.group)')].some(e => e.textContent.trim())")
        return parse_qs(urlsplit(self.page.url).query)["expanded"][0].split(",")

    # -- partitions -----------------------------------------------------------------------------
    def partition(self, asset: str, key: str) -> None:
        """Open a partition of ``asset`` in its Partitions tab and wait for its staleness to be
        loaded and drawn (the page asks for it in a query of its own)."""
        with self.page.expect_response(lambda r: "op=AssetPartitionStaleQuery" in r.url):
            self.open(f"/assets/{asset}?view=partitions&partition={key.replace('|', '%7C')}")
        visible(self.page, key).wait_for()
        self.page.evaluate(TWO_FRAMES)

    def unsynced(self):
        return self.page.get_by_text(re.compile(r"^Unsynced \(\d+\)$")).filter(visible=True)

    def metadata(self, label: str) -> str:
        """The value of a materialization's metadata entry, as the partition's table shows it."""
        row = self.page.locator("tr").filter(has=self.page.get_by_text(label, exact=True)).first
        return row.locator("td").nth(1).inner_text().strip()

    # -- sensor ---------------------------------------------------------------------------------
    def sensor_page(self):
        """Open the recalc sensor's page; returns its Running switch (a label styling its checkbox)."""
        self.open(f"/locations/{SENSOR['repositoryLocationName']}/sensors/{SENSOR['sensorName']}")
        switch = self.page.locator("tr").filter(has_text="Running").locator("label").filter(
            has=self.page.locator("input[type=checkbox]"))
        switch.wait_for()
        return switch

    def flip(self, switch, to: bool) -> None:
        """Click the switch, as a user does, and wait for it to show the new state."""
        box = switch.locator("input[type=checkbox]")
        assert box.is_checked() is not to
        switch.click()
        self.page.wait_for_function("([e, to]) => e.checked === to", arg=[box.element_handle(), to])


def visible(page, text: str):
    """The one element showing exactly ``text`` (the UI also keeps hidden copies to measure text)."""
    return page.get_by_text(text, exact=True).filter(visible=True)


def shown_as(label: str, name: str) -> bool:
    """Whether a node's label is ``name``, whole or shortened in its middle (``validat…_positions``)."""
    if "…" not in label:
        return label == name
    head, tail = label.split("…", 1)
    return name.startswith(head) and name.endswith(tail) and len(head) + len(tail) < len(name)


def inside(node: dict, box: dict) -> bool:
    return (box["x"] <= node["x"] and node["x"] + node["w"] <= box["x"] + box["w"]
            and box["y"] <= node["y"] and node["y"] + node["h"] <= box["y"] + box["h"])


def groups_of_definitions() -> dict[str, str]:
    """{asset: group} of every asset of the one Definitions object (what `dagster dev` loads)."""
    from regcalc_assets.definitions import defs

    return {n.key.to_user_string(): n.group_name for n in defs.resolve_asset_graph().asset_nodes}


def check_asset_graph(ui: Browser) -> None:
    """The global asset graph: every group as a node; a click opens the metrics group onto its
    asset; with every group of the calculation open, each stage's node is drawn inside its own
    group's box (the star and reporting layers stay one node each)."""
    expected = groups_of_definitions()
    groups = set(expected.values())
    assert LAYERS < groups and len(groups) > len(LAYERS) + 5, groups
    ui.open("/asset-groups")
    ui.page.wait_for_function("n => document.querySelectorAll('svg foreignObject.group').length >= n", arg=len(groups))
    boxes, nodes = ui.graph()
    assert set(boxes) == groups and nodes == [], (sorted(boxes), nodes)
    ui.page.wait_for_function(SETTLED, polling=100)
    ui.shot("1-asset-groups")

    stages = {a: g for a, g in expected.items() if g not in LAYERS}
    first = expected["liquidity_metrics"]
    (opened,) = ui.expand_group(first)
    boxes, nodes = ui.graph()
    assert sorted(n["text"] for n in nodes if inside(n, boxes[first])) == sorted(a for a, g in stages.items() if g == first)
    # every stage group open at once, in the address the page itself writes (opened one by one,
    # the graph keeps its zoom and leaves the later groups out of view); reopened, it fits them
    assert opened.endswith(first), opened
    ids = [opened[:-len(first)] + group for group in sorted(groups - LAYERS)]
    ui.open("/asset-groups?" + urlencode({"expanded": ",".join(ids)}))
    ui.page.wait_for_function(
        "n => [...document.querySelectorAll('svg foreignObject:not(.group)')].filter(e => e.textContent.trim()).length >= n",
        arg=len(stages))
    boxes, nodes = ui.graph()
    assert groups - LAYERS <= set(boxes), sorted(boxes)  # (a layer's node may lie out of view)
    assert len(nodes) == len(stages), sorted(n["text"] for n in nodes)
    for asset, group in stages.items():
        drawn = [n for n in nodes if shown_as(n["text"], asset)]
        assert len(drawn) == 1, (asset, [n["text"] for n in nodes])
        assert inside(drawn[0], boxes[group]), (asset, group, drawn[0], boxes[group])
        assert [g for g, box in boxes.items() if inside(drawn[0], box)] == [group], asset
    ui.page.wait_for_function(SETTLED, polling=100)
    ui.shot("2-stages-in-groups")


def check_partitions_grid(ui: Browser, instance, entities: list[str]) -> None:
    """The Partitions tab of liquidity_metrics: the date x entity grid, its count, the dates and
    entities it lists, and the golden EOD's two partitions materialized."""
    from regcalc_assets.partitions import BUSINESS_DATES, ENTITY_PARTITIONS

    dates = BUSINESS_DATES.get_partition_keys(dynamic_partitions_store=instance)
    assert sorted(instance.get_dynamic_partitions(ENTITY_PARTITIONS)) == entities
    ui.open("/assets/liquidity_metrics?view=partitions")
    page = ui.page
    page.get_by_text("Partitions Selected").wait_for()
    text = page.inner_text("body")
    assert f"{len(dates) * len(entities):,} Partitions Selected" in text
    assert re.search(rf"Materialized \({len(entities)}\)", text)
    assert int(re.search(r"Missing \(([\d,]+)\)", text).group(1).replace(",", "")) == (len(dates) - 1) * len(entities)
    assert dates[0] in text and dates[-1] in text  # the range of the date dimension
    page.get_by_placeholder("Filter by date").fill(DATE)
    visible(page, DATE).click()
    for entity in entities:  # the entity column of that date: each partition, materialized
        visible(page, entity).click()
        visible(page, f"{DATE}|{entity}").wait_for()
        visible(page, "Materialized").wait_for()
    ui.shot("3-liquidity-metrics-partitions")


@pytest.fixture()
def golden_eod(golden, regcalc_home, monkeypatch):
    monkeypatch.setenv("REGCALC_ENGINE", "duckdb")
    from regcalc_cli.instance import dagster_home, get_instance

    instance = get_instance()
    assert run_eod(instance, DATE, str(golden / "landing")).success
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home()), "REGCALC_LANDING": str(golden / "landing")}
    return instance, env


SENSOR = {"repositoryLocationName": "regcalc", "repositoryName": "__repository__", "sensorName": "recalc_sensor"}
SENSOR_STATE = """
query ($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor { sensorState { id status } } } }
"""


def sensor_state(port: int) -> dict:
    for _ in range(60):
        data = graphql(port, SENSOR_STATE, {"s": SENSOR})
        state = ((data.get("data") or {}).get("sensorOrError") or {}).get("sensorState")
        if state:
            return state
        time.sleep(1)
    raise AssertionError(f"no sensor state: {data}")


def wait_for_sensor(port: int, status: str) -> None:
    """Wait until the instance has the sensor in ``status`` (the page's switch sends a mutation)."""
    for _ in range(30):
        if sensor_state(port)["status"] == status:
            return
        time.sleep(0.5)
    raise AssertionError(f"the sensor is not {status}: {sensor_state(port)}")


def test_stale_in_the_ui_until_the_daemon_recomputes_by_itself(golden, golden_eod, regcalc_home, tmp_path):
    """`dagster dev` (webserver and daemon) on loopback over the golden EOD, in Chromium: the asset
    graph shows every stage in its group and the partitions of liquidity_metrics their date x
    entity grid; the user pauses the sensor on its page; a rule submitted and approved with
    `regcalc rules` shows exactly the partition it feeds as Unsynced (on the page and through
    GraphQL); the user turns the sensor back on, the daemon observes, recomputes that partition and
    what depends on it, and the page shows it up to date with the rule applied. The first-run
    community dialog never covers a page, and no page fetches anything but the webserver."""
    from regcalc_assets.sources.versions import observe
    from regcalc_resources import build_resources
    from regcalc_tests.helpers import regcalc

    instance, env = golden_eod
    entities = ["LE_UK", "LE_US"]
    cursor = last_storage_id(instance)
    out = artifacts_dir("ui")
    for old in out.glob("*.png"):
        old.unlink()
    port = free_port()
    with chromium_page(*VIEWPORT) as (page, log):  # without Chromium, fails here, before any server
        dev = start([sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port),
                     "-w", str(REPO / "workspace.yaml")], {**env, "REGCALC_SENSOR_SECONDS": "5"}, port)
        try:
            ui = Browser(page, log, port, out)
            ui.flip(ui.sensor_page(), to=False)  # it runs by default; the user pauses it to look first
            wait_for_sensor(port, "STOPPED")
            check_asset_graph(ui)
            check_partitions_grid(ui, instance, entities)
            assert stale_status(port, "liquidity_metrics", entities) == {"LE_UK": "FRESH", "LE_US": "FRESH"}

            rule = golden_rule(golden, "ADJ_2024_003")  # final stage, entities reporting in USD: LE_US
            (change,) = rule["adjustments"]
            assert (change["field"], change["operation"]) == ("hqla", "multiply")
            (tmp_path / "rule.yaml").write_text(yaml.safe_dump([rule]))
            regcalc("rules", "submit", str(tmp_path / "rule.yaml"), "--as-user-unverified",
                    "--user", rule["submitted_by"], home=regcalc_home)
            regcalc("rules", "approve", rule["rule_id"], "--as-user-unverified", "--user", rule["approval"]["user"],
                    home=regcalc_home)
            observe(instance, str(golden / "landing"))
            # the stage the rule feeds is stale for LE_US only (Dagster marks the asset whose direct
            # input changed; the sensor and `recalc` also recompute what lies downstream of it)
            assert stale_status(port, "liquidity_metrics", entities) == {"LE_UK": "FRESH", "LE_US": "STALE"}
            assert stale_status(port, "liquidity_components", entities) == {"LE_UK": "FRESH", "LE_US": "FRESH"}
            ui.partition("liquidity_metrics", f"{DATE}|LE_US")
            ui.unsynced().hover()  # its cause, as the tag's tooltip gives it
            visible(page, "has a new data version").wait_for()
            assert visible(page, "final_rules").count() == 1
            ui.shot("4-stale-partition")
            ui.partition("liquidity_metrics", f"{DATE}|LE_UK")
            assert ui.unsynced().count() == 0

            ui.flip(ui.sensor_page(), to=True)  # the user turns the sensor back on
            wait_for_sensor(port, "RUNNING")
            ui.shot("5-sensor-running")
            want = expected(FROM_FINAL - STAR, [DATE], ["LE_US"])  # the star is off here (REGCALC_STAR)
            deadline = time.time() + 300
            while not want <= materialized_since(instance, cursor):
                assert time.time() < deadline, f"the daemon did not recompute: {materialized_since(instance, cursor)}"
                time.sleep(3)
            done = time.time()
            tick = next_sensor_tick(instance, after=done)  # a further tick happened and found nothing to do
            assert tick.status.value == "SKIPPED" and not tick.run_ids, (tick.status, tick.run_ids, tick.skip_reason)
            assert materialized_since(instance, cursor) == want
            runs = instance.get_runs(dg.RunsFilter(tags={"regcalc/trigger": "sensor"}))
            assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
            assert stale_status(port, "liquidity_metrics", entities) == {"LE_UK": "FRESH", "LE_US": "FRESH"}

            ui.partition("liquidity_metrics", f"{DATE}|LE_US")  # up to date, from the sensor's run
            visible(page, runs[0].run_id[:8]).wait_for()
            assert ui.unsynced().count() == 0
            assert rule["rule_id"] in ui.metadata("final_calc_rules")
            assert float(ui.metadata("hqla")) == pytest.approx(float(ui.metadata("hqla_base")) * change["value"])
            ui.shot("6-fresh-partition")
            assert graphql(port, "{ shouldShowNux }", {})["data"]["shouldShowNux"] is False
            assert ui.hosts() == {f"127.0.0.1:{port}"}
            assert log.errors == [], log.errors  # no uncaught exception in any page
        finally:
            stop(dev)
    assert not (Path(env["DAGSTER_HOME"]) / ".nux" / "nux.yaml").exists(), "the dialog is off, not dismissed"
    assert sorted(p.name for p in out.glob("*.png")) == [
        "1-asset-groups.png", "2-stages-in-groups.png", "3-liquidity-metrics-partitions.png",
        "4-stale-partition.png", "5-sensor-running.png", "6-fresh-partition.png"]
    rows = build_resources()["warehouse"].query("SELECT basis, hqla FROM liquidity_metrics WHERE entity_id = 'LE_US'")
    by_basis = {r["basis"]: r["hqla"] for r in rows}
    assert by_basis["adjusted"] == pytest.approx(by_basis["base"] * change["value"])
