"""The liquidity star schema: the pipeline's outputs shaped into the input tables of the generic
operator (``regcalc_core.star``), and the operator run with the liquidity spec
(``liquidity_star.yaml``). DataFrames in, DataFrames out; the assets only wire them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import lru_cache
from pathlib import Path

from regcalc_assets.partitions import FIRST_BUSINESS_DATE
from regcalc_assets.aggregation.logic import COMPONENTS, HQLA_COMPONENTS, contribution_terms
from regcalc_core.citations import RULE_SEPARATOR, load_citations
from regcalc_core.contract import ASSET_PRODUCTS, HQLA_LEVELS, LIABILITY_PRODUCTS, NO_COUNTERPARTY_PRODUCTS, PRODUCTS
from regcalc_core.dataframes import frame_of_rows, functions_for
from regcalc_core.governance import in_force
from regcalc_core.factors import load_factor_tables
from regcalc_core.star.build import StarSchema, build_aggregate, build_star, physical_design
from regcalc_core.star.spec import StarSpec

SPEC_FILE = Path(__file__).with_name("liquidity_star.yaml")
FIRST_DATE = dt.date.fromisoformat(FIRST_BUSINESS_DATE)

FACTS = {"fact_position": "position", "fact_component": "component_figures", "fact_metric": "metric",
         "fact_adjustment": "adjustment", "bridge_position_rule": "position_rule"}
DIMENSIONS = {"dim_legal_entity": "legal_entity", "dim_counterparty": "counterparty", "dim_product": "product",
              "dim_currency": "currency", "dim_hqla_level": "hqla_level", "dim_component": "component",
              "dim_factor_row": "factor_row", "dim_adjustment_rule": "adjustment_rule", "dim_basis": "basis"}
AGGREGATES = {"agg_daily_liquidity": "metric", "agg_component_by_date": "component_figures"}
CONTRIBUTIONS = ["hqla", "outflow", "inflow", "asf", "rsf"]  # in contribution_terms' order
RULE_ROWS = {"haircut_rule": "haircut_row", "outflow_rule": "outflow_row", "inflow_rule": "inflow_row",
             "asf_rule": "asf_row", "rsf_rule": "rsf_row"}


@lru_cache(maxsize=1)
def liquidity_spec() -> StarSpec:
    return StarSpec.from_yaml(SPEC_FILE)


def spec_for_dates(last_date: dt.date) -> StarSpec:
    """The spec with the date dimension from the first business date to the end of the year of
    the latest business date stored (so every fact date has its member)."""
    return dataclasses.replace(liquidity_spec(), date_range=(FIRST_DATE, dt.date(max(last_date.year, FIRST_DATE.year), 12, 31)))


# --- fact inputs, from one partition's stage outputs ---------------------------------------------
def position_rows(adjusted):
    """One row per position: identity, classification, the factor-table row behind each factor
    (the first row id of a ``+``-joined rule, e.g. an RSF encumbrance add-on keeps its base row;
    the delivered file and the rule-set version stay in the stages and the lineage),
    amount (adjusted and ``base_``), the factors as the deal rules left them, and what it
    contributes to each component kind, base and adjusted, with the aggregation stage's own terms
    (HQLA: amount x (1 - haircut))."""
    F, _ = functions_for(adjusted)
    contributions = []
    for prefix in ("base_", ""):
        for kind, (present, component, _, value) in zip(CONTRIBUTIONS, contribution_terms(F, prefix)):
            applies = component.isNotNull() if kind == "hqla" else present
            contributions.append(F.when(applies, value).cast("double").alias(f"{prefix}{kind}_contribution"))
    rows = [F.split(F.col(rule), "[" + RULE_SEPARATOR + "]").getItem(0).alias(row) for rule, row in RULE_ROWS.items()]
    # the factor-table rows are keys to dim_factor_row; rsf_rule stays whole, for its "+" add-on
    return adjusted.select(
        "business_date", "entity_id", "source_system", "position_id", "counterparty_id", "product", "currency",
        "reporting_currency", "hqla_level", *rows, "rsf_rule", "counterparty_class", "nsfr_bucket", "maturity_date",
        "source_row",
        "amount", "base_amount", "haircut", "outflow_rate", "inflow_rate", "asf_factor", "rsf_factor",
        *contributions,
    )


def _upper_basis(F):
    return F.upper(F.col("basis")).alias("basis")


def component_rows(components):
    """One row per (entity, date, basis, component) of ``liquidity_components``; basis as in
    dim_basis (BASE, ADJUSTED)."""
    F, _ = functions_for(components)
    return components.select("business_date", "entity_id", _upper_basis(F), "component", "component_order",
                             "reporting_currency", "aggregation_rules_version", "amount", "position_count")


METRIC_MEASURES = ["hqla_l1", "hqla_l2a", "hqla_l2b", "adj15", "adj40", "hqla", "total_outflows", "total_inflows",
                   "capped_inflows", "net_outflows", "lcr", "asf", "rsf", "nsfr", "positions_accepted",
                   "positions_quarantined"]


def metric_rows(metrics):
    """One row per (entity, date, basis) of ``liquidity_metrics``."""
    F, _ = functions_for(metrics)
    return metrics.select("business_date", "entity_id", _upper_basis(F), "reporting_currency", "final_rules_version",
                          *METRIC_MEASURES)


def adjustment_rows(trail):
    """One row per trail row (a value a rule changed), with ``change`` = after - before."""
    F, _ = functions_for(trail)
    return trail.select("business_date", "entity_id", "stage", "row_key", "step", "rule_id",
                        F.col("version").alias("rule_version"), "source_system", "position_id", "component", "field",
                        F.col("clamped"), "value_before", "value_after",
                        (F.col("value_after") - F.col("value_before")).alias("change"))


def position_rule_rows(trail):
    """The link of bridge_position_rule: each (position, deal rule) the trail records."""
    F, _ = functions_for(trail)
    return (trail.where((F.col("stage") == F.lit("deal_enrichment")) & F.col("rule_id").isNotNull())
            .select("business_date", "entity_id", "source_system", "position_id", "rule_id").distinct())


# --- dimension snapshots, per partition ------------------------------------------------------------
def counterparty_snapshot(adjusted):
    """The counterparties of a partition's accepted positions as delivered that date."""
    F, _ = functions_for(adjusted)
    return (adjusted.where(F.col("counterparty_id").isNotNull())
            .select("business_date", "entity_id", "counterparty_id", "counterparty_type").distinct())


