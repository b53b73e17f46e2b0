"""Landing-zone files: locating a date's delivery and reading it as text, for any engine."""

from __future__ import annotations

from pathlib import Path

from regcalc_core.lineage import traced
from regcalc_core.dataframes import functions_for, lookup
from regcalc_core.contract import column_names, valid_reference
from regcalc_core.errors import RegcalcInputError, first_line
from regcalc_core.files import csv_header
from regcalc_core.identifiers import IDENTIFIER_PATTERN, INVALID_IDENTIFIER, describe, is_valid_identifier
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


def read_all(engine, landing_root: str, business_date: str) -> dict:
    """Every file of the date as an all-string DataFrame of its contract columns with
    ``source_row``; ``_ignored`` lists the delivered columns the contract does not know."""
    frames: dict = {"_paths": {}, "_ignored": {}}
    for name in FILES:
        path = frames["_paths"][name] = locate(landing_root, business_date, name)
        wanted, ignored = check_columns(path, name)
        if ignored:
            frames["_ignored"][Path(path).name] = ignored
        try:
            df = engine.read_text_table(path, wanted)
            df.columns  # noqa: B018 - forces the schema read, so a corrupt file fails here
        except Exception as exc:  # noqa: BLE001 - re-raised with the culprit named
            raise LandingFileError(f"cannot read landing file {path}: {first_line(exc)}") from exc
        frames[name] = df
    return frames


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


def _valid(frames: dict, name: str):
    return valid_reference(frames[name], name)


@traced("ingestion", needs_input=False)
def land_positions(frames: dict, business_date: str, entity_ids: list[str], landing_version: str | None = None):
    """The entities' delivered positions (text, as delivered) with the reference and market data they point at.

    ``key_occurrences`` counts the (position_id, source_system) pair over the whole date, so a
    duplicate is seen even across entities. Reference attributes come only from reference rows
    that satisfy the contract; ``*_found`` says whether a non-null key found one.
    ``landing_version`` is the version of the delivery read (sources/logic.py).
    """
    positions = frames["positions"]
    F, Window = functions_for(positions)
    pid, system = F.col("position_id"), F.col("source_system")
    occurrences = F.when(
        pid.isNotNull() & system.isNotNull(),
        F.count(F.lit(1)).over(Window.partitionBy("position_id", "source_system")),
    ).otherwise(F.lit(1))
    landed = positions.withColumn("key_occurrences", occurrences).where(F.col("entity_id").isin(*entity_ids))
    counterparties = _valid(frames, "counterparties").select(
        "counterparty_id", "counterparty_type", F.lit(True).alias("counterparty_found")
    )
    securities = _valid(frames, "securities").select(
        "security_id",
        F.col("hqla_level").alias("security_hqla_level"),
        "issuer_type",
        F.col("maturity_date").alias("security_maturity_date"),
        F.lit(True).alias("security_found"),
    )
    prices = _valid(frames, "prices").select("security_id", "price", F.lit(True).alias("price_found"))
    fx = _valid(frames, "fx_rates")
    entities = _valid(frames, "entities").select("entity_id", "reporting_currency")
    joined = (
        landed
        .transform(lambda df: lookup(df, counterparties, "counterparty_id"))
        .transform(lambda df: lookup(df, securities, "security_id"))
        .transform(lambda df: lookup(df, prices, "security_id"))
        .transform(lambda df: lookup(df, fx.select("currency", F.col("usd_per_unit").alias("fx_rate")), "currency"))
        .transform(lambda df: lookup(df, entities, "entity_id"))
        .transform(lambda df: lookup(df, reporting_fx(fx), "reporting_currency"))
    )
    source = F.lit(locate_name(frames, "positions"))
    return joined.select(
        F.lit(business_date).cast("date").alias("business_date"),
        "entity_id", "position_id", "source_system", "counterparty_id", "product", "currency",
        "balance", "quantity", "security_id", "maturity_date", "insured", "stable_relationship",
        "operational", "performing", "risk_weight", "encumbered_until",
        "counterparty_type", "security_hqla_level", "issuer_type", "security_maturity_date",
        "price", "fx_rate", "reporting_currency", "reporting_fx_rate",
        F.coalesce(F.col("counterparty_found"), F.lit(False)).alias("counterparty_found"),
        F.coalesce(F.col("security_found"), F.lit(False)).alias("security_found"),
        F.coalesce(F.col("price_found"), F.lit(False)).alias("price_found"),
        "key_occurrences",
        source.alias("source_file"),
        "source_row",
        F.lit(landing_version).cast("string").alias("landing_version"),
    )


