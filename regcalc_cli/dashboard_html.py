"""The dashboard as one self-contained HTML page: inline CSS, hand-written SVG charts and a few
lines of inline JavaScript (the entity picker). Nothing is fetched: the page's Content Security
Policy allows no network source at all. Pure functions of a ``dashboard_data.Dashboard``.

Figures are printed as ``regcalc report`` prints them (its ``_fmt``: ratios to 4 decimals,
amounts to 2, "n/a" for a null); each figure cell carries ``data-date``, ``data-entity`` and
``data-figure`` so that a reader (or a test) can find it.
"""

from __future__ import annotations

import html
import math

from regcalc_cli.report import _fmt as report_format

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; --bg:#f5f7fa; --card:#fff; --up:#2f9e44; --down:#c92a2a; --end:#1864ab; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:var(--bg); }
header { background:#102a43; color:#fff; padding:18px 28px; }
header h1 { margin:0 0 4px; font-size:22px; }
header p { margin:0; color:#bcccdc; }
main { padding:20px 28px 40px; max-width:1400px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:16px 20px; margin:0 0 18px; }
h2 { font-size:17px; margin:0 0 10px; }
h3 { font-size:14px; margin:14px 0 6px; }
.kpis { display:grid; grid-template-columns:repeat(auto-fit, minmax(170px, 1fr)); gap:12px; margin:0 0 18px; }
.kpi { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.kpi .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.kpi .value { font-size:24px; font-weight:600; margin-top:2px; }
.kpi .sub { color:var(--muted); font-size:12px; }
.note { color:var(--muted); font-size:12.5px; margin:6px 0; }
.warn { color:var(--down); font-weight:600; }
table { border-collapse:collapse; font-size:12.5px; margin:6px 0; }
th, td { border-bottom:1px solid var(--line); padding:3px 8px; text-align:right; white-space:nowrap; }
th { background:#f0f4f8; }
.scroll th { position:sticky; top:0; }
td.t, th.t { text-align:left; }
.scroll { overflow:auto; max-height:460px; }
.chart { overflow-x:auto; }
svg { font-family:inherit; }
svg text { fill:var(--ink); font-size:11px; }
svg .axis { stroke:#9fb3c8; stroke-width:1; }
svg .grid { stroke:#e4e7eb; stroke-width:1; }
svg .ref { stroke:#e8590c; stroke-width:1.2; stroke-dasharray:5 4; }
.legend { display:flex; flex-wrap:wrap; gap:6px 14px; font-size:12px; margin:6px 0; }
.legend span { display:inline-flex; align-items:center; gap:5px; }
.legend i { width:12px; height:12px; border-radius:2px; display:inline-block; }
.picker { margin:0 0 10px; }
.entity-panel { display:none; }
.entity-panel.active { display:block; }
details summary { cursor:pointer; font-weight:600; }
"""

SCRIPT = """
(function () {
  var picker = document.getElementById('entity-picker');
  if (!picker) { return; }
  function show(entity) {
    var panels = document.querySelectorAll('.entity-panel');
    for (var i = 0; i < panels.length; i++) {
      panels[i].classList.toggle('active', panels[i].getAttribute('data-entity') === entity);
    }
  }
  picker.addEventListener('change', function () { show(picker.value); });
  show(picker.value);
})();
"""

STAGE_LABELS = {"deal_enrichment": "deal", "aggregation": "aggregation", "final_calc": "final"}


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(column: str, value) -> str:
    """A figure as ``regcalc report`` prints it."""
    return report_format(column, value)


def pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def signed(value: float | None) -> str:
    """A change to 4 decimals with its sign (a change that rounds to nothing is +0.0000)."""
    return "n/a" if value is None else f"{round(value, 4) + 0.0:+.4f}"


def palette(n: int) -> list[str]:
    """``n`` distinguishable colours (hues spread evenly, alternating lightness)."""
    return [f"hsl({round(i * 360 / max(n, 1) + 210) % 360}, 65%, {42 if i % 2 == 0 else 55}%)" for i in range(n)]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= m * step)
    first = math.floor(low / step) * step
    ticks, v = [], first
    while v <= high + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < high:
        ticks.append(round(v, 12))
    return ticks


def line_chart(series: dict[str, list[tuple[str, float | None, str]]], colours: dict[str, str], *, title: str,
               tick_format=lambda v: f"{v:.2f}", reference: float | None = None, reference_label: str = "",
               ceiling: float | None = None, width: int = 900, height: int = 300) -> str:
    """An SVG line chart over business dates: ``series`` name -> [(date, value, tooltip)]; a
    null value breaks the line. The dates are evenly spaced in order (month-ends and daily dates
    side by side stay readable), labelled where there is room. ``reference`` draws a dashed
    horizontal line; ``ceiling`` is the largest value the axis needs (1.0 for a share)."""
    left, right, top, bottom = 64, 44, 14, 34
    values = [v for points in series.values() for _, v, _ in points if v is not None]
    dates = sorted({d for points in series.values() for d, _, _ in points})
    if not values or not dates:
        return f'<p class="note">{esc(title)}: nothing to plot.</p>'
    extremes = values + ([reference] if reference is not None else [])
    low, high = min([0.0, *extremes]), max(extremes)
    if ceiling is not None:  # a share: from a little below its lowest value up to the ceiling
        low, high = max(0.0, min(values) - (ceiling - min(values)) * 0.5 - 0.001), ceiling
    else:
        high = high * 1.05 if high > 0 else high + 1
    ticks = nice_ticks(low, high)
    y0, y1 = ticks[0], ticks[-1]
    plot_w, plot_h = width - left - right, height - top - bottom
    index = {d: i for i, d in enumerate(dates)}

    def x(date: str) -> float:
        return left + (plot_w / 2 if len(dates) == 1 else index[date] / (len(dates) - 1) * plot_w)

    def y(v: float) -> float:
        return top + plot_h - (v - y0) / (y1 - y0) * plot_h

    out = [f'<svg role="img" aria-label="{esc(title)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f"<title>{esc(title)}</title>"]
    for t in ticks:
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
                   f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{esc(tick_format(t))}</text>')
    out.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>'
               f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    last_label = None
    for d in dates:  # a label where it does not run into the previous one (about 70 px each)
        if last_label is None or x(d) - last_label >= 74:
            out.append(f'<text x="{x(d):.1f}" y="{height - 12}" text-anchor="middle">{esc(d)}</text>')
            last_label = x(d)
    if reference is not None:
        out.append(f'<line class="ref" x1="{left}" x2="{width - right}" y1="{y(reference):.1f}" y2="{y(reference):.1f}"/>'
                   f'<text x="{width - right - 4}" y="{y(reference) - 4:.1f}" text-anchor="end">{esc(reference_label)}</text>')
    for name, points in series.items():
        colour = colours[name]
        segment: list[str] = []
        segments = []
        for d, v, _ in sorted(points):
            if v is None:
                segments.append(segment)
                segment = []
            else:
                segment.append(f"{x(d):.1f},{y(v):.1f}")
        segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{" ".join(seg)}"/>')
        for d, v, tip in points:
            if v is not None:
                out.append(f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"><title>{esc(tip)}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def legend(colours: dict[str, str]) -> str:
    return '<div class="legend">' + "".join(f'<span><i style="background:{c}"></i>{esc(n)}</span>'
                                            for n, c in colours.items()) + "</div>"


def waterfall_chart(wf) -> str:
    """Base LCR, one floating bar per rule (its effect on the LCR), adjusted LCR."""
    if wf.base_lcr is None or wf.adjusted_lcr is None or any(s.lcr_impact is None for s in wf.steps):
        return '<p class="note">LCR is n/a (net outflows of 0) at one end: no waterfall.</p>'
    bars = [("Base LCR", 0.0, wf.base_lcr, "end")]
    bars += [(s.rule, s.lcr_before, s.lcr_after, "up" if s.lcr_after >= s.lcr_before else "down") for s in wf.steps]
    bars.append(("Adjusted LCR", 0.0, wf.adjusted_lcr, "end"))
    left, right, top, bottom = 64, 16, 22, 96
    slot = 74
    width, height = max(520, left + right + slot * len(bars)), 360
    plot_h = height - top - bottom
    ticks = nice_ticks(min(0.0, *(min(a, b) for _, a, b, _ in bars)), max(1.0, *(max(a, b) for _, a, b, _ in bars)) * 1.08)
    y0, y1 = ticks[0], ticks[-1]

    def y(v: float) -> float:
        return top + plot_h - (v - y0) / (y1 - y0) * plot_h

    colour = {"end": "var(--end)", "up": "var(--up)", "down": "var(--down)"}
    out = [f'<svg role="img" aria-label="LCR waterfall {esc(wf.entity_id)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}"><title>LCR from base to adjusted, {esc(wf.entity_id)} {esc(wf.business_date)}</title>']
    for t in ticks:
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
                   f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:.2f}</text>')
    out.append(f'<line class="ref" x1="{left}" x2="{width - right}" y1="{y(1.0):.1f}" y2="{y(1.0):.1f}"/>')
    for i, (label, a, b, kind) in enumerate(bars):
        x = left + i * slot + 10
        top_v, low_v = max(a, b), min(a, b)
        h = max(1.0, y(low_v) - y(top_v))
        value = fmt("lcr", b) if kind == "end" else signed(b - a)
        tip = f"{label}: {value}" + ("" if kind == "end" else f" (LCR {fmt('lcr', a)} to {fmt('lcr', b)})")
        out.append(f'<rect class="bar bar-{kind}" data-rule="{esc(label)}" x="{x}" y="{y(top_v):.1f}" width="{slot - 20}" '
                   f'height="{h:.1f}" fill="{colour[kind]}"><title>{esc(tip)}</title></rect>')
        out.append(f'<text x="{x + (slot - 20) / 2:.1f}" y="{y(top_v) - 5:.1f}" text-anchor="middle">{esc(value)}</text>')
        out.append(f'<text transform="translate({x + (slot - 20) / 2:.1f},{top + plot_h + 12}) rotate(35)" '
                   f'text-anchor="start">{esc(label)}</text>')
        if i + 1 < len(bars):
            out.append(f'<line class="axis" x1="{x + slot - 20}" x2="{x + slot + 10}" y1="{y(b):.1f}" y2="{y(b):.1f}" '
                       'stroke-dasharray="2 2"/>')
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y(0.0):.1f}" y2="{y(0.0):.1f}"/></svg>')
    return "".join(out)


def component_chart(rows: list[dict], entity: str) -> str:
    """Horizontal bars: each component's base and adjusted amount."""
    by_component: dict[str, dict[str, float]] = {}
    for r in rows:
        by_component.setdefault(r["component"], {})[r["basis"]] = r["amount"] or 0.0
    if not by_component:
        return '<p class="note">No components stored.</p>'
    high = max(max(v.values()) for v in by_component.values()) or 1.0
    left, width, row_h = 130, 760, 34
    height = 16 + row_h * len(by_component)
    out = [f'<svg role="img" aria-label="components {esc(entity)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}"><title>Components of {esc(entity)}</title>']
    scale = (width - left - 170) / high
    for i, (component, amounts) in enumerate(by_component.items()):
        y = 8 + i * row_h
        out.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{esc(component)}</text>')
        for j, (basis, colour) in enumerate((("base", "#9fb3c8"), ("adjusted", "#1864ab"))):
            amount = amounts.get(basis, 0.0)
            out.append(f'<rect x="{left}" y="{y + j * 13}" width="{max(0.5, amount * scale):.1f}" height="12" fill="{colour}">'
                       f'<title>{esc(component)} {basis}: {esc(fmt("amount", float(amount)))}</title></rect>'
                       f'<text x="{left + max(0.5, amount * scale) + 6:.1f}" y="{y + j * 13 + 10}">{esc(fmt("amount", float(amount)))}</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(values: list[tuple[str, float | None, str, str]], *, title: str, unit: str, width: int = 900,
              height: int = 220) -> str:
    """Vertical bars (label, value, colour, tooltip), e.g. one per run."""
    shown = [(l, v, c, t) for l, v, c, t in values if v is not None]
    if not shown:
        return f'<p class="note">{esc(title)}: nothing to plot.</p>'
    left, right, top, bottom = 64, 16, 12, 24
    ticks = nice_ticks(0.0, max(v for _, v, _, _ in shown) * 1.05 or 1.0)
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / len(shown)

    def y(v: float) -> float:
        return top + plot_h - v / ticks[-1] * plot_h

    out = [f'<svg role="img" aria-label="{esc(title)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
           f"<title>{esc(title)}</title>"]
    for t in ticks:
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
                   f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for i, (label, v, colour, tip) in enumerate(shown):
        x = left + i * slot + slot * 0.15
        out.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{max(1.0, slot * 0.7):.1f}" height="{max(0.5, plot_h - (y(v) - top)):.1f}" '
                   f'fill="{colour}"><title>{esc(tip)}</title></rect>')
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
               f'<text x="{left}" y="{height - 6}">{esc(unit)}</text></svg>')
    return "".join(out)


def kpi(label: str, value: str, sub: str = "", key: str = "") -> str:
    return (f'<div class="kpi" data-kpi="{esc(key)}"><div class="label">{esc(label)}</div>'
            f'<div class="value">{esc(value)}</div><div class="sub">{esc(sub)}</div></div>')


def render(board) -> str:
    """The whole page."""
    colours = dict(zip(board.entities, palette(len(board.entities))))
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
        'script-src \'unsafe-inline\'; img-src data:">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>regcalc dashboard {esc(board.start)} to {esc(board.end)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>Liquidity dashboard</h1><p>Business dates {esc(board.start)} to {esc(board.end)}: "
        f"{len(board.dates)} date(s) with figures, {len(board.entities)} entit{'y' if len(board.entities) == 1 else 'ies'}; "
        f"generated {esc(board.generated_at)}. Figures as <code>regcalc report</code> gives them (adjusted basis "
        f"unless marked base).</p></header><main>",
        _kpis(board),
        _over_time(board, colours),
        _entity_panels(board),
        _quality(board),
        _lineage(board),
        _runs(board),
        _figures_table(board),
        _methods(),
        f"</main><script>{SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def _kpis(board) -> str:
    rows = board.figures[board.focus_date]
    lcrs = [r for r in rows if r["lcr"] is not None]
    nsfrs = [r for r in rows if r["nsfr"] is not None]
    low_lcr = min(lcrs, key=lambda r: r["lcr"]) if lcrs else None
    low_nsfr = min(nsfrs, key=lambda r: r["nsfr"]) if nsfrs else None
    runs = board.median_run_seconds
    throughput = board.median_throughput
    return '<div class="kpis">' + "".join([
        kpi(f"lowest LCR {board.focus_date}", fmt("lcr", low_lcr["lcr"]) if low_lcr else "n/a",
            low_lcr["entity_id"] if low_lcr else "", "lowest-lcr"),
        kpi(f"lowest NSFR {board.focus_date}", fmt("nsfr", low_nsfr["nsfr"]) if low_nsfr else "n/a",
            low_nsfr["entity_id"] if low_nsfr else "", "lowest-nsfr"),
        kpi("data-quality score", pct(board.pass_rate), "validation pass rate over the range", "pass-rate"),
        kpi("lineage coverage", pct(board.lineage_coverage), f"position contributions traced {pct(board.position_coverage)}",
            "lineage-coverage"),
        kpi("median run time", "n/a" if runs is None else f"{runs:.1f} s", f"{len(board.runs)} run(s)", "run-time"),
        kpi("median throughput", "n/a" if throughput is None else f"{throughput:,.0f} pos/s", "positions per second",
            "throughput"),
        kpi("cache hit rate", pct(board.cache_hit_rate),
            f"{len(board.recalculations)} recalculation(s)" if board.recalculations else "no recalculation in range",
            "cache-hit-rate"),
    ]) + "</div>"


def _over_time(board, colours) -> str:
    charts = []
    for ratio in ("lcr", "nsfr"):
        series = {e: [] for e in board.entities}
        for date in board.dates:
            for r in board.figures[date]:
                series[r["entity_id"]].append((date, r[ratio], f"{r['entity_id']} {date}: {ratio.upper()} {fmt(ratio, r[ratio])}"))
        charts.append(f"<h3>{ratio.upper()}</h3>" + '<div class="chart">' + line_chart(
            series, colours, title=f"{ratio.upper()} per entity", reference=1.0, reference_label="100% minimum") + "</div>")
    return ("<section id=\"over-time\"><h2>LCR and NSFR per entity over time</h2>" + legend(colours) + "".join(charts)
            + '<p class="note">Adjusted figures of <code>regcalc report</code> for each business date; the dashed line is '
              "the 100% regulatory minimum. Every value is in the figures table below.</p></section>")


def _entity_panels(board) -> str:
    entities = list(board.waterfalls) or list(board.components)
    picker = ('<div class="picker"><label for="entity-picker">Entity: </label><select id="entity-picker">'
              + "".join(f'<option value="{esc(e)}">{esc(e)}</option>' for e in entities) + "</select></div>")
    panels = []
    for i, entity in enumerate(entities):
        wf = board.waterfalls.get(entity)
        report = board.row(board.focus_date, entity) or {}
        base = board.base_figures.get(entity, {})
        panels.append(f'<div class="entity-panel{" active" if i == 0 else ""}" data-entity="{esc(entity)}">'
                      + _waterfall_section(wf, board.focus_date) + _component_section(board, entity, report, base) + "</div>")
    return (f"<section id=\"entity\"><h2>Waterfall and components on {esc(board.focus_date)}</h2>{picker}"
            + "".join(panels) + "</section>")


def _value(value) -> str:
    """A figure's full precision as a ``data-value`` attribute (the text shows it rounded)."""
    return "" if value is None else f' data-value="{value!r}"'


def _waterfall_section(wf, date: str) -> str:
    if wf is None:
        return '<p class="note">No waterfall.</p>'
    where = f'data-date="{esc(date)}" data-entity="{esc(wf.entity_id)}"'
    rows = [f'<tr class="end"><td class="t">Base LCR</td><td class="t">-</td><td>-</td><td></td>'
            f'<td {where} data-figure="lcr_base"{_value(wf.base_lcr)}>{esc(fmt("lcr", wf.base_lcr))}</td>'
            f'<td></td><td {where} data-figure="nsfr_base"{_value(wf.base_nsfr)}>{esc(fmt("nsfr", wf.base_nsfr))}</td></tr>']
    for s in wf.steps:
        rows.append(f'<tr {where} data-rule="{esc(s.rule)}" data-stage="{esc(s.stage)}"><td class="t">{esc(s.rule)}</td>'
                    f'<td class="t">{esc(STAGE_LABELS.get(s.stage, s.stage))}</td><td>{s.changes:,}</td>'
                    f'<td data-figure="lcr_impact"{_value(s.lcr_impact)}>{esc(signed(s.lcr_impact))}</td>'
                    f'<td data-figure="lcr_after"{_value(s.lcr_after)}>{esc(fmt("lcr", s.lcr_after))}</td>'
                    f'<td data-figure="nsfr_impact"{_value(s.nsfr_impact)}>{esc(signed(s.nsfr_impact))}</td>'
                    f'<td data-figure="nsfr_after"{_value(s.nsfr_after)}>{esc(fmt("nsfr", s.nsfr_after))}</td></tr>')
    lcr_change = None if wf.adjusted_lcr is None or wf.base_lcr is None else wf.adjusted_lcr - wf.base_lcr
    nsfr_change = None if wf.adjusted_nsfr is None or wf.base_nsfr is None else wf.adjusted_nsfr - wf.base_nsfr
    rows.append(f'<tr class="end"><td class="t"><b>Adjusted LCR</b></td><td class="t">-</td><td>-</td>'
                f'<td>{esc(signed(lcr_change))}</td>'
                f'<td {where} data-figure="lcr_adjusted"{_value(wf.adjusted_lcr)}><b>{esc(fmt("lcr", wf.adjusted_lcr))}</b></td>'
                f'<td>{esc(signed(nsfr_change))}</td>'
                f'<td {where} data-figure="nsfr_adjusted"{_value(wf.adjusted_nsfr)}><b>{esc(fmt("nsfr", wf.adjusted_nsfr))}</b></td></tr>')
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in wf.notes)
    status = ('<p class="note">Replayed: the steps reach the stored adjusted components and both reported ratios.</p>'
              if wf.reconciled else "".join(f'<p class="note warn">{esc(m)}</p>' for m in wf.mismatches))
    if not wf.steps:
        notes += '<p class="note">No rule changed a value of this entity on this date.</p>'
    return (f"<h3>LCR from base to adjusted, one bar per rule ({esc(wf.entity_id)})</h3>"
            f'<div class="chart">{waterfall_chart(wf)}</div>'
            '<table class="waterfall"><thead><tr><th class="t">step</th><th class="t">stage</th><th>values changed</th>'
            "<th>LCR impact</th><th>LCR after</th><th>NSFR impact</th><th>NSFR after</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>" + status + notes)


def _component_section(board, entity: str, report: dict, base: dict) -> str:
    rows = board.components.get(entity, [])
    by_component: dict[str, dict] = {}
    for r in rows:
        by_component.setdefault(r["component"], {})[r["basis"]] = r
    table = ["<table><thead><tr><th class=\"t\">component</th><th>base</th><th>adjusted</th><th>change</th>"
             "<th>positions</th></tr></thead><tbody>"]
    for component, bases in by_component.items():
        b, a = bases.get("base", {}).get("amount"), bases.get("adjusted", {}).get("amount")
        table.append(f'<tr><td class="t">{esc(component)}</td><td>{esc(fmt("amount", b))}</td><td>{esc(fmt("amount", a))}</td>'
                     f'<td>{esc(fmt("amount", None if a is None or b is None else a - b))}</td>'
                     f'<td>{bases.get("adjusted", {}).get("position_count", 0):,}</td></tr>')
    table.append("</tbody></table>")
    figures = ["hqla_l1", "hqla_l2a", "hqla_l2b", "adj15", "adj40", "hqla", "total_outflows", "total_inflows",
               "capped_inflows", "net_outflows", "lcr", "asf", "rsf", "nsfr"]
    totals = ['<table><thead><tr><th class="t">figure</th><th>base</th><th>adjusted</th></tr></thead><tbody>']
    for f in figures:
        totals.append(f'<tr><td class="t">{f}</td><td>{esc(fmt(f, base.get(f)))}</td>'
                      f'<td data-date="{esc(board.focus_date)}" data-entity="{esc(entity)}" data-figure="{f}">'
                      f"{esc(fmt(f, report.get(f)))}</td></tr>")
    totals.append("</tbody></table>")
    ccy = report.get("reporting_currency") or ""
    return (f"<h3>Components of {esc(entity)} on {esc(board.focus_date)} ({esc(ccy)})</h3>"
            + '<div class="legend"><span><i style="background:#9fb3c8"></i>base</span><span><i style="background:#1864ab">'
              "</i>adjusted</span></div>"
            + f'<div class="chart">{component_chart(rows, entity)}</div>'
            + '<div style="display:flex;gap:28px;flex-wrap:wrap;align-items:flex-start">' + "".join(table) + "".join(totals) + "</div>"
            + '<p class="note">hqla = hqla_l1 + hqla_l2a + hqla_l2b - adj15 - adj40 (after final rules); '
              "net_outflows = total_outflows - min(total_inflows, 0.75 x total_outflows); LCR = hqla / net_outflows; "
              "NSFR = asf / rsf (liquidity-rules.md).</p>")


def _quality(board) -> str:
    series = {"validation pass rate": [(q["business_date"], q["pass_rate"],
                                        f"{q['business_date']}: {pct(q['pass_rate'])} ({q['accepted']:,} accepted, "
                                        f"{q['quarantined']:,} quarantined)") for q in board.quality]}
    rows = "".join(f'<tr><td class="t">{esc(q["business_date"])}</td><td>{q["accepted"]:,}</td><td>{q["quarantined"]:,}</td>'
                   f'<td data-date="{esc(q["business_date"])}" data-figure="pass_rate">{esc(pct(q["pass_rate"]))}</td></tr>'
                   for q in board.quality)
    return ('<section id="quality"><h2>Data quality: quarantine and validation pass rate</h2>'
            + '<div class="chart">' + line_chart(series, {"validation pass rate": "#2f9e44"}, title="validation pass rate",
                                                tick_format=lambda v: f"{v * 100:.2f}%", ceiling=1.0, height=220) + "</div>"
            + '<div class="scroll"><table><thead><tr><th class="t">date</th><th>accepted</th><th>quarantined</th>'
              f"<th>pass rate</th></tr></thead><tbody>{rows}</tbody></table></div>"
            + '<p class="note">Data-quality score = validation pass rate = positions accepted / (accepted + quarantined), '
              "summed over the entities shown (the position counts of <code>regcalc report</code>). Positions whose "
              "entity_id is null or unknown are quarantined for the date outside any entity and are not counted here.</p>"
              "</section>")


def _lineage(board) -> str:
    series = {"component figures traced": [(x["business_date"], x["coverage"], f"{x['business_date']}: "
                                             f"{x['components_traced']}/{x['components']} component figures")
                                            for x in board.lineage],
              "position contributions traced": [(x["business_date"], x["position_coverage"], f"{x['business_date']}: "
                                                 f"{x['positions_traced']:,}/{x['positions']:,} contributions")
                                                for x in board.lineage]}
    colours = {"component figures traced": "#1864ab", "position contributions traced": "#e8590c"}
    rows = "".join(f'<tr><td class="t">{esc(x["business_date"])}</td><td>{x["components_traced"]:,} / {x["components"]:,}</td>'
                   f'<td data-date="{esc(x["business_date"])}" data-figure="lineage_coverage">{esc(pct(x["coverage"]))}</td>'
                   f'<td>{x["positions_traced"]:,} / {x["positions"]:,}</td><td>{esc(pct(x["position_coverage"]))}</td></tr>'
                   for x in board.lineage)
    return ('<section id="lineage"><h2>Lineage coverage</h2>' + legend(colours)
            + '<div class="chart">' + line_chart(series, colours, title="lineage coverage",
                                                tick_format=lambda v: f"{v * 100:.0f}%", ceiling=1.0, height=220) + "</div>"
            + '<div class="scroll"><table><thead><tr><th class="t">date</th><th>component figures traced</th><th>coverage</th>'
              f"<th>position contributions traced</th><th>share</th></tr></thead><tbody>{rows}</tbody></table></div>"
            + '<p class="note">A component figure (each basis) is traced when the warehouse <code>lineage</code> table '
              "holds one edge per position aggregated into it and its edges (positions and rule changes) sum to it to the "
              "cent, the check the lineage asset runs. Position contributions traced = position edges / positions "
              "aggregated. A date run with <code>REGCALC_LINEAGE=off</code> has none.</p></section>")


def _runs(board) -> str:
    trigger_colours = {"cli-eod": "#1864ab", "recalc": "#2f9e44", "sensor": "#e8590c", "schedule": "#7048e8"}
    bars = [(r.run_id[:8], r.seconds, trigger_colours.get(r.trigger, "#868e96"),
             f"{r.business_date} {r.trigger} {r.run_id[:8]}: {r.seconds:.1f} s" if r.seconds is not None else "")
            for r in board.runs]
    rates = [(r.run_id[:8], r.throughput, trigger_colours.get(r.trigger, "#868e96"),
              f"{r.business_date} {r.trigger} {r.run_id[:8]}: {r.throughput:,.0f} positions/s" if r.throughput else "")
             for r in board.runs]
    rows = "".join(
        f'<tr><td class="t">{esc(r.business_date)}</td><td class="t">{esc(r.trigger)}</td><td class="t">{esc(r.status)}</td>'
        f'<td class="t">{esc(r.started or "")}</td><td class="t"><code>{esc(r.run_id[:8])}</code></td>'
        f'<td>{"n/a" if r.seconds is None else f"{r.seconds:.1f}"}</td><td>{r.partitions}</td>'
        f'<td>{"n/a" if r.positions is None else f"{r.positions:,}"}</td>'
        f'<td>{"n/a" if r.throughput is None else f"{r.throughput:,.0f}"}</td></tr>' for r in board.runs)
    recalcs = "".join(
        f'<tr><td class="t"><code>{esc(r.recalc_id[:16])}</code></td><td class="t">{esc(r.started or "")}</td>'
        f'<td class="t">{esc(", ".join(r.dates))}</td><td>{r.runs}</td><td>{r.recomputed:,}</td><td>{r.reused:,}</td>'
        f'<td data-figure="hit_rate">{esc(pct(r.hit_rate))}</td></tr>' for r in board.recalculations)
    recalc_table = ('<h3>Recalculations</h3><table><thead><tr><th class="t">recalculation</th><th class="t">started</th>'
                    '<th class="t">dates</th><th>runs</th><th>partitions recomputed</th><th>reused</th><th>cache hit rate</th>'
                    f"</tr></thead><tbody>{recalcs}</tbody></table>" if recalcs else
                    '<p class="note">No recalculation (<code>regcalc recalc</code> or the sensor) ran for these dates.</p>')
    legend_html = legend({k: v for k, v in trigger_colours.items() if any(r.trigger == k for r in board.runs)})
    if board.sources.get("instance") is False:
        legend_html += '<p class="note warn">The Dagster instance of this home could not be opened: no runs.</p>'
    return ('<section id="runs"><h2>Runs: run time, throughput, cache hit rate</h2>' + legend_html
            + "<h3>Run time (seconds)</h3>" + '<div class="chart">' + bar_chart(bars, title="run time", unit="seconds per run") + "</div>"
            + "<h3>Throughput (positions per second)</h3>" + '<div class="chart">'
            + bar_chart(rates, title="throughput", unit="positions per second") + "</div>"
            + '<div class="scroll"><table><thead><tr><th class="t">date</th><th class="t">trigger</th><th class="t">status</th>'
              '<th class="t">started (UTC)</th><th class="t">run</th><th>seconds</th><th>partitions</th><th>positions</th>'
              f"<th>positions/s</th></tr></thead><tbody>{rows}</tbody></table></div>" + recalc_table
            + '<p class="note">Runs are the Dagster runs tagged with a business date of the range (an EOD makes one '
              "run for the date's entities and one date-level run). Run time is the run's wall time from its start to its "
              "end. Throughput = positions of the entity partitions the run materialized (the position counts recorded "
              "on its <code>liquidity_metrics</code> materializations) per second of run time; a date-level run has none. "
              "Cache hit rate = partitions reused / (recomputed + reused) as each recalculation planned it: the share of "
              "the materialized (asset, partition) pairs in its scope that were up to date and left as they were; summed "
              "over the recalculations of the range. An EOD recomputes every partition of its date by design and is not "
              "counted.</p></section>")


def _figures_table(board) -> str:
    columns = ["hqla", "total_outflows", "total_inflows", "net_outflows", "lcr", "asf", "rsf", "nsfr",
               "positions_accepted", "positions_quarantined", "lcr_variance", "nsfr_variance"]
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = []
    for date in reversed(board.dates):
        for r in board.figures[date]:
            cells = "".join(f'<td data-date="{esc(date)}" data-entity="{esc(r["entity_id"])}" data-figure="{c}">'
                            f"{esc(fmt(c, r[c]))}</td>" for c in columns)
            body.append(f'<tr><td class="t">{esc(date)}</td><td class="t">{esc(r["entity_id"])}</td>'
                        f'<td class="t">{esc(r["reporting_currency"])}</td>{cells}</tr>')
    return ('<section id="figures"><h2>Figures (as <code>regcalc report</code>)</h2>'
            '<div class="scroll"><table class="figures"><thead><tr><th class="t">business_date</th><th class="t">entity_id</th>'
            f'<th class="t">ccy</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div></section>')


def _methods() -> str:
    return ('<section id="methods"><h2>How the waterfall is derived</h2><p class="note">No table stores a rule\'s effect on '
            "the LCR: the ratio is not additive (the HQLA caps and the 75% inflow cap bind or not). The rules are replayed "
            "in the order the pipeline applied them: deal-stage rules (each stored adjusted position replayed from its base "
            "fields through its adjustment trail, its contributions computed as the aggregation stage does), "
            "aggregation-stage rules (their change to a component), the HQLA caps, final-stage rules (their change to hqla "
            "or a total), then the inflow cap and the ratios, recomputed after each rule with the metrics stage's own "
            "functions. A rule's bar is the LCR after it minus the LCR before it; a clamp counts for the rule it is "
            "attributed to. The first and last bars are the base and adjusted LCR of <code>regcalc report</code>, and "
            "the replay is checked to reach them. The order matters: a rule's impact is measured given the rules before "
            "it.</p></section>")
