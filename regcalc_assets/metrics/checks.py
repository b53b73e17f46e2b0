"""Output contract of the final metrics, as a pandera model checked on every materialization.

(No ``from __future__ import annotations`` here: pandera reads the model's annotations, which are
names local to ``metrics_model``.)"""

import math
from functools import lru_cache

METRICS_CONTRACT = "figures_satisfy_contract"


FIGURES = ("hqla_l1", "hqla_l2a", "hqla_l2b", "adj15", "adj40", "hqla", "total_outflows", "total_inflows",
           "capped_inflows", "net_outflows", "lcr", "asf", "rsf", "nsfr")


@lru_cache(maxsize=1)
def metrics_model():
    """The pandera model of a metrics row (pandera and pandas load when a check first runs)."""
    import pandas as pd
    import pandera.pandas as pa
    from pandera.typing import Series

    class LiquidityMetrics(pa.DataFrameModel):
        """What liquidity-rules.md guarantees of every result row."""

        class Config:
            coerce = True  # a column of null ratios arrives as object dtype
            unique = ["entity_id", "basis"]

        entity_id: Series[str]
        basis: Series[str] = pa.Field(isin=["base", "adjusted"])
        reporting_currency: Series[str]
        hqla_l1: Series[float] = pa.Field(ge=0)
        hqla_l2a: Series[float] = pa.Field(ge=0)
        hqla_l2b: Series[float] = pa.Field(ge=0)
        adj15: Series[float] = pa.Field(ge=0)
        adj40: Series[float] = pa.Field(ge=0)
        hqla: Series[float] = pa.Field(ge=0)
        total_outflows: Series[float] = pa.Field(ge=0)
        total_inflows: Series[float] = pa.Field(ge=0)
        net_outflows: Series[float] = pa.Field(ge=0)
        lcr: Series[float] = pa.Field(nullable=True, ge=0)
        asf: Series[float] = pa.Field(ge=0)
        rsf: Series[float] = pa.Field(ge=0)
        nsfr: Series[float] = pa.Field(nullable=True, ge=0)

        @pa.dataframe_check
        def inflow_cap(cls, df: pd.DataFrame) -> Series[bool]:
            """Capped inflows never exceed 75% of outflows nor the inflows themselves."""
            tolerance = 1e-6 * (1 + df["total_outflows"].abs())
            return (df["capped_inflows"] <= 0.75 * df["total_outflows"] + tolerance) & (
                df["capped_inflows"] <= df["total_inflows"] + tolerance
            )

        @pa.dataframe_check
        def level2_within_40_percent(cls, df: pd.DataFrame) -> Series[bool]:
            """After the caps, Level 2 assets are at most 40% of the HQLA stock. Checked on the base
            figures: final-stage rules change ``hqla`` after the caps (liquidity-rules.md, 'Adjusted
            figures'), so an approved rule may lawfully move the adjusted share past 40%."""
            level2 = df["hqla_l2a"] + df["hqla_l2b"] - df["adj15"] - df["adj40"]
            return (df["basis"] != "base") | (level2 <= 0.4 * df["hqla"] + 1e-6 * (1 + df["hqla"].abs()))

    return LiquidityMetrics


def contract_failures(rows: list[dict]) -> list[str]:
    """Every violation of the metrics contract, as readable lines (empty when the rows comply)."""
    if not rows:
        return []
    infinite = [f"{c}: not finite (value {r[c]}) for entity {r['entity_id']}, {r['basis']}"
                for r in rows for c in FIGURES if isinstance(r.get(c), float) and not math.isfinite(r[c])]
    import pandas as pd
    import pandera.pandas as pa

    frame = pd.DataFrame(rows)
    try:
        metrics_model().validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        out = []
        for r in cases.to_dict("records"):
            where = frame.loc[r["index"], "entity_id"] if r.get("index") is not None and r["index"] in frame.index else None
            out.append(f"{r['column'] or 'row'}: {r['check']} (value {r['failure_case']})" + (f" for entity {where}" if where else ""))
        return infinite + out
    return infinite


