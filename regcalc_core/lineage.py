"""Lineage contract of the stages: the key columns every stage carries through (checked by the
``traced`` wrapper around each stage transformation), and the column lineage of each stage, from
the versioned declarations in ``lineage_columns.yaml`` (for the Dagster UI and OpenLineage).
"""

from __future__ import annotations

import functools
from functools import lru_cache
from importlib import resources

PASS_THROUGH = "*"

POSITION_KEY = ("business_date", "source_system", "position_id")
SOURCE_KEY = ("source_file", "source_row")
LINEAGE_COLUMNS = POSITION_KEY + SOURCE_KEY


class LineageError(RuntimeError):
    """A stage lost, dropped or duplicated lineage keys; the message names the stage."""


def traced(stage: str, keys: tuple[str, ...] = LINEAGE_COLUMNS, needs_input: bool = True):
    """Decorator for a stage transformation (DataFrame first argument, DataFrame out): the input
    must carry the lineage columns ``keys`` (unless the stage injects them: ``needs_input=False``)
    and so must the output, or a LineageError names the stage and the missing columns. The
    row-level contract (no key dropped or duplicated) is audited on the stored frames by
    ``audit_keys``; the wrapper records the stage name on the function for it."""

    def decorate(transform):
        @functools.wraps(transform)
        def run(df, *args, **kwargs):
            if needs_input:
                _require(df, keys, stage, "input")
            out = transform(df, *args, **kwargs)
            _require(out, keys, stage, "output")
            return out

        run.lineage_stage = stage
        run.lineage_keys = keys
        return run

    return decorate


def _require(df, keys, stage: str, side: str) -> None:
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise LineageError(f"lineage check failed at stage '{stage}': its {side} lacks the lineage column(s) "
                           f"{', '.join(missing)}")



@lru_cache(maxsize=1)
def declarations() -> dict[str, dict[str, list[str]]]:
    import yaml

    doc = yaml.safe_load(resources.files("regcalc_core").joinpath("lineage_columns.yaml").read_text())
    return doc["assets"]


def column_lineage(asset: str, columns: list[str], upstream: dict[str, list[str] | None]) -> dict[str, list[tuple[str, str]]]:
    """Output column -> [(upstream asset, column)]: the declared derivation, else the same-named
    column of every upstream asset that has it (``upstream``: asset -> its columns; None for a
    source whose columns are not stored, which only declarations refer to)."""
    declared = declarations().get(asset, {})
    sources = declared.get(PASS_THROUGH, [])
    out: dict[str, list[tuple[str, str]]] = {}
    for column in columns:
        if column in declared:
            out[column] = [tuple(ref.split(".", 1)) for ref in declared[column]]
        else:
            deps = [(a, column) for a, cols in upstream.items() if cols and column in cols]
            out[column] = deps or [(a, column) for a in sources]
    return out