def currency_snapshot(adjusted, profiles):
    """The currencies of a partition: its positions' and its reporting currency."""
    F, _ = functions_for(adjusted)
    held = adjusted.select("business_date", "entity_id", "currency")
    reporting = profiles.where(F.col("reporting_currency").isNotNull()).select(
        "business_date", "entity_id", F.col("reporting_currency").alias("currency"))
    return held.unionByName(reporting).distinct()


# --- dimension inputs, over every stored date ------------------------------------------------------
def legal_entity_rows(profiles):
    """Entity snapshots of every business date (the entities file as delivered, per date)."""
    return profiles.select("entity_id", "entity_name", "reporting_currency", "country", "parent_entity_id",
                           "entity_valid", "business_date")


def counterparty_rows(snapshots):
    return snapshots.select("counterparty_id", "counterparty_type", "business_date").distinct()


def currency_rows(snapshots):
    return snapshots.select("currency").distinct()


def static_rows(session) -> dict:
    """The dimensions that are vocabulary: products, HQLA levels, components, factor-table rows
    (with their citation of liquidity-rules.md) and the two bases."""
    tables = load_factor_tables()
    citations = load_citations()
    products = [(p, "ASSET" if p in ASSET_PRODUCTS else "LIABILITY" if p in LIABILITY_PRODUCTS else "OFF_BALANCE_SHEET",
                 p not in NO_COUNTERPARTY_PRODUCTS) for p in PRODUCTS]
    levels = [(lvl, lvl != "NON_HQLA", HQLA_COMPONENTS.get(lvl)) for lvl in HQLA_LEVELS]
    ratio = {"ASF": "NSFR", "RSF": "NSFR"}
    components = [(c, i, ratio.get(c, "LCR")) for i, c in enumerate(COMPONENTS)]
    factor_rows = []
    for table, rows in tables.tables.items():
        for order, row in enumerate(rows):
            cite = citations.get(row.id)
            factor_rows.append((row.id, table, order, str(row.value), row.op, tables.label,
                                cite.document if cite else None, cite.section if cite else None,
                                cite.text if cite else None, cite.part if cite else None))
    return {
        "product": frame_of_rows(session, products, "product string, balance_sheet string, counterparty_required boolean"),
        "hqla_level": frame_of_rows(session, levels, "hqla_level string, is_hqla boolean, hqla_component string"),
        "component": frame_of_rows(session, components, "component string, component_order int, ratio string"),
        "factor_row": frame_of_rows(
            session, factor_rows, "factor_row string, factor_table string, row_order int, value string, op string, "
                                  "regime string, document string, section string, citation string, citation_part string"),
        "basis": frame_of_rows(session, [("BASE", "as computed from the delivery, no adjustment rule"),
                                         ("ADJUSTED", "with every approved adjustment rule")],
                               "basis string, description string"),
    }


