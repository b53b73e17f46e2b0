"""Every kind of bad row the contract lists is quarantined with its rule, on both engines.

A tiny CSV landing zone is written by hand; each position row breaks exactly the rule named in
its position_id (or none), so the expected reason is known without the code under test.
"""

from __future__ import annotations

import pytest

from regcalc_assets.landing import logic as landing
from regcalc_assets.validation import logic as validation
from regcalc_core import delivery

DATE = "2024-06-28"
HEADER = ("position_id,source_system,entity_id,counterparty_id,product,currency,balance,quantity,security_id,"
          "maturity_date,insured,stable_relationship,operational,performing,risk_weight,encumbered_until")
# position_id -> (csv row after position_id, expected first reason or None for accepted)
POSITIONS = {
    "OK_LOAN": ("LOANS,E1,C1,LOAN,USD,100,,,2024-07-10,,,,TRUE,0.5,", None),
    "OK_SEC": ("MARKETS,E1,,SECURITY,USD,,10,S1,,,,,,,", None),
    "OK_REPO_NO_COLL": ("TREASURY,E1,C1,REPO,USD,50,,,,,,,,,", None),
    "BAD_PRODUCT": ("LOANS,E1,C1,SWAPTION,USD,100,,,,,,,,,", "product:unknown_value"),
    "BAD_NEG_BAL": ("LOANS,E1,C1,LOAN,USD,-5,,,,,,,,,", "balance:negative"),
    "BAD_NEG_QTY": ("MARKETS,E1,,SECURITY,USD,,-1,S1,,,,,,,", "quantity:negative"),
    "BAD_RW": ("LOANS,E1,C1,LOAN,USD,100,,,,,,,,12.6,", "risk_weight:out_of_range"),
    "BAD_DATE": ("LOANS,E1,C1,LOAN,USD,100,,,2024-6-1,,,,,,", "maturity_date:unparseable"),
    "BAD_DATE2": ("LOANS,E1,C1,LOAN,USD,100,,,2024-02-30,,,,,,", "maturity_date:unparseable"),
    "BAD_NUMBER": ("LOANS,E1,C1,LOAN,USD,1e,,,,,,,,,", "balance:unparseable"),
    "BAD_NAN": ("LOANS,E1,C1,LOAN,USD,nan,,,,,,,,,", "balance:unparseable"),
    "BAD_INF": ("LOANS,E1,C1,LOAN,USD,inf,,,,,,,,,", "balance:unparseable"),
    "BAD_MINUS_INF": ("MARKETS,E1,,SECURITY,USD,,-Infinity,S1,,,,,,,", "quantity:unparseable"),
    "BAD_SQL": ("LOANS,E1,C1,LOAN,USD,1; DROP TABLE x,,,,,,,,,", "balance:unparseable"),
    "BAD_BOOL": ("DEPOSITS,E1,C1,DEPOSIT,USD,100,,,,yes,,,,,", "insured:unparseable"),
    "BAD_NO_CPTY": ("LOANS,E1,,LOAN,USD,100,,,,,,,,,", "counterparty_id:missing"),
    "BAD_UNKNOWN_CPTY": ("LOANS,E1,C404,LOAN,USD,100,,,,,,,,,", "counterparty_id:unknown_reference"),
    "BAD_INVALID_CPTY": ("LOANS,E1,C_BADTYPE,LOAN,USD,100,,,,,,,,,", "counterparty_id:unknown_reference"),
    "BAD_DUP_CPTY": ("LOANS,E1,C_DUP,LOAN,USD,100,,,,,,,,,", "counterparty_id:unknown_reference"),
    "BAD_CASH_UNKNOWN_CPTY": ("TREASURY,E1,C404,CASH,USD,100,,,,,,,,,", "counterparty_id:unknown_reference"),
    "BAD_UNKNOWN_SEC": ("MARKETS,E1,,SECURITY,USD,,10,S404,,,,,,,", "security_id:unknown_reference"),
    "BAD_NO_PRICE": ("MARKETS,E1,,SECURITY,USD,,10,S_NOPRICE,,,,,,,", "security_id:missing_price"),
    "BAD_SEC_NO_ID": ("MARKETS,E1,,SECURITY,USD,,10,,,,,,,,", "security_id:missing"),
    "BAD_SEC_NO_QTY": ("MARKETS,E1,,SECURITY,USD,,,S1,,,,,,,", "quantity:missing"),
    "BAD_NO_BAL": ("LOANS,E1,C1,LOAN,USD,,,,,,,,,,", "balance:missing"),
    "BAD_NO_FX": ("TREASURY,E1,,CASH,CHF,100,,,,,,,,,", "currency:missing_fx_rate"),
    "BAD_NO_CCY": ("TREASURY,E1,,CASH,,100,,,,,,,,,", "currency:missing"),
    "DUP": ("LOANS,E1,C1,LOAN,USD,100,,,,,,,,,", "position_key:duplicate"),
    "E2_ROW": ("LOANS,E2,C1,LOAN,USD,100,,,,,,,,,", "reporting_currency:missing_fx_rate"),
    # values the calculation cannot represent exactly (regression: a 1e30 balance overflowed
    # DECIMAL(38,10) in the aggregation and failed every entity of the date)
    "OK_BIG": ("TREASURY,E1,,CASH,USD,1000000000000000,,,,,,,,,", None),  # 1e15 USD: the largest allowed
    "BAD_HUGE_BAL": ("TREASURY,E1,,CASH,USD,1e30,,,,,,,,,", "balance:out_of_range"),
    "BAD_HUGE_QTY": ("MARKETS,E1,,SECURITY,USD,,1e16,S1,,,,,,,", "quantity:out_of_range"),
    # 9.5e14 EUR x 1.08 = 1.026e15 USD; 2e13 x 99.5 = 1.99e15 USD
    "BAD_HUGE_AMOUNT": ("TREASURY,E1,,CASH,EUR,950000000000000,,,,,,,,,", "amount:out_of_range"),
    "BAD_HUGE_SEC": ("MARKETS,E1,,SECURITY,USD,,20000000000000,S1,,,,,,,", "amount:out_of_range"),
}
# entity ids that would become paths or partition keys and break the identifier rules: their
# positions are quarantined for the date with entity_id:invalid_identifier (README, Identifiers)
INVALID_ENTITIES = {
    "INV_COMMA": "LE,US", "INV_SPACE": "LE US", "INV_ACCENT": "L\u00c9_FR", "INV_SLASH": "LE/US",
    "INV_DOTS": "../../VICTIM", "INV_BACKSLASH": "LE\\US", "INV_PIPE": "LE|US", "INV_DOT_DOT": "LE..US",
    "INV_LONG": "L" * 300, "INV_HUGE": "X" * 10_000,
}
EXTRA_ROWS = [
    "DUP,LOANS,E1,C1,LOAN,USD,200,,,,,,,,,",  # the second copy of a duplicated key
    "NO_ENTITY,LOANS,,C1,LOAN,USD,100,,,,,,,,,",  # belongs to no entity: date-level quarantine
    "GHOST_ENTITY,LOANS,E9,C1,LOAN,USD,100,,,,,,,,,",
]


