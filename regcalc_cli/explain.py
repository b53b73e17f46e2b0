"""`regcalc explain`: why a reported figure is what it is, from the ratio down to delivered rows.

Figures, components, lineage edges and the adjustment trail come from the warehouse (what BI
reads); a position's classification is recomputed from its stored ``adjusted_positions`` row
with the pipeline's own ``classify``, so the explanation shows the factor-table row that matched
each field, the conditions that made it match, and the spec row (liquidity-rules.md) behind it.
"""

from __future__ import annotations

import json

from regcalc_assets.aggregation.logic import COMPONENTS
from regcalc_assets.enrichment.logic import RULE_COLUMNS
from regcalc_core.conditions import from_when, holds
from regcalc_core.factors import load_factor_tables

RATIOS = {
    "lcr": ("hqla", "net_outflows", ["HQLA_L1", "HQLA_L2A", "HQLA_L2B_RMBS", "HQLA_L2B_OTHER", "OUTFLOWS", "INFLOWS"]),
    "nsfr": ("asf", "rsf", ["ASF", "RSF"]),
}
FORMULAS = {
    "hqla": "hqla_l1 + hqla_l2a + hqla_l2b - adj15 - adj40 (+ final rules)",
    "net_outflows": "total_outflows - capped_inflows, capped_inflows = min(total_inflows, 0.75 x total_outflows)",
    "asf": "ASF component (+ final rules)",
    "rsf": "RSF component (+ final rules)",
}


class ExplainError(LookupError):
    """Nothing to explain: no figures, no lineage, or no such component or position."""


def _edges(warehouse, date: str, entity: str, where: str = "", params: list | None = None) -> list[dict]:
    return warehouse.query(
        "SELECT * FROM lineage WHERE business_date = CAST(? AS DATE) AND entity_id = ? " + where,
        [date, entity, *(params or [])])


def _value(edge: dict, basis: str):
    return edge["contribution"] if basis == "adjusted" else edge["base_contribution"]


def explain_component(warehouse, date: str, entity: str, component: str, basis: str = "adjusted", top: int = 5) -> dict:
    """A component: amount, position count, its largest contributing positions and the rules
    that changed it (aggregation stage)."""
    rows = warehouse.query(
        "SELECT amount, position_count FROM liquidity_components WHERE business_date = CAST(? AS DATE) "
        "AND entity_id = ? AND basis = ? AND component = ?", [date, entity, basis, component])
    if not rows:
        raise ExplainError(f"no component {component} for {entity} on {date} (components: {', '.join(COMPONENTS)})")
    edges = _edges(warehouse, date, entity, "AND output_stage = 'liquidity_components' AND output_key = ?", [component])
    positions = [e for e in edges if e["input_stage"] == "adjusted_positions"]
    positions.sort(key=lambda e: (-abs(_value(e, basis) or 0.0), e["input_key"]))
    return {
        "component": component,
        "amount": rows[0]["amount"],
        "position_count": rows[0]["position_count"],
        "traced_sum": sum(_value(e, basis) or 0.0 for e in edges),
        "rules": [{"rule": e["input_key"], "change": _value(e, basis)} for e in edges if e["input_stage"] == "adjustment_rules"],
        "largest_positions": [
            {"position": e["input_key"], "contribution": _value(e, basis), "factor_rule": e["factor_rule"],
             "source_file": e["source_file"], "source_row": e["source_row"]}
            for e in positions[:top]
        ],
    }


def explain_metric(warehouse, date: str, entity: str, metric: str, basis: str = "adjusted", top: int = 5) -> dict:
    """A ratio: numerator / denominator, how each is built (terms, caps, rules) and its components."""
    figures = _figures(warehouse, date, entity, basis)
    numerator, denominator, components = RATIOS[metric]
    edges = _edges(warehouse, date, entity, "AND output_stage = 'liquidity_metrics'")
    if not edges:
        raise ExplainError(f"no lineage stored for {entity} on {date}: run `regcalc eod` with lineage on")

    def terms(figure):
        return [{"input": e["input_key"], "kind": e["input_stage"], "value": _value(e, basis)}
                for e in edges if e["output_key"] == figure and e["role"] == "term"]

    parts = {figure: {"value": figures[figure], "formula": FORMULAS[figure], "terms": terms(figure)}
             for figure in (numerator, denominator)}
    if metric == "lcr":
        parts["net_outflows"]["terms"] = terms("net_outflows")
        parts["capped_inflows"] = {"value": figures["capped_inflows"], "formula": "min(total_inflows, 0.75 x total_outflows)",
                                   "total_inflows": figures["total_inflows"], "total_outflows": figures["total_outflows"]}
        parts["total_outflows"] = {"value": figures["total_outflows"], "terms": terms("total_outflows")}
        parts["total_inflows"] = {"value": figures["total_inflows"], "terms": terms("total_inflows")}
    return {
        "metric": metric,
        "value": figures[metric],
        "formula": f"{metric} = {numerator} / {denominator}",
        "numerator": {"name": numerator, "value": figures[numerator]},
        "denominator": {"name": denominator, "value": figures[denominator]},
        "figures": parts,
        "components": [explain_component(warehouse, date, entity, c, basis, top) for c in components],
    }


