"""Spec citations of the factor tables: complete, verbatim, and consistent with the factor values.

The citations file (``factors/bcbs_238_295_v1.citations.yaml``) is checked against both the factor
file (every row id cited, nothing else) and the spec itself (``shared/spec/liquidity-rules.md``):
each cited text must occur in the named ``## `` section, and a cited table row must state the
factor value of the row it cites. The spot checks are written by hand from reading the spec.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from regcalc_core.citations import Citation, cite, load_citations
from regcalc_core.factors import load_factor_tables

REPO = Path(__file__).resolve().parents[2]
SPEC = Path(os.environ.get("REGCALC_SHARED", REPO.parent / "shared")) / "spec" / "liquidity-rules.md"

CITATIONS = load_citations()
TABLES = load_factor_tables()
FACTOR_ROWS = {row.id: (table, row) for table, rows in TABLES.tables.items() for row in rows}
RSF = "NSFR: required stable funding (assets and off balance sheet)"
# Sections whose markdown tables are factor tables (every row of them must be cited).
FACTOR_SECTIONS = [
    "LCR: stock of HQLA",
    "LCR: outflow rates",
    "LCR: inflow rates",
    "NSFR: available stable funding (liabilities and capital)",
    RSF,
]


def norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def sections() -> dict[str, str]:
    """``## `` heading text -> the section body (up to the next ``## ``), as in the spec file."""
    if not SPEC.exists():
        pytest.fail(f"spec not found at {SPEC} (set REGCALC_SHARED)")
    parts = re.split(r"^## (.+)$", SPEC.read_text(), flags=re.MULTILINE)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2])}


def is_table_row(text: str) -> bool:
    return text.startswith("|") and text.endswith("|")


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def table_rows(body: str) -> list[str]:
    """The data rows of the markdown tables in a section (no header, no ``|---|`` separator)."""
    lines = [line.strip() for line in body.splitlines() if is_table_row(line.strip())]
    rows: list[str] = []
    for line in lines:
        if re.fullmatch(r"\|(\s*-+\s*\|)+", line):
            rows.pop()  # the line before the separator is the header
        else:
            rows.append(line)
    return rows


def alternatives(row: str) -> list[tuple[str, str]]:
    """A split row ``| P | prefix: a / b / c | x / y / z |`` as [(a, x), (b, y), (c, z)]."""
    *_, condition, values = cells(row)
    alts = condition.split(": ", 1)[1].split(" / ")
    vals = values.split(" / ")
    assert len(alts) == len(vals), row
    return list(zip(alts, vals))


def fmt(value) -> str:
    return f"{float(value):.2f}"


# (a) ------------------------------------------------------------------------------------------


def test_every_factor_row_is_cited_and_every_citation_has_a_factor_row():
    assert sorted(set(FACTOR_ROWS) - set(CITATIONS)) == [], "factor rows without a citation"
    assert sorted(set(CITATIONS) - set(FACTOR_ROWS)) == [], "citations without a factor row"
    assert len(FACTOR_ROWS) == sum(len(rows) for rows in TABLES.tables.values()), "duplicate row ids"


def test_citations_file_header():
    assert {c.document for c in CITATIONS.values()} == {"liquidity-rules.md"}
    assert TABLES.regime == "BCBS_238_295" and TABLES.version == 1
    for rule_id, c in CITATIONS.items():
        assert c.rule_id == rule_id and c.section and c.text, rule_id


# (b) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule_id", sorted(CITATIONS))
def test_citation_text_is_verbatim_in_its_section(rule_id, sections):
    c = CITATIONS[rule_id]
    assert c.section in sections, f"{rule_id}: no '## {c.section}' heading in {SPEC.name}"
    body = sections[c.section]
    assert norm(c.text) in norm(body), f"{rule_id}: text not found in section {c.section!r}"
    if is_table_row(c.text):
        # The WHOLE table row is quoted, not a fragment of it.
        assert c.text in table_rows(body), f"{rule_id}: not a whole table row of {c.section!r}"


# (c) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule_id", sorted(r for r in CITATIONS if FACTOR_ROWS[r][0] != "hqla_level"))
def test_cited_row_states_the_factor_value(rule_id):
    c = CITATIONS[rule_id]
    _, row = FACTOR_ROWS[rule_id]
    value = fmt(row.value)
    if not is_table_row(c.text):
        # A rule sentence (non-performing, encumbrance): it states the value, and `part` (if any)
        # names one of its alternatives, made of fragments of the sentence.
        assert value in c.text, f"{rule_id}: {value} not in {c.text!r}"
        if c.part is not None:
            condition, stated = c.part.rsplit(": ", 1)
            assert condition in c.text and stated in c.text, (rule_id, c.part)
            assert value in stated, (rule_id, c.part, value)
        return
    last = cells(c.text)[-1]
    if " / " in last:
        assert c.part is not None, f"{rule_id}: a split row needs `part`"
        assert c.part in [f"{a}: {v}" for a, v in alternatives(c.text)], (rule_id, c.part)
        assert c.part.rsplit(": ", 1)[1] == value, (rule_id, c.part, value)
    else:
        assert c.part is None, f"{rule_id}: `part` on a row with one value"
        assert last == value, f"{rule_id}: row says {last}, factor table says {value}"


