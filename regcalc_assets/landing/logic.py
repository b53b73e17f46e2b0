"""Landing-zone files: locating a date's delivery and reading it as text, for any engine."""

from __future__ import annotations

from pathlib import Path

from regcalc_assets.lineage.wrapper import traced
from regcalc_assets.sparkapi import functions_for, lookup
from regcalc_assets.validation.contract import CONTRACT
from regcalc_assets.validation.logic import valid_reference

FILES = ("positions", "counterparties", "securities", "entities", "fx_rates", "prices")


class LandingFileError(RuntimeError):
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


def read_all(engine, landing_root: str, business_date: str) -> dict:
    """Every file of the date as an all-string DataFrame with ``source_file`` and ``source_row``."""
    frames: dict = {"_paths": {}}
    for name in FILES:
        path = frames["_paths"][name] = locate(landing_root, business_date, name)
        try:
            df = engine.read_text_table(path)
            df.columns  # noqa: B018 - forces the schema read, so a corrupt file fails here
        except Exception as exc:  # noqa: BLE001 - re-raised with the culprit named
            raise LandingFileError(f"cannot read landing file {path}: {exc}") from exc
        frames[name] = df
    return frames


def available_dates(landing_root: str) -> list[str]:
    root = Path(landing_root)
    if not root.is_dir():
        return []
    return sorted(p.name.split("=", 1)[1] for p in root.glob("business_date=*") if p.is_dir())


def _valid(frames: dict, name: str):
    return valid_reference(frames[name], CONTRACT[name])


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


def unassigned_positions(frames: dict, business_date: str):
    """Delivered positions whose entity_id is null or not in the date's entities file: quarantined,
    counted for the date, in no entity's figures (landing-zone.md, 'Bad input')."""
    positions, entities = frames["positions"], frames["entities"]
    F, _ = functions_for(positions)
    known = entities.where(F.col("entity_id").isNotNull()).select(F.col("entity_id").alias("known_entity")).distinct()
    joined = positions.join(known, positions["entity_id"] == known["known_entity"], "left")
    return joined.where(F.col("known_entity").isNull()).select(
        F.lit(business_date).cast("date").alias("business_date"),
        *[c for c in positions.columns if c not in ("business_date",)],
        F.lit(locate_name(frames, "positions")).alias("source_file"),
        F.when(F.col("entity_id").isNull(), F.lit("entity_id:missing"))
        .otherwise(F.lit("entity_id:unknown_reference")).alias("quarantine_rule"),
    )
