"""The calculation sequence after enrichment, in one place: deal rules -> component breakdown ->
components with the aggregation rules -> final metrics with the final rules.

Each step is named after its stage (the rule stages of adjustment-rules.md). The stage assets
each run one step (``adjusted_positions``: ``deal_enrichment``; ``component_breakdown``:
``breakdown``; ``liquidity_components``: ``aggregation``; ``liquidity_metrics``: ``final_calc``), and
``regcalc rules preview`` runs the whole sequence with ``run``: the same functions, so a preview
cannot drift from what the EOD computes.
"""

from __future__ import annotations

from regcalc_assets.adjustments.logic import adjust_positions
from regcalc_assets.aggregation.logic import BASES, adjust_components, aggregate_components, component_breakdown
from regcalc_assets.metrics.logic import compute_final_metrics
from regcalc_core.rules import STAGES, Rule


def deal_enrichment(enriched, rules: list[Rule], extra: dict | None = None, match_columns: dict | None = None):
    """Enriched positions after the deal_enrichment rules (``base_`` values kept)."""
    return adjust_positions(enriched, rules, extra, match_columns)


def breakdown(adjusted):
    """Contributions of the base and adjusted calculation fields, summed per finer category."""
    return component_breakdown(adjusted, BASES)


def aggregation(breakdown_, profiles, rules: list[Rule], match_columns: dict | None = None):
    """The eight components of every valid entity, aggregation rules applied to the adjusted basis."""
    return adjust_components(aggregate_components(breakdown_, profiles), rules, match_columns)


def final_calc(components, rules: list[Rule], match_columns: dict | None = None):
    """HQLA caps, final rules (adjusted basis), inflow cap, LCR and NSFR."""
    return compute_final_metrics(components, rules, match_columns)


def run(enriched, profiles, rules: list[Rule], match_columns: dict[str, dict[str, str]] | None = None) -> dict:
    """Every step in order from stored enriched positions and entity profiles, with ``rules`` (of
    any stage). ``match_columns`` (stage -> rule_id -> column) adds whether each of those rules
    matched a row, for a preview. Returns {stage: its frame}: ``deal_enrichment`` (positions),
    ``aggregation`` (components) and ``final_calc`` (metrics)."""
    by_stage = {stage: [r for r in rules if r.stage == stage] for stage in STAGES}
    flags = match_columns or {}
    adjusted = deal_enrichment(enriched, by_stage["deal_enrichment"], match_columns=flags.get("deal_enrichment"))
    components = aggregation(breakdown(adjusted), profiles, by_stage["aggregation"], flags.get("aggregation"))
    metrics = final_calc(components, by_stage["final_calc"], flags.get("final_calc"))
    return {"deal_enrichment": adjusted, "aggregation": components, "final_calc": metrics}