def _figures(warehouse, date: str, entity: str, basis: str) -> dict:
    rows = warehouse.query("SELECT * FROM liquidity_metrics WHERE business_date = CAST(? AS DATE) AND entity_id = ? "
                           "AND basis = ?", [date, entity, basis])
    if not rows:
        raise ExplainError(f"no figures for {entity} on {date}: run `regcalc eod --date {date}` first")
    return rows[0]


def explain_position(warehouse, stages, engine, date: str, entity: str, position: str) -> dict:
    """A position: where it was delivered, how it was classified (the factor-table row behind each
    field, the conditions that matched, the liquidity-rules.md row), what it contributes, and every
    adjustment that changed it."""
    from regcalc_core.citations import cite, load_citations

    row = _position_row(stages, engine, date, entity, position)
    key = f"{row['source_system']}/{row['position_id']}"
    tables = load_factor_tables()
    citations = load_citations()
    fields = []
    hqla_row = _first_match(tables.tables["hqla_level"], row)
    for field, rule_column in {"hqla_level": None, **RULE_COLUMNS}.items():
        rule_id = hqla_row.id if field == "hqla_level" and hqla_row else row.get(rule_column) if rule_column else None
        parts = [] if rule_id is None else rule_id.split("+")
        fields.append({
            "field": field,
            "value": row.get(field),
            "base_value": row.get(f"base_{field}", row.get(field)),
            "factor_rule": rule_id,
            "why": [_conditions(_row_by_id(tables, part), row) for part in parts],
            "spec": [{"document": c.document, "section": c.section, "row": c.text, **({"part": c.part} if c.part else {})}
                     for c in cite(rule_id, citations)],
        })
    edges = _edges(warehouse, date, entity, "AND input_stage = 'adjusted_positions' AND input_key = ?", [key])
    trail = warehouse.query(
        "SELECT rule_id, version, step, field, value_before, value_after, clamped FROM adjustment_trail "
        "WHERE business_date = CAST(? AS DATE) AND entity_id = ? AND stage = 'deal_enrichment' AND row_key = ? ORDER BY step",
        [date, entity, key])
    return {
        "position": key,
        "source_file": row["source_file"],
        "source_row": row["source_row"],
        "product": row["product"],
        "amount": row["amount"],
        "classification": {k: row.get(k) for k in ("counterparty_type", "counterparty_class", "maturity_date",
                                                   "days_to_maturity", "maturity_30d", "nsfr_bucket", "encumbered",
                                                   "security_hqla_level", "security_maturity_date", "performing")},
        "factors": fields,
        "factor_regime": row.get("factor_regime"),
        "contributions": [{"component": e["output_key"], "base": e["base_contribution"], "adjusted": e["contribution"],
                           "factor_rule": e["factor_rule"]} for e in sorted(edges, key=lambda e: e["output_key"])],
        "adjustments": [{"rule": f"{t['rule_id']}@v{t['version']}", "step": t["step"], "field": t["field"],
                         "before": t["value_before"], "after": t["value_after"], "clamped": t["clamped"]} for t in trail],
    }


def _position_row(stages, engine, date: str, entity: str, position: str) -> dict:
    """The stored adjusted position (``P`` or ``SYSTEM/P``), classified again by the pipeline's
    own ``classify`` so that the derived columns the factor tables test are visible."""
    from regcalc_assets.enrichment.logic import classify
    from regcalc_core.dataframes import functions_for

    path = stages.read_dir("adjusted_positions", date, entity)
    if path is None:
        raise ExplainError(f"no stored positions for {entity} on {date}: run `regcalc eod --date {date}` first")
    from regcalc_resources.storage import read_stage

    df = read_stage(engine, stages, "adjusted_positions", [(date, entity)])  # where a remote engine sees it too
    system, _, pid = position.rpartition("/")
    F, _ = functions_for(df)
    cond = F.col("position_id") == F.lit(pid)
    if system:
        cond = cond & (F.col("source_system") == F.lit(system))
    derived = ["maturity_30d", "security_maturity_30d", "maturity_1y", "security_maturity_1y", "collateral_level",
               "stable", "encumbered", "encumbrance_days"]
    matched = df.where(cond)
    classified = classify(matched.drop("days_to_maturity", "nsfr_bucket", "counterparty_class", "amount"))
    extra = classified.select("source_system", "position_id", *derived)
    rows = [r.asDict() for r in matched.join(extra, on=["source_system", "position_id"], how="left").collect()]
    if not rows:
        raise ExplainError(f"no position {position} for {entity} on {date}")
    if len(rows) > 1:
        raise ExplainError(f"position id {pid} is delivered by several source systems "
                           f"({', '.join(r['source_system'] for r in rows)}): name it as SYSTEM/{pid}")
    return rows[0]


