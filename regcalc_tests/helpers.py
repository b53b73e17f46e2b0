"""Assertion helpers shared by the test modules."""

from __future__ import annotations

import pytest


def mismatches(actual: dict, expected: dict, rel: float = 1e-9, abs: float = 1e-9) -> list[str]:
    """Fields of ``actual`` that differ from ``expected`` (None must be None, strings equal, numbers approx)."""
    bad = []
    for field, want in expected.items():
        got = actual.get(field, "<missing column>")
        if want is None:
            ok = got is None
        elif isinstance(want, str):
            ok = got == want
        else:
            ok = got is not None and not isinstance(got, str) and got == pytest.approx(want, rel=rel, abs=abs)
        if not ok:
            bad.append(f"{field}: expected {want!r}, got {got!r}")
    return bad