def adjustment_rule_rows(session, versions: list):
    """One row per approved rule version in force from its effective date: a later version with
    an earlier or equal effective date supersedes it (adjustment-rules.md: the latest approved
    version applies). Submitter, approver and the effective and expiry dates; ``retired`` when
    an approved retirement ended the rule since (a pending one does not)."""
    by_rule: dict[str, list] = {}
    for v in versions:
        by_rule.setdefault(v.rule_id, []).append(v)
    rows = []
    for rule_id, history in sorted(by_rule.items()):
        approved = [v for v in history if v.status == "approved"]
        retired = bool(approved) and in_force(history) is None  # an approved retirement came after them
        for v in approved:
            effective = dt.date.fromisoformat(str(v.body.get("effective_date")))
            if any(w.version > v.version and dt.date.fromisoformat(str(w.body.get("effective_date"))) <= effective
                   for w in approved):
                continue
            expiry = v.body.get("expiry_date")
            rows.append((rule_id, v.version, v.body.get("stage"), v.body.get("description") or "",
                         int(v.body.get("priority", 100)), v.submitted_by, v.submitted_at, v.approved_by, v.approved_at,
                         effective, dt.date.fromisoformat(str(expiry)) if expiry else None, retired, effective))
    return frame_of_rows(
        session, rows, "rule_id string, version int, stage string, description string, priority int, "
                       "submitted_by string, submitted_at timestamp, approved_by string, approved_at timestamp, "
                       "effective_date date, expiry_date date, retired boolean, in_force_from date")


# --- the operator, for the pipeline -----------------------------------------------------------------
def build_dimensions(spec: StarSpec, inputs: dict) -> StarSchema:
    """Every dimension and dim_date. Natural keys are not re-checked: one entity profile per
    (date, entity), one counterparty type per counterparty and date (validated reference data),
    vocabulary and rule versions by construction."""
    return build_star(spec, inputs, parts=("dimension", "date"), check=False)


def build_facts(spec: StarSpec, inputs: dict, dimensions: dict) -> StarSchema:
    """The facts and the bridge of one run's partitions, keyed to the stored dimensions. Natural
    keys are not re-checked: the stages already guarantee them (a duplicated position is
    quarantined), and the check would read every position again."""
    return build_star(spec, inputs, dimensions=dimensions, parts=("fact", "bridge"), check=False)


def build_aggregates(spec: StarSpec, facts: dict) -> dict:
    """The aggregate tables (``agg_<name>`` -> DataFrame) from the stored facts (star table name
    -> DataFrame): small, entity x date x basis."""
    out = {}
    for agg in spec.aggregates_of(spec.classify()):
        out[f"agg_{agg.name}"] = build_aggregate(spec, agg, facts[f"fact_{spec.tables[agg.fact].star_name}"])
    return out


# --- physical design, for the warehouse ---------------------------------------------------------------
def referenced_dimensions(spec: StarSpec) -> dict[str, dict[str, str]]:
    """Per fact and bridge (star table name): foreign key column -> the star table it points at."""
    out: dict[str, dict[str, str]] = {}
    for role in spec.classify():
        if role.role == "dimension":
            continue
        table = spec.tables[role.table]
        keys = {"date_key": "dim_date"} if table.date else {}
        for rel in spec.relationships:
            if (role.role == "fact" and rel.type != "n:n" and rel.many[0] == role.table) or \
                    (role.role == "bridge" and rel.via == role.table):
                keys[spec.key_column(rel)] = f"dim_{spec.tables[rel.one[0]].star_name}"
        out[role.output] = keys
    return out


def key_cardinalities(files: list[str], keys: list[str]) -> dict[str, int]:
    """Approximate distinct values of each key column over stored Parquet files (HyperLogLog in
    DuckDB: one pass, a fraction of a second for millions of rows)."""
    import duckdb

    if not files or not keys:
        return {}
    con = duckdb.connect()
    try:
        row = con.execute(f"SELECT {', '.join(f'approx_count_distinct({k})' for k in keys)} "
                          "FROM read_parquet(?, hive_partitioning = false)", [files]).fetchone()
    finally:
        con.close()
    return dict(zip(keys, (int(v or 0) for v in row)))


def physical_designs(spec: StarSpec, columns: dict[str, list[str]], fact_files: dict[str, list[str]]) -> dict:
    """The operator's physical design of each stored star table, a fact's foreign keys ranked by
    their distinct values in its stored partitions (``fact_files``)."""
    references = referenced_dimensions(spec)
    out = {}
    for name, cols in columns.items():
        keys = list(references.get(name, {}))
        counts = key_cardinalities(fact_files.get(name, []), [k for k in keys if k != "date_key"]) \
            if name.startswith("fact_") else {}
        out[name] = physical_design(name, cols, keys, counts)
    return out
