"""Landing-zone files: locating a date's delivery and reading it as text, for any engine."""

from __future__ import annotations

from pathlib import Path

from regcalc_core.lineage import traced
from regcalc_core.dataframes import functions_for, lookup
from regcalc_core.delivery import FILES, LandingFileError, check_columns, locate
from regcalc_core.errors import first_line
from regcalc_core.contract import valid_reference



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

