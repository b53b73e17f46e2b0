"""Column lineage of each stage, from the versioned declarations in ``columns.yaml`` and the
actual output and upstream schemas (for the Dagster UI and OpenLineage)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

PASS_THROUGH = "*"


@lru_cache(maxsize=1)
def declarations() -> dict[str, dict[str, list[str]]]:
    doc = yaml.safe_load(resources.files("regcalc_assets.lineage").joinpath("columns.yaml").read_text())
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
