"""Spec citations of the factor-table rows: which rule of liquidity-rules.md gave a factor.

Each regime's factor file ``factors/<name>.yaml`` has a companion ``factors/<name>.citations.yaml``
(versioned reference data, shipped as package data) that maps every row id to the ``## `` section
of the spec and the verbatim text (table row or sentence) that defines it; ``part`` says which
alternative applies where one spec row holds several (``"6m-1y: 0.50"``).

Enrichment records the row ids that gave each calculation field in the ``*_rule`` columns; an
RSF rule may be combined, ``"RSF.SEC.L1+RSF.ENCUMBERED.6M_1Y"`` (base row + encumbrance row).
:func:`cite` turns such a value into its citations, in order, for ``regcalc explain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Mapping

import yaml

from regcalc_core.factors import DEFAULT_REGIME

RULE_SEPARATOR = "+"


@dataclass(frozen=True)
class Citation:
    rule_id: str
    document: str
    section: str
    text: str
    part: str | None = None


@lru_cache(maxsize=8)
def load_citations(name: str = DEFAULT_REGIME) -> dict[str, Citation]:
    """The citations shipped in ``regcalc_core/factors/<name>.citations.yaml``, by row id.

    Cached: treat the returned dict as read-only.
    """
    text = resources.files("regcalc_core").joinpath("factors", f"{name}.citations.yaml").read_text()
    doc = yaml.safe_load(text)
    document = doc["document"]
    return {
        rule_id: Citation(rule_id, document, entry["section"], entry["text"], entry.get("part"))
        for rule_id, entry in doc["citations"].items()
    }


def cite(rule: str | None, citations: Mapping[str, Citation]) -> list[Citation]:
    """The citations of a ``*_rule`` value: [] for null, one per ``+``-joined row id, in order.

    Raises KeyError naming the id when a row id has no citation.
    """
    if rule is None or (isinstance(rule, float) and rule != rule):  # null (None, or NaN from pandas)
        return []
    result = []
    for rule_id in str(rule).split(RULE_SEPARATOR):
        rule_id = rule_id.strip()
        try:
            result.append(citations[rule_id])
        except KeyError:
            raise KeyError(f"no spec citation for factor row id {rule_id!r}") from None
    return result