def reporting_fx(fx):
    F, _ = functions_for(fx)
    return fx.select(F.col("currency").alias("reporting_currency"), F.col("usd_per_unit").alias("reporting_fx_rate"))


def locate_name(frames: dict, name: str) -> str:
    return frames.get("_paths", {}).get(name, name)


def entity_profiles(frames: dict, business_date: str, entity_ids: list[str], session):
    """One row per requested entity: its reference row (if valid), reporting FX rate and delivered position count."""
    F, _ = functions_for(session)
    wanted = session.createDataFrame([(e,) for e in entity_ids], "entity_id string")
    fx = reporting_fx(_valid(frames, "fx_rates"))
    entities = _valid(frames, "entities").select(
        "entity_id", F.col("name").alias("entity_name"), "reporting_currency", "country", "parent_entity_id"
    )
    delivered = (
        frames["positions"].where(F.col("entity_id").isin(*entity_ids)).groupBy("entity_id")
        .agg(F.count(F.lit(1)).alias("positions_delivered"))
    )
    return (
        lookup(lookup(lookup(wanted, entities, "entity_id"), fx, "reporting_currency"), delivered, "entity_id")
        .select(
            F.lit(business_date).cast("date").alias("business_date"),
            "entity_id", "entity_name", "reporting_currency", "reporting_fx_rate", "country", "parent_entity_id",
            F.col("entity_name").isNotNull().alias("entity_valid"),
            F.coalesce(F.col("positions_delivered"), F.lit(0)).cast("bigint").alias("positions_delivered"),
        )
    )


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


def unassigned_positions(frames: dict, business_date: str, entity_ids: list[str]):
    """Delivered positions of no entity partition: entity_id null (``entity_id:missing``), not a
    valid identifier (``entity_id:invalid_identifier``) or not among ``entity_ids``, the date's
    delivered entities (``entity_id:unknown_reference``). Quarantined, counted for the date, in no
    entity's figures (landing-zone.md, 'Bad input'; README, 'Identifiers')."""
    positions = frames["positions"]
    F, _ = functions_for(positions)
    entity = F.col("entity_id")
    # the rule of regcalc_core.identifiers.is_valid_identifier, as a column (Java's `$` also
    # matches before a final line break, so a line break is excluded explicitly)
    valid = entity.rlike(IDENTIFIER_PATTERN) & ~entity.contains("..") & ~entity.contains("\n")
    known = entity.isin(*entity_ids) if entity_ids else F.lit(False)
    rule = (F.when(entity.isNull(), F.lit("entity_id:missing"))
            .when(~valid, F.lit(f"entity_id:{INVALID_IDENTIFIER}"))
            .otherwise(F.lit("entity_id:unknown_reference")))
    return positions.where(entity.isNull() | ~known).select(
        F.lit(business_date).cast("date").alias("business_date"),
        *[c for c in positions.columns if c not in ("business_date",)],
        F.lit(locate_name(frames, "positions")).alias("source_file"),
        rule.alias("quarantine_rule"),
    )


def reconcile_date(delivered: int, unassigned: int, entity_ids: list[str],
                   stored: dict[str, dict[str, int | None]]) -> tuple[bool, str]:
    """(passed, a markdown summary) of the date-level reconciliation: the positions delivered
    equal the unassigned ones plus, over every delivered entity, the accepted and quarantined
    rows stored for it; an entity with no stored partition fails it by name."""
    missing = sorted({e for rows in stored.values() for e, n in rows.items() if n is None})
    counted = unassigned + sum(n or 0 for rows in stored.values() for n in rows.values())
    lines = ["| entity | accepted | quarantined |", "|---|---:|---:|"]
    accepted, quarantined = stored.get("validated_positions", {}), stored.get("quarantined_positions", {})
    lines += [f"| {e} | {accepted.get(e)} | {quarantined.get(e)} |" for e in entity_ids]
    lines += [f"| (no entity) | | {unassigned} |", f"| **delivered** | {delivered} | counted {counted} |"]
    problems = []
    if missing:
        problems.append(f"no stored partition for entity {', '.join(missing)}")
    if counted != delivered:
        problems.append(f"{delivered} position(s) delivered but {counted} accounted for")
    return not problems, "\n".join(problems + [""] + lines)
