"""The lineage wrapper around stage transformations: the lineage columns go in and come out.

Kept apart from ``lineage/logic.py`` so that every stage's logic module can use it without
importing the lineage builders (which build on aggregation).
"""

from __future__ import annotations

import functools

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