def test_every_spec_factor_row_and_alternative_is_cited(sections):
    """The converse of (a) on the spec side: no factor-table row of the spec is left uncited."""
    cited = {(c.text, c.part) for c in CITATIONS.values()}
    cited_texts = {text for text, _ in cited}
    missing = []
    for section in FACTOR_SECTIONS:
        for row in table_rows(sections[section]):
            if " / " in cells(row)[-1]:
                missing += [(row, f"{a}: {v}") for a, v in alternatives(row) if (row, f"{a}: {v}") not in cited]
            elif row not in cited_texts:
                missing.append((row, None))
    assert missing == []


# (d) hand-picked spot checks, from reading the spec ------------------------------------------


@pytest.mark.parametrize(
    "rule_id, section, text",
    [
        ("RSF.SEC.L1", RSF, "| SECURITY | level L1 | 0.05 |"),
        (
            "OUT.DEPOSIT.RETAIL_STABLE",
            "LCR: outflow rates",
            "| DEPOSIT | maturity null or within 30 days; RETAIL_SME, stable | 0.05 |",
        ),
        ("ASF.EQUITY", "NSFR: available stable funding (liabilities and capital)", "| EQUITY_CAPITAL | all | 1.00 |"),
        (
            "IN.SECURITY.NON_HQLA_30D",
            "LCR: inflow rates",
            "| SECURITY | unencumbered, security's hqla_level NON_HQLA, security's maturity_date within 30 days | 1.00 |",
        ),
        ("HAIRCUT.L2A", "LCR: stock of HQLA", "| L2A | 0.15 |"),
        (
            "OUT.REPO.SOVEREIGN_PSE_MDB",
            "LCR: outflow rates",
            "| REPO | same, collateral L2B_OTHER or NON_HQLA, counterparty SOVEREIGN, PSE or MDB | 0.25 |",
        ),
    ],
)
def test_spot_checks(rule_id, section, text):
    assert CITATIONS[rule_id] == Citation(rule_id, "liquidity-rules.md", section, text)


def test_spot_check_split_rows_and_sentences():
    cb = "| REVERSE_REPO | CENTRAL_BANK: bucket <6m or maturity null / 6m-1y / >=1y | 0.00 / 0.50 / 1.00 |"
    assert (CITATIONS["RSF.REVERSE_REPO.CENTRAL_BANK.6M_1Y"].text, CITATIONS["RSF.REVERSE_REPO.CENTRAL_BANK.6M_1Y"].part) == (
        cb,
        "6m-1y: 0.50",
    )
    assert CITATIONS["RSF.REVERSE_REPO.OTHER.GE_1Y"].part == "r >= 365: 0.85"
    assert CITATIONS["RSF.NON_PERFORMING"].text.startswith("NON-PERFORMING LOAN, MORTGAGE, REVERSE_REPO")
    assert CITATIONS["HQLA.CASH"].section == "LCR: stock of HQLA"
    assert "183 <= e < 365" in CITATIONS["RSF.ENCUMBERED.6M_1Y"].part
    assert CITATIONS["RSF.ENCUMBERED.GE_1Y"].part == "e >= 365: 1.00"


# (e) cite() ------------------------------------------------------------------------------------


def test_cite_combined_rule_returns_each_part_in_order():
    got = cite("RSF.SEC.L1+RSF.ENCUMBERED.6M_1Y", CITATIONS)
    assert [c.rule_id for c in got] == ["RSF.SEC.L1", "RSF.ENCUMBERED.6M_1Y"]
    assert got == [CITATIONS["RSF.SEC.L1"], CITATIONS["RSF.ENCUMBERED.6M_1Y"]]


def test_cite_single_and_null():
    assert cite("ASF.EQUITY", CITATIONS) == [CITATIONS["ASF.EQUITY"]]
    assert cite(None, CITATIONS) == []


def test_cite_unknown_id_raises_key_error_naming_it():
    with pytest.raises(KeyError, match=re.escape("NO.SUCH.ROW")):
        cite("RSF.SEC.L1+NO.SUCH.ROW", CITATIONS)
    with pytest.raises(KeyError, match=re.escape("OUT.NOPE")):
        cite("OUT.NOPE", CITATIONS)


def test_load_citations_is_cached():
    assert load_citations() is load_citations()
    assert load_citations("bcbs_238_295_v1") is load_citations("bcbs_238_295_v1")