def _csv(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def write_landing(root):
    folder = root / f"business_date={DATE}"
    folder.mkdir(parents=True)
    rows = [f"{pid},{rest}" for pid, (rest, _) in POSITIONS.items()] + EXTRA_ROWS
    rows += [f"{pid},LOANS,{_csv(e)},C1,LOAN,USD,100,,,,,,,,," for pid, e in INVALID_ENTITIES.items()]
    (folder / "positions.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    (folder / "counterparties.csv").write_text(
        "counterparty_id,counterparty_type,name,country\nC1,RETAIL,a,GB\nC_BADTYPE,ALIEN,b,GB\n"
        "C_DUP,BANK,c,GB\nC_DUP,BANK,c2,GB\n"
    )
    (folder / "securities.csv").write_text(
        "security_id,hqla_level,issuer_type,maturity_date\nS1,L1,SOVEREIGN,2030-01-01\nS_NOPRICE,L2A,CORPORATE,\n"
    )
    (folder / "entities.csv").write_text(
        "entity_id,name,reporting_currency,country,parent_entity_id\nE1,One,USD,US,\nE2,Two,SEK,SE,\n"
        + "".join(f"{_csv(e)},Bad,USD,,\n" for e in INVALID_ENTITIES.values())
    )
    (folder / "fx_rates.csv").write_text("currency,usd_per_unit\nUSD,1\nEUR,1.08\n")
    (folder / "prices.csv").write_text("security_id,price\nS1,99.5\n")
    return root


@pytest.fixture(scope="module")
def flagged(engine, tmp_path_factory):
    root = write_landing(tmp_path_factory.mktemp("lz"))
    frames = landing.read_all(engine, str(root), DATE)
    landed = landing.land_positions(frames, DATE, ["E1", "E2"])
    flagged, typed = validation.flag_positions(landed)
    return flagged, typed


def test_every_bad_row_is_quarantined_with_its_rule(flagged):
    flagged, typed = flagged
    quarantined = validation.quarantined_positions(flagged).collect()
    accepted = validation.accepted_positions(flagged, typed).collect()
    got = {}
    for row in quarantined:
        got.setdefault(row["position_id"], set()).add(row["quarantine_rule"])
        assert row["quarantine_reasons"].split(";")[0] == row["quarantine_rule"]
        assert row["source_file"].endswith("positions.csv") and row["source_row"] >= 1
    expected_bad = {pid: reason for pid, (_, reason) in POSITIONS.items() if reason}
    assert {pid: rules.pop() for pid, rules in got.items()} == expected_bad
    assert sorted(r["position_id"] for r in accepted) == ["OK_BIG", "OK_LOAN", "OK_REPO_NO_COLL", "OK_SEC"]
    # rows delivered = accepted + quarantined (the duplicate key counts twice, once per row),
    # the two rows of no known entity being quarantined at date level
    assert len(accepted) + len(quarantined) == len(POSITIONS) + len(EXTRA_ROWS) - 2


def test_positions_of_no_known_entity_are_quarantined_for_the_date(engine, tmp_path):
    root = write_landing(tmp_path / "lz")
    frames = landing.read_all(engine, str(root), DATE)
    entity_ids = delivery.delivered_entity_ids(str(root), DATE)
    assert entity_ids == ["E1", "E2"], "an invalid identifier never becomes a partition"
    assert delivery.invalid_entities(str(root), DATE) == sorted(INVALID_ENTITIES.values())
    rows = {r["position_id"]: r["quarantine_rule"]
            for r in validation.unassigned_positions(frames, DATE, entity_ids).collect()}
    assert rows == {"NO_ENTITY": "entity_id:missing", "GHOST_ENTITY": "entity_id:unknown_reference",
                    **{pid: "entity_id:invalid_identifier" for pid in INVALID_ENTITIES}}


def test_unknown_columns_are_ignored_by_name_and_missing_ones_named(engine, tmp_path):
    """A delivered column named like an internal one (fx_rate, source_row, key_occurrences) or
    holding a backtick or a quote changes nothing: it is never read; a missing contract column
    fails naming the file and the column."""
    root = write_landing(tmp_path / "lz")
    path = root / f"business_date={DATE}" / "positions.csv"
    lines = path.read_text().splitlines()
    lines = [lines[0] + ',fx_rate,source_row,key_occurrences,"we`ird ""col"'] + [line + ",0.0001,7,1,x" for line in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    frames = landing.read_all(engine, str(root), DATE)
    assert frames["_ignored"] == {"positions.csv": ["fx_rate", "source_row", "key_occurrences", 'we`ird "col']}
    landed = landing.land_positions(frames, DATE, ["E1", "E2"])
    flagged, typed = validation.flag_positions(landed)
    got = {r["position_id"]: r["quarantine_rule"] for r in validation.quarantined_positions(flagged).collect()}
    assert got == {pid: reason for pid, (_, reason) in POSITIONS.items() if reason}
    rows = {r["position_id"]: r for r in validation.accepted_positions(flagged, typed).collect()}
    assert rows["OK_LOAN"]["fx_rate"] == 1.0 and rows["OK_LOAN"]["source_row"] == 1

    (root / f"business_date={DATE}" / "prices.csv").write_text("security_id;price\nS1;99.5\n")
    with pytest.raises(delivery.LandingFileError, match=r"prices.csv lacks required column\(s\) security_id, price "
                                                       r"\(the header is one column"):
        landing.read_all(engine, str(root), DATE)


def test_accepted_rows_are_typed(flagged):
    flagged, typed = flagged
    rows = {r["position_id"]: r for r in validation.accepted_positions(flagged, typed).collect()}
    loan = rows["OK_LOAN"]
    assert loan["balance"] == 100.0 and loan["risk_weight"] == 0.5 and loan["performing"] is True
    assert str(loan["maturity_date"]) == "2024-07-10" and loan["counterparty_type"] == "RETAIL"
    sec = rows["OK_SEC"]
    assert sec["quantity"] == 10.0 and sec["price"] == 99.5 and sec["security_hqla_level"] == "L1"
    assert rows["OK_REPO_NO_COLL"]["security_hqla_level"] is None


def test_bom_crlf_and_quoted_newlines_give_the_same_rows(engine, tmp_path):
    """A CSV delivery with a byte-order mark, CRLF line ends and a quoted newline inside a value
    is read as the same rows (the same accepted values and quarantine reasons) as the plain file."""
    plain = write_landing(tmp_path / "plain")
    odd = write_landing(tmp_path / "odd")
    folder = odd / f"business_date={DATE}"
    for path in folder.glob("*.csv"):
        text = path.read_text().replace("\n", "\r\n")
        if path.name == "counterparties.csv":
            text = text.replace("C1,RETAIL,a,GB", 'C1,RETAIL,"a\r\nline two",GB')
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())

    def rows(root):
        frames = landing.read_all(engine, str(root), DATE)
        flagged, typed = validation.flag_positions(landing.land_positions(frames, DATE, ["E1", "E2"]))
        accepted = sorted((r["position_id"], r["balance"], r["source_row"], r["counterparty_type"])
                          for r in validation.accepted_positions(flagged, typed).collect())
        quarantined = sorted((r["position_id"], r["quarantine_reasons"], r["source_row"])
                             for r in validation.quarantined_positions(flagged).collect())
        names = sorted((r["counterparty_id"], r["name"].replace("\r", "").replace("\nline two", "")) for r in frames["counterparties"].collect())
        return accepted, quarantined, names

    assert rows(odd) == rows(plain)
