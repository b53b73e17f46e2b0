"""Lineage checks, run on every materialization of the lineage asset."""

from __future__ import annotations

import dagster as dg

from regcalc_assets.lineage.logic import Completeness, KeyAudit

KEYS_PRESERVED = "keys_survive_every_stage"
COMPLETE = "figures_trace_to_inputs_to_the_cent"

CHECK_SPECS = [
    dg.AssetCheckSpec(KEYS_PRESERVED, asset="lineage", blocking=True,
                      description="Validation, enrichment and deal adjustments neither drop, duplicate nor invent a "
                                  "position key (source file and row; business date, source system, position id)"),
    dg.AssetCheckSpec(COMPLETE, asset="lineage", blocking=True,
                      description="Every component and total equals the sum of its traced positions' and rules' "
                                  "contributions to the cent, in both bases; ratios equal numerator / denominator"),
]


def keys_result(audits: list[KeyAudit]) -> dg.AssetCheckResult:
    failed = [a for a in audits if not a.passed]
    return dg.AssetCheckResult(
        check_name=KEYS_PRESERVED, passed=not failed,
        description="; ".join(a.message for a in failed) or None,
        metadata={a.stage: dg.MetadataValue.text(a.message) for a in audits},
    )


def completeness_result(result: Completeness) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=COMPLETE, passed=result.passed,
        description="; ".join(result.failures[:5]) or None,
        metadata={"figures_checked": result.checked, "failures": dg.MetadataValue.json(result.failures[:50])},
    )
