"""The versioned disclosure mapping (seeds of the dbt project), both ways: every factor-table row
is mapped to a template row or out of the template's scope with a reason; every template row is
fed by lines, a reported figure, its children or a residual, or is zero with a note; the row
numbering is the regulation's."""

from __future__ import annotations

import csv

import pytest

from regcalc_assets.reporting.logic import PROJECT_DIR, TEMPLATES
from regcalc_core.factors import load_factor_tables

SEEDS = PROJECT_DIR / "seeds"
METRICS = {"hqla", "total_outflows", "total_inflows", "net_outflows", "lcr", "asf", "rsf", "nsfr"}
SOURCES = {"lines", "zero", "none", "quarter_end", "observations"}


def _read(name: str) -> list[dict]:
    with open(SEEDS / name, newline="") as fh:
        return list(csv.DictReader(fh))


ROWS = _read("disclosure_rows.csv")
MAP = _read("disclosure_line_map.csv")


def factor_rows() -> list[str]:
    tables = load_factor_tables()
    return [row.id for table in tables.tables.values() for row in table]


def test_every_factor_row_is_mapped_or_out_of_scope_with_a_reason():
    ids = factor_rows()
    assert len(ids) > 80
    rows = {(r["template"], r["row"]) for r in ROWS}
    for template in TEMPLATES:
        entries = [m for m in MAP if m["template"] == template]
        covered = {m["factor_row"] for m in entries if m["product"] == "*" and m["counterparty_class"] == "*"}
        missing = [i for i in ids if i not in covered]
        assert not missing, f"{template}: factor rows with no catch-all entry: {missing}"
        assert not {m["factor_row"] for m in entries} - set(ids), "entries for factor rows that do not exist"
        for m in entries:
            if m["row"]:
                assert (template, m["row"]) in rows, f"{template} has no row {m['row']} ({m['factor_row']})"
            else:
                assert len(m["note"]) > 20, f"{template} {m['factor_row']}: out of scope without a reason"


def test_every_template_row_is_fed_or_explained():
    for template in TEMPLATES:
        rows = [r for r in ROWS if r["template"] == template]
        mapped = {m["row"] for m in MAP if m["template"] == template and m["row"]}
        parents = {r["parent"] for r in rows if r["parent"]}
        for r in rows:
            for source in (r["unweighted"], r["weighted"]):
                kind, _, arg = source.partition(":")
                assert source in SOURCES or kind in ("metric", "row", "constant"), (template, r["row"], source)
                if kind == "metric":
                    assert arg in METRICS
                if kind == "row":
                    assert arg in {x["row"] for x in rows}
            if "lines" in (r["unweighted"], r["weighted"]):
                assert r["row"] in mapped | parents or r["residual"], f"{template} row {r['row']} is fed by nothing"
            if "zero" in (r["unweighted"], r["weighted"]) or r["residual"]:
                assert r["note"], f"{template} row {r['row']} is zero or a residual without a note"
            assert r["citation"]


@pytest.mark.parametrize("template, numbered, extra", [
    ("eu_liq1", 23, ["EU-1a", "EU-1b", "EU-19a", "EU-19b", "EU-20a", "EU-20b", "EU-20c"]),
    ("eu_liq2", 34, ["EU-15a"]),
    ("us_lcr", 35, []),
])
def test_rows_are_numbered_as_in_the_regulation(template, numbered, extra):
    rows = [r["row"] for r in sorted((r for r in ROWS if r["template"] == template), key=lambda r: int(r["row_order"]))]
    assert sorted(rows, key=str) == sorted([str(i) for i in range(1, numbered + 1)] + extra, key=str)
    plain = [int(r) for r in rows if r.isdigit()]
    assert plain == sorted(plain), "in the template's order"
    assert len({r["row_order"] for r in ROWS if r["template"] == template}) == len(rows)


def test_each_residual_side_lands_on_one_row_per_template():
    for template in TEMPLATES:
        sides = [r["residual"] for r in ROWS if r["template"] == template and r["residual"]]
        assert len(sides) == len(set(sides))
        assert set(sides) == ({"outflow", "inflow"} if template != "eu_liq2" else {"asf", "rsf"})
