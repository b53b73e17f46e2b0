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