def _targets(instance, run_id: str, partitions: list[str]) -> dict:
    """{partition: the materialization of liquidity_metrics this run just recorded}, which each
    evaluation targets (so the UI and the planner know which figures it judged)."""
    import dagster as dg
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData)

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("liquidity_metrics"), asset_partitions=partitions),
        limit=len(partitions)).records
    return {r.partition_key: AssetCheckEvaluationTargetMaterializationData(storage_id=r.storage_id, run_id=r.run_id,
                                                                          timestamp=r.timestamp)
            for r in records if r.run_id == run_id}


def impact_evaluations(instance, run_id: str, business_date: str, entities: list[str], rows: list[dict], store,
                       rules_of):
    """The circuit breaker: one evaluation of ``adjustment_impact_within_limits`` per partition of
    the run. An entity whose base-to-adjusted LCR or NSFR change exceeds its limit
    (``regcalc_core.circuit_breaker``) fails it, naming the rules that changed its figures
    (``rules_of(entities)``: {entity: rules}, asked only for the entities over a limit) and the
    impact, unless an acknowledgment in the rule store covers that very impact."""
    import dagster as dg

    from regcalc_assets.circuit_breaker import IMPACT_CHECK, IMPACT_METADATA, METRICS
    from regcalc_core import circuit_breaker as cb

    thresholds = cb.load_thresholds()
    impacts = cb.impacts(rows)
    over = [e for e in entities if e in impacts and impacts[e].crossed(thresholds.for_entity(e))]
    rules = rules_of(over) if over else {}
    acknowledgments = store.acknowledgments(business_date) if over else []
    keys = [f"{business_date}|{e}" for e in entities]
    targets = _targets(instance, run_id, keys)
    for entity, key in zip(entities, keys):
        impact = impacts.get(entity)
        if impact is None:  # no figures (nothing to judge): the metrics contract speaks for it
            yield dg.AssetCheckEvaluation(asset_key=dg.AssetKey(METRICS), check_name=IMPACT_CHECK, passed=True,
                                          partition=key, blocking=True, description="no figures for this entity",
                                          target_materialization_data=targets.get(key))
            continue
        record = cb.impact_record(impact, thresholds.for_entity(entity), rules.get(entity, []), thresholds)
        ack = cb.covering(acknowledgments, impact, record["rules"]) if record["crossed"] else None
        passed = not record["crossed"] or ack is not None
        summary = cb.describe(record)
        if not record["crossed"]:  # the rules are looked up only for an entity over a limit
            description = f"within its limits: {cb.describe(record, with_rules=False)}"
        elif ack is not None:
            description = f"over its limit, acknowledged by {ack.actor} at {ack.acted_at:%Y-%m-%d %H:%M:%S} UTC: {summary}"
        else:
            description = (f"over its limit: {summary}. Not published until an approver who made none of these rules "
                           f"acknowledges it: `regcalc rules acknowledge --date {business_date} --entity {entity}`")
        metadata = {
            IMPACT_METADATA: dg.MetadataValue.json(record),
            "rules": dg.MetadataValue.json([r["rule"] for r in record["rules"]]) if record["crossed"]
            else dg.MetadataValue.text("listed when a limit is crossed"),
            "thresholds": dg.MetadataValue.text(thresholds.label),
            "over_limit": dg.MetadataValue.text(", ".join(r.upper() for r in record["crossed"]) or "none"),
        }
        for ratio in ("lcr", "nsfr"):
            for name in (f"{ratio}_base", ratio, f"{ratio}_change_points"):
                if record[name] is not None:
                    metadata[name] = dg.MetadataValue.float(float(record[name]))
            if record["limits"][f"{ratio}_points"] is not None:
                metadata[f"{ratio}_limit_points"] = dg.MetadataValue.float(float(record["limits"][f"{ratio}_points"]))
        if ack is not None:
            metadata["acknowledged_by"] = dg.MetadataValue.text(f"{ack.actor} at {ack.acted_at.isoformat()} UTC")
        yield dg.AssetCheckEvaluation(asset_key=dg.AssetKey(METRICS), check_name=IMPACT_CHECK, passed=passed,
                                      partition=key, blocking=True, severity=dg.AssetCheckSeverity.ERROR,
                                      metadata=metadata, description=description,
                                      target_materialization_data=targets.get(key))
