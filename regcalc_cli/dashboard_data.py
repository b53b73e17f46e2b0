"""What `regcalc dashboard` shows, gathered once: no Dagster, engine or warehouse import at import time.

Every figure comes from where ``regcalc report`` takes it: ``fetch_report`` on the warehouse, per
business date, adjusted and (on the last date) base. The rest is derived and says how:

* waterfall: ``regcalc_cli.waterfall`` (each rule's effect on the LCR, replayed in order);
* components: warehouse ``liquidity_components`` of the last date, base and adjusted;
* data quality: validation pass rate = accepted / (accepted + quarantined) positions, from the
  report's position counts (positions whose entity is null or unknown are not in it);
* lineage coverage: the share of component figures (both bases) whose traced inputs in the
  warehouse ``lineage`` table sum to the figure to the cent with one edge per aggregated
  position, and the share of aggregated position contributions that have an edge;
* runs: the Dagster instance's records of the runs tagged with a business date of the range
  (wall time), the positions of the partitions each run materialized (``liquidity_metrics``
  materializations: their ``positions_*`` metadata, else the report's counts) per second, and the
  recalculations' cache hit rate: partitions reused / (recomputed + reused), as each
  recalculation planned it (its runs' tags), summed over the recalculations of the range.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field

from regcalc_cli.report import fetch_report, table_exists


@dataclass
class RunInfo:
    """One Dagster run of a business date of the range."""

    run_id: str
    business_date: str
    trigger: str
    status: str
    started: str | None
    seconds: float | None
    partitions: int  # liquidity_metrics partitions it materialized
    positions: int | None  # positions of those partitions
    recalc: str | None = None  # recalculation id, for a recalculation's run

    @property
    def throughput(self) -> float | None:
        """Positions per second of wall time."""
        return self.positions / self.seconds if self.positions and self.seconds else None


@dataclass
class Recalculation:
    """One recalculation (a `regcalc recalc` or a sensor tick): what its plan recomputed and reused."""

    recalc_id: str
    started: str | None
    dates: list[str]
    runs: int
    recomputed: int
    reused: int
    seconds: float | None

    @property
    def hit_rate(self) -> float | None:
        total = self.recomputed + self.reused
        return self.reused / total if total else None


@dataclass
class Dashboard:
    start: str
    end: str
    focus_date: str  # the last date with figures: waterfall and components
    dates: list[str]
    entities: list[str]
    figures: dict[str, list[dict]]  # date -> `regcalc report` rows (adjusted)
    base_figures: dict[str, dict]  # entity -> `regcalc report --base` row of the focus date
    components: dict[str, list[dict]]  # entity -> component rows of the focus date, both bases
    waterfalls: dict = field(default_factory=dict)  # entity -> waterfall.Waterfall
    quality: list[dict] = field(default_factory=list)  # per date: accepted, quarantined, pass_rate
    lineage: list[dict] = field(default_factory=list)  # per date: traced / total components and positions
    runs: list[RunInfo] = field(default_factory=list)
    recalculations: list[Recalculation] = field(default_factory=list)
    generated_at: str = ""
    sources: dict = field(default_factory=dict)  # what could be read (``instance``: the Dagster instance)

    def row(self, date: str, entity: str) -> dict | None:
        return next((r for r in self.figures.get(date, []) if r["entity_id"] == entity), None)

    @property
    def pass_rate(self) -> float | None:
        accepted = sum(q["accepted"] for q in self.quality)
        total = accepted + sum(q["quarantined"] for q in self.quality)
        return accepted / total if total else None

    @property
    def lineage_coverage(self) -> float | None:
        total = sum(x["components"] for x in self.lineage)
        return sum(x["components_traced"] for x in self.lineage) / total if total else None

    @property
    def position_coverage(self) -> float | None:
        total = sum(x["positions"] for x in self.lineage)
        return sum(x["positions_traced"] for x in self.lineage) / total if total else None

    @property
    def cache_hit_rate(self) -> float | None:
        total = sum(r.recomputed + r.reused for r in self.recalculations)
        return sum(r.reused for r in self.recalculations) / total if total else None

    @property
    def median_run_seconds(self) -> float | None:
        seconds = [r.seconds for r in self.runs if r.seconds is not None]
        return statistics.median(seconds) if seconds else None

    @property
    def median_throughput(self) -> float | None:
        rates = [r.throughput for r in self.runs if r.throughput is not None]
        return statistics.median(rates) if rates else None


class NoFiguresError(LookupError):
    """Nothing to show: no figures in the range (or for the entities asked for)."""


def figure_dates(warehouse, start: str, end: str) -> list[str]:
    """The business dates between ``start`` and ``end`` (inclusive) that have figures."""
    if not table_exists(warehouse, "liquidity_metrics"):
        return []
    rows = warehouse.query("SELECT DISTINCT business_date FROM liquidity_metrics WHERE business_date BETWEEN "
                           "CAST(? AS DATE) AND CAST(? AS DATE) ORDER BY business_date", [start, end])
    return [str(r["business_date"]) for r in rows]


def gather(warehouse, stages, engine, instance, start: str, end: str, entities: list[str] | None = None) -> Dashboard:
    """Everything the page shows for the business dates ``start`` .. ``end`` (and ``entities``,
    default all). ``engine`` computes the waterfall's ratios; ``instance`` (Dagster, or None)
    gives the runs."""
    from regcalc_cli.waterfall import build_waterfalls

    dates = figure_dates(warehouse, start, end)
    figures = {d: fetch_report(warehouse, d) for d in dates}
    if entities:
        figures = {d: [r for r in rows if r["entity_id"] in entities] for d, rows in figures.items()}
        figures = {d: rows for d, rows in figures.items() if rows}
        dates = sorted(figures)
    if not dates:
        who = f" for {', '.join(entities)}" if entities else ""
        raise NoFiguresError(f"no figures{who} between {start} and {end}: run `regcalc eod` for those dates first")
    focus = dates[-1]
    shown = sorted({r["entity_id"] for rows in figures.values() for r in rows})
    focus_entities = [r["entity_id"] for r in figures[focus]]
    base = {r["entity_id"]: r for r in fetch_report(warehouse, focus, "base") if r["entity_id"] in focus_entities}
    adjusted = {r["entity_id"]: r for r in figures[focus]}
    board = Dashboard(start, end, focus, dates, shown, figures, base, _components(warehouse, focus, focus_entities),
                      generated_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))
    board.waterfalls = build_waterfalls(warehouse, stages, engine, focus, focus_entities, base, adjusted)
    board.quality = quality(figures)
    board.lineage = lineage_coverage(warehouse, start, end, set(shown))
    board.sources["instance"] = instance is not None
    if instance is not None:
        board.runs, board.recalculations = runs(instance, start, end, figures)
    return board


def _components(warehouse, date: str, entities: list[str]) -> dict[str, list[dict]]:
    rows = warehouse.query(
        "SELECT entity_id, basis, component, component_order, amount, position_count FROM liquidity_components "
        "WHERE business_date = CAST(? AS DATE) ORDER BY entity_id, component_order, basis", [date])
    out: dict[str, list[dict]] = {e: [] for e in entities}
    for r in rows:
        if r["entity_id"] in out:
            out[r["entity_id"]].append(r)
    return out


def quality(figures: dict[str, list[dict]]) -> list[dict]:
    """Per date: positions accepted and quarantined over the entities shown, and the pass rate."""
    out = []
    for date, rows in sorted(figures.items()):
        accepted = sum(r["positions_accepted"] or 0 for r in rows)
        quarantined = sum(r["positions_quarantined"] or 0 for r in rows)
        out.append({"business_date": date, "accepted": accepted, "quarantined": quarantined,
                    "pass_rate": accepted / (accepted + quarantined) if accepted + quarantined else None})
    return out


def lineage_coverage(warehouse, start: str, end: str, entities: set[str]) -> list[dict]:
    """Per date: component figures (both bases) and position contributions, and how many of each
    the warehouse lineage traces (see the module docstring). No lineage table: nothing traced."""
    from regcalc_assets.lineage.logic import CENT

    components = warehouse.query(
        "SELECT business_date, entity_id, basis, component, amount, position_count FROM liquidity_components "
        "WHERE business_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)", [start, end])
    traced, present = {}, set()
    if table_exists(warehouse, "lineage"):
        for r in warehouse.query(
                "SELECT business_date, entity_id, output_key, "
                "SUM(CASE WHEN input_stage = 'adjusted_positions' THEN 1 ELSE 0 END) AS position_edges, "
                "CAST(SUM(CAST(base_contribution AS DECIMAL(38, 10))) AS DOUBLE PRECISION) AS base_traced, "
                "CAST(SUM(CAST(contribution AS DECIMAL(38, 10))) AS DOUBLE PRECISION) AS traced "
                "FROM lineage WHERE business_date BETWEEN CAST(? AS DATE) AND CAST(? AS DATE) "
                "AND output_stage = 'liquidity_components' AND role = 'term' "
                "GROUP BY business_date, entity_id, output_key", [start, end]):
            traced[(str(r["business_date"]), r["entity_id"], r["output_key"])] = r
            present.add((str(r["business_date"]), r["entity_id"]))
    by_date: dict[str, dict] = {}
    for c in components:
        date = str(c["business_date"])
        if c["entity_id"] not in entities:
            continue
        day = by_date.setdefault(date, {"business_date": date, "components": 0, "components_traced": 0,
                                        "positions": 0, "positions_traced": 0})
        t = traced.get((date, c["entity_id"], c["component"]))
        edges = int(t["position_edges"] or 0) if t else 0
        value = (t["base_traced"] if c["basis"] == "base" else t["traced"]) if t else None
        covered = ((date, c["entity_id"]) in present and edges == c["position_count"]
                   and abs(float(value or 0.0) - (c["amount"] or 0.0)) < CENT)
        day["components"] += 1
        day["components_traced"] += int(covered)
        if c["basis"] == "adjusted":
            day["positions"] += c["position_count"] or 0
            day["positions_traced"] += min(edges, c["position_count"] or 0) if (date, c["entity_id"]) in present else 0
    for day in by_date.values():
        day["coverage"] = day["components_traced"] / day["components"] if day["components"] else None
        day["position_coverage"] = day["positions_traced"] / day["positions"] if day["positions"] else None
    return [by_date[d] for d in sorted(by_date)]


def runs(instance, start: str, end: str, figures: dict[str, list[dict]]) -> tuple[list[RunInfo], list[Recalculation]]:
    """The runs tagged with a business date of the range, and the recalculations among them."""
    import dagster as dg

    from regcalc_assets.sources.recalc import RECALC_ID_TAG, RECOMPUTED_TAG, REUSED_TAG
    from regcalc_cli.date_lock import BUSINESS_DATE_TAG, PROCESS_TAG

    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    days = [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    records = []
    for k in range(0, len(days), 500):
        records += instance.get_run_records(dg.RunsFilter(tags={BUSINESS_DATE_TAG: days[k:k + 500]}))
    positions = _positions_by_run(instance, figures)
    out, groups = [], {}
    for record in sorted(records, key=lambda r: (r.start_time or 0.0, r.dagster_run.run_id)):
        run, tags = record.dagster_run, record.dagster_run.tags
        seconds = record.end_time - record.start_time if record.start_time and record.end_time else None
        parts = positions.get(run.run_id, [])
        recalc = None
        if RECOMPUTED_TAG in tags:
            # one recalculation: its id; runs from before the id tag by sensor tick or process
            recalc = tags.get(RECALC_ID_TAG) or tags.get("dagster/tick") or \
                f"{tags.get(PROCESS_TAG, '?')}:{tags[RECOMPUTED_TAG]}:{tags[REUSED_TAG]}"
        info = RunInfo(run.run_id, tags.get(BUSINESS_DATE_TAG, ""), tags.get("regcalc/trigger", "other"),
                       run.status.value, _when(record.start_time), seconds, len(parts),
                       sum(parts) if parts and all(p is not None for p in parts) else None, recalc)
        out.append(info)
        if recalc:
            group = groups.setdefault(recalc, Recalculation(recalc, info.started, [], 0, int(tags[RECOMPUTED_TAG]),
                                                            int(tags[REUSED_TAG]), 0.0))
            group.runs += 1
            group.dates = sorted({*group.dates, info.business_date})
            group.seconds = None if seconds is None or group.seconds is None else group.seconds + seconds
    return out, list(groups.values())


def _positions_by_run(instance, figures: dict[str, list[dict]]) -> dict[str, list[int | None]]:
    """{run id: positions of each liquidity_metrics partition it materialized} for the partitions
    of ``figures``: the materialization's ``positions_*`` metadata, else the report's counts."""
    import dagster as dg

    counts = {f"{d}|{r['entity_id']}": (r["positions_accepted"] or 0) + (r["positions_quarantined"] or 0)
              for d, rows in figures.items() for r in rows}
    keys = sorted(counts)
    out: dict[str, list[int | None]] = {}
    for k in range(0, len(keys), 500):
        cursor = None
        while True:
            result = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("liquidity_metrics"), asset_partitions=keys[k:k + 500]),
                limit=1000, cursor=cursor)
            for record in result.records:
                meta = record.asset_materialization.metadata if record.asset_materialization else {}
                if "positions_accepted" in meta and "positions_quarantined" in meta:
                    n = int(meta["positions_accepted"].value) + int(meta["positions_quarantined"].value)
                else:
                    n = counts.get(record.partition_key)
                out.setdefault(record.run_id, []).append(n)
            if not result.has_more:
                break
            cursor = result.cursor
    return out


def _when(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
