"""`regcalc rules preview`: what a rule would do before it is approved, from the stored stage
results and without writing anything.

For each business date, the deal, aggregation and final stages are recomputed in memory from the
stored ``enriched_positions`` and ``entity_profiles`` twice: with the rules approved now, and with
the candidate rule(s) added (a new version of an approved rule replaces it). The difference is
the candidate's effect on each entity's LCR and NSFR.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from regcalc_assets import sequence
from regcalc_core.dataframes import functions_for
from regcalc_core.rule_files import load_rule_file, naming_file
from regcalc_core.rules import STAGES, Rule, parse_rule
from regcalc_resources.storage import read_stage
from regcalc_core.errors import RegcalcInputError


class PreviewError(RegcalcInputError, ValueError):
    """Nothing to preview: an unknown or retired rule, or no stored results for the dates."""


def candidate_rules(source: str, store) -> list[Rule]:
    """The rules of a file (validated, not stored), or the latest version of a stored rule."""
    if Path(source).is_file():
        drop = ("version", "approval", "submitted_by")
        raw_rules = load_rule_file(source)
        with naming_file(source):
            return [parse_rule({k: v for k, v in raw.items() if k not in drop}) for raw in raw_rules]
    versions = store.history(source)
    if not versions:
        raise PreviewError(f"no rule {source} in the store and no such file")
    latest = versions[-1]
    if latest.is_retirement:
        raise PreviewError(f"rule {source} is {latest.status} (version {latest.version}); nothing to preview")
    return [parse_rule({**latest.body, "version": latest.version, "submitted_by": latest.submitted_by})]


def stored_dates(stages) -> list[str]:
    """Business dates with stored enriched positions."""
    return sorted({date for date, _ in stages.partitions("enriched_positions")})


def stored_entities(stages, business_date: str) -> list[str]:
    return sorted(entity for date, entity in stages.partitions("enriched_positions") if date == business_date)


def _match_column(rule_id: str) -> str:
    return f"_matches_{rule_id}"


def figures(enriched, profiles, rules: list[Rule], candidates: list[Rule]):
    """(metrics of the adjusted basis, {stage: frame carrying the candidates' match flags}): the
    EOD's own sequence (``regcalc_assets.sequence``) over the stored inputs."""
    flags = {stage: {r.rule_id: _match_column(r.rule_id) for r in candidates if r.stage == stage} for stage in STAGES}
    frames = sequence.run(enriched, profiles, rules, flags)
    F, _ = functions_for(enriched)
    metrics = frames["final_calc"]
    return metrics.where(F.col("basis") == F.lit("adjusted")), frames


def preview(stages, engine, store, source: str, dates: list[str] | None = None) -> list[dict]:
    """One row per (business_date, entity_id, rule) the candidate matches at least once: rows
    matched, and LCR / NSFR now versus with the candidate."""
    candidates = candidate_rules(source, store)
    approved = store.approved_rules()
    ids = {r.rule_id for r in candidates}
    now_rules = approved
    with_rules = [r for r in approved if r.rule_id not in ids] + candidates
    available = stored_dates(stages)
    if dates:
        missing = [d for d in dates if d not in available]
        if missing:
            raise PreviewError(f"no stored results for {', '.join(missing)}: run `regcalc eod` for it first")
    else:
        dates = [d for d in available if any(r.applies_on(dt.date.fromisoformat(d)) for r in candidates)]
    out = []
    for date in dates:
        entities = stored_entities(stages, date)
        pairs = [(date, e) for e in entities]
        enriched, profiles = (read_stage(engine, stages, asset, pairs) for asset in ("enriched_positions", "entity_profiles"))
        now, _ = figures(enriched, profiles, now_rules, [])
        after, flagged = figures(enriched, profiles, with_rules, candidates)
        matched = _match_counts(flagged, candidates)
        now_by = {r["entity_id"]: r for r in (x.asDict() for x in now.collect())}
        for row in (x.asDict() for x in after.collect()):
            before = now_by.get(row["entity_id"], {})
            for rule in candidates:
                n = matched.get((rule.rule_id, row["entity_id"]), 0)
                if n:
                    out.append({
                        "business_date": date, "entity_id": row["entity_id"], "rule_id": rule.rule_id,
                        "stage": rule.stage, "rows_matched": n,
                        "lcr_now": before.get("lcr"), "lcr_with_rule": row["lcr"],
                        "nsfr_now": before.get("nsfr"), "nsfr_with_rule": row["nsfr"],
                    })
    return sorted(out, key=lambda r: (r["business_date"], r["entity_id"], r["rule_id"]))


def _match_counts(flagged: dict, candidates: list[Rule]) -> dict[tuple[str, str], int]:
    counts = {}
    for rule in candidates:
        frame = flagged[rule.stage]
        F, _ = functions_for(frame)
        column = _match_column(rule.rule_id)
        rows = frame.groupBy("entity_id").agg(F.sum(F.col(column).cast("int")).alias("n")).collect()
        counts.update({(rule.rule_id, r["entity_id"]): int(r["n"] or 0) for r in rows})
    return counts


def render(rows: list[dict]) -> str:
    if not rows:
        return "the rule matches no row on the dates with stored results"
    head = ["business_date", "entity_id", "rule_id", "stage", "rows_matched", "lcr_now", "lcr_with_rule",
            "nsfr_now", "nsfr_with_rule"]

    def cell(v):
        return "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))

    cells = [[cell(r[c]) for c in head] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(c, widths)) for c in cells]
    return "\n".join(lines)