def _row_by_id(tables, rule_id: str):
    for rows in tables.tables.values():
        for row in rows:
            if row.id == rule_id:
                return row
    raise ExplainError(f"factor row {rule_id} is not in {tables.label}")


def _first_match(rows, position: dict):
    return next((row for row in rows if all(c["holds"] for c in _conditions(row, position)["conditions"])), None)


def _conditions(row, position: dict) -> dict:
    """The factor row's conditions, each with the position's value and whether it holds
    (``regcalc_core.conditions``: the semantics the enrichment stage compiles to SQL)."""
    checks = []
    for column, expected in row.when.items():
        actual = position.get(column)
        ok = all(holds(c, actual) for c in from_when({column: expected}))
        checks.append({"column": column, "expected": expected, "actual": _plain(actual), "holds": ok})
    return {"rule": row.id, "value": row.value, "conditions": checks}


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def render(result: dict) -> str:
    """Plain-text drill-down for people; ``--format json`` gives the same content for tools."""
    lines = [f"{result['entity_id']} on {result['business_date']} ({result['basis']} figures, {result.get('reporting_currency', '')})"]
    for m in result.get("metrics", []):
        lines.append(f"\n{m['metric'].upper()} = {m['numerator']['name']} / {m['denominator']['name']} = "
                     f"{_num(m['numerator']['value'])} / {_num(m['denominator']['value'])} = {_ratio(m['value'])}")
        for name, part in m["figures"].items():
            lines.append(f"  {name} = {_num(part['value'])}" + (f"   [{part['formula']}]" if part.get("formula") else ""))
            for t in part.get("terms", []):
                lines.append(f"      {t['input']:<16} {_num(t['value']):>20}   ({t['kind']})")
        for c in m["components"]:
            lines.extend(_component_lines(c))
    if "component" in result:
        lines.extend(_component_lines(result["component"]))
    if "position" in result:
        lines.extend(_position_lines(result["position"]))
    return "\n".join(lines)


def _component_lines(c: dict) -> list[str]:
    lines = [f"  component {c['component']}: {_num(c['amount'])} from {c['position_count']} position(s)"
             f" (traced sum {_num(c['traced_sum'])})"]
    lines += [f"      rule {r['rule']}: {_num(r['change'])}" for r in c["rules"]]
    lines += [f"      {p['position']:<24} {_num(p['contribution']):>20}  {p['factor_rule'] or '':<28} "
              f"{p['source_file']}:{p['source_row']}" for p in c["largest_positions"]]
    return lines


def _position_lines(p: dict) -> list[str]:
    lines = [f"\nposition {p['position']}: {p['product']}, amount {_num(p['amount'])}",
             f"  delivered in {p['source_file']}, row {p['source_row']}",
             "  classification: " + ", ".join(f"{k}={_plain(v)}" for k, v in p["classification"].items() if v is not None),
             f"  factors ({p['factor_regime']}):"]
    for f in p["factors"]:
        if f["factor_rule"] is None:
            lines.append(f"    {f['field']}: none (no row of its table matches)")
            continue
        lines.append(f"    {f['field']} = {f['value']} (base {f['base_value']}) by {f['factor_rule']}")
        for why in f["why"]:
            lines.append("      because " + ", ".join(f"{c['column']}={c['actual']} ~ {c['expected']}" for c in why["conditions"]))
        for s in f["spec"]:
            lines.append(f"      {s['document']} / {s['section']}: {s['row']}" + (f"  [{s['part']}]" if s.get("part") else ""))
    lines.append("  contributions:")
    lines += [f"    {c['component']:<16} base {_num(c['base'])}  adjusted {_num(c['adjusted'])}  ({c['factor_rule']})"
              for c in p["contributions"]]
    lines.append("  adjustments:" if p["adjustments"] else "  adjustments: none")
    lines += [f"    {a['rule']} step {a['step']}: {a['field']} {a['before']} -> {a['after']}" + (" (clamped)" if a["clamped"] else "")
              for a in p["adjustments"]]
    return lines


def _num(v) -> str:
    return "n/a" if v is None else f"{v:,.2f}"


def _ratio(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def explain(warehouse, stages, engine, date: str, entity: str, metric: str | None = None, component: str | None = None,
            position: str | None = None, basis: str = "adjusted", top: int = 5) -> dict:
    """The drill-down the command prints: a ratio (default both), a component, or a position."""
    figures = _figures(warehouse, date, entity, basis)
    result: dict = {"business_date": date, "entity_id": entity, "basis": basis,
                    "reporting_currency": figures["reporting_currency"]}
    if position:
        result["position"] = explain_position(warehouse, stages, engine, date, entity, position)
    elif component:
        result["component"] = explain_component(warehouse, date, entity, component.upper(), basis, top)
    else:
        result["metrics"] = [explain_metric(warehouse, date, entity, m, basis, top) for m in ([metric] if metric else RATIOS)]
    return result


def to_json(result: dict) -> str:
    return json.dumps(result, indent=2, default=_plain)
