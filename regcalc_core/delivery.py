"""The landing zone as delivered (landing-zone.md, 'Layout'): one folder per business date holding
the six contract files as Parquet or CSV. Finding the dates, the files and their columns, and the
entities delivered for a date: read from headers, footers and the small entities file alone,
never from the positions, so a command can refuse a bad delivery at once.
"""

from __future__ import annotations

from pathlib import Path

from regcalc_core.contract import column_names
from regcalc_core.errors import RegcalcInputError, first_line
from regcalc_core.files import csv_header
from regcalc_core.identifiers import describe, is_valid_identifier
from regcalc_core.timestamps import is_iso_date

FILES = ("positions", "counterparties", "securities", "entities", "fx_rates", "prices")


class LandingFileError(RegcalcInputError):
    """A landing file is missing or cannot be read; the message names the file."""


def date_dir(landing_root: str, business_date: str) -> Path:
    return Path(landing_root) / f"business_date={business_date}"


def locate(landing_root: str, business_date: str, name: str) -> str:
    """Path of ``name`` (.parquet preferred, else .csv) for the date, or a LandingFileError naming it."""
    folder = date_dir(landing_root, business_date)
    for ext in (".parquet", ".csv"):
        path = folder / f"{name}{ext}"
        if path.exists():
            return str(path)
    raise LandingFileError(f"missing landing file: {folder / name}.parquet (or .csv) for business date {business_date}")


def file_columns(path: str) -> list[str]:
    """The column names of a landing file, read from its header (CSV) or footer (Parquet) alone;
    a LandingFileError naming the file when it cannot be read (empty, truncated, not Parquet)."""
    try:
        if path.endswith(".csv"):
            header = csv_header(path)
            if not header:
                raise ValueError("the file is empty (no header row)")
            return header
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pyarrow's errors derive from these
        raise LandingFileError(f"cannot read landing file {path}: {first_line(exc)}") from None


def check_columns(path: str, name: str) -> tuple[list[str], list[str]]:
    """(the contract's columns of file ``name``, delivered columns the contract does not know).

    Every contract column must be delivered (a LandingFileError names the file and the missing
    columns); unknown columns are ignored by name, before anything reads them."""
    wanted = column_names(name)
    delivered = file_columns(path)
    missing = [c for c in wanted if c not in delivered]
    if missing:
        hint = ""
        if path.endswith(".csv") and len(delivered) == 1 and any(d in delivered[0] for d in ";\t|"):
            hint = " (the header is one column: the file looks delimited by something other than ',', which the contract requires)"
        raise LandingFileError(f"landing file {path} lacks required column(s) {', '.join(missing)}{hint}")
    return wanted, [c for c in delivered if c not in wanted]


def check_delivery(landing_root: str, business_date: str) -> dict[str, list[str]]:
    """Every file of the date is there, readable, with the contract's columns: {file: ignored
    columns}. Reads headers and footers only, so a command can refuse a bad delivery at once."""
    ignored = {}
    for name in FILES:
        path = locate(landing_root, business_date, name)
        extra = check_columns(path, name)[1]
        if extra:
            ignored[Path(path).name] = extra
    return ignored


def ignored_columns_warning(ignored: dict[str, list[str]]) -> str | None:
    """One line listing the delivered columns the contract does not know (None if there are none)."""
    if not ignored:
        return None
    listed = "; ".join(f"{f}: {', '.join(describe(c) for c in cols)}" for f, cols in sorted(ignored.items()))
    return f"ignored column(s) the landing-zone contract does not know: {listed}"


def date_folders(landing_root: str) -> tuple[list[str], list[str]]:
    """(business dates of the landing root's ``business_date=YYYY-MM-DD`` folders, names of
    folders that look like one but are not a real date, such as ``business_date=2024-02-30``)."""
    root = Path(landing_root)
    if not root.is_dir():
        return [], []
    good, bad = [], []
    for folder in root.glob("business_date=*"):
        if not folder.is_dir():
            continue
        value = folder.name.split("=", 1)[1]
        (good if is_iso_date(value) else bad).append(value if is_iso_date(value) else folder.name)
    return sorted(good), sorted(bad)


def available_dates(landing_root: str) -> list[str]:
    """The business dates delivered (folders that are not a valid date are skipped: see ``date_folders``)."""
    return date_folders(landing_root)[0]


def delivered_entities(landing_root: str, business_date: str) -> dict[str, dict]:
    """{entity_id: {entity_id, reporting_currency}} of the date's entities file: the non-null ids
    that are valid identifiers (regcalc_core.identifiers). Only these become partitions; see
    ``invalid_entities`` for the rest."""
    return {e: info for e, info in _entity_rows(landing_root, business_date).items() if is_valid_identifier(e)}


def invalid_entities(landing_root: str, business_date: str) -> list[str]:
    """The non-null entity_id of the date's entities file that are not valid identifiers: never
    registered as partitions, their positions quarantined with ``entity_id:invalid_identifier``."""
    return sorted(e for e in _entity_rows(landing_root, business_date) if not is_valid_identifier(e))


def _entity_rows(landing_root: str, business_date: str) -> dict[str, dict]:
    """{entity_id: {entity_id, reporting_currency}} of the date's entities file (non-null ids)."""
    import duckdb

    path = locate(landing_root, business_date, "entities")
    reader = "read_csv" if path.endswith(".csv") else "read_parquet"
    options = ", all_varchar = true, header = true" if reader == "read_csv" else ""
    try:
        with duckdb.connect() as con:
            rows = con.execute(
                f"SELECT CAST(entity_id AS VARCHAR), any_value(CAST(reporting_currency AS VARCHAR)) "
                f"FROM {reader}(?{options}) WHERE entity_id IS NOT NULL GROUP BY 1 ORDER BY 1",
                [path],
            ).fetchall()
    except Exception as exc:  # noqa: BLE001 - re-raised naming the file
        raise LandingFileError(f"cannot read landing file {path}: {exc}") from exc
    return {r[0]: {"entity_id": r[0], "reporting_currency": r[1]} for r in rows}


def delivered_entity_ids(landing_root: str, business_date: str) -> list[str]:
    """Distinct non-null entity_id of the date's entities file (the entity partitions of that date)."""
    return sorted(delivered_entities(landing_root, business_date))
