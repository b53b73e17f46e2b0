"""The Power BI semantic model in ``powerbi/`` (a PBIP project, its model in TMDL), checked against
the warehouse of the golden EOD with the star schema built. Power BI cannot run here, so:

- the TMDL is read by a strict reader (``regcalc_tests/reporting/tmdl.py``: why and what it reads
  is in its docstring) and must load whole;
- every table and column the model reads exists in the warehouse, with a compatible type, and the
  model covers the star (its tables, its relationships, its aggregates) as the star spec defines it;
- every relationship's key is unique on its dimension side and every foreign key resolves (SQL);
- every DAX expression parses (``sidemantic-dax``, a real DAX parser from PyPI), calls known
  functions, references only the model's columns and measures, compares columns only with values
  the warehouse holds; and the metric measures and the calculation group, evaluated over the
  warehouse by a small evaluator (``regcalc_tests/reporting/dax.py``), give the golden figures;
- the incremental-refresh policies, the aggregations and the source parameter have the shape
  Power BI needs, and the aggregates equal their detail tables summed (SQL);
- the checkers reject a broken model: the last tests feed them one.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from regcalc_tests.reporting import dax, tmdl

pytestmark = [pytest.mark.slow, pytest.mark.star]

REPO = Path(__file__).resolve().parents[2]
POWERBI = REPO / "powerbi"
SEMANTIC_MODEL = POWERBI / "regcalc.SemanticModel"
DEFINITION = SEMANTIC_MODEL / "definition"
STAR_SPEC = REPO / "regcalc_assets" / "star" / "liquidity_star.yaml"
GOLDEN_DATE = dt.date(2024, 6, 28)  # conftest.GOLDEN_DATE
CALCULATION_GROUP = "Adjustment Scenarios"
# the measures the issue asks for, and the golden column each equals per entity and basis
GOLDEN_MEASURES = {"HQLA": "hqla", "HQLA Level 1": "hqla_l1", "HQLA Level 2A": "hqla_l2a", "HQLA Level 2B": "hqla_l2b",
                   "Total Outflows": "total_outflows", "Total Inflows": "total_inflows",
                   "Capped Inflows": "capped_inflows", "Net Outflows": "net_outflows", "LCR": "lcr", "ASF": "asf",
                   "RSF": "rsf", "NSFR": "nsfr"}
REQUIRED_MEASURES = ["HQLA", "Total Outflows", "Total Inflows", "Net Outflows", "LCR", "ASF", "RSF", "NSFR",
                     "Adjustment Impact"]
# TMDL dataType -> the warehouse (DuckDB) types it can hold
COMPATIBLE = {"int64": {"BIGINT", "INTEGER", "SMALLINT", "HUGEINT"}, "double": {"DOUBLE", "FLOAT", "BIGINT", "INTEGER"},
              "decimal": {"DOUBLE", "DECIMAL"}, "string": {"VARCHAR"}, "dateTime": {"DATE", "TIMESTAMP"},
              "boolean": {"BOOLEAN"}}
CREDENTIALS = re.compile(r"password|passwd|pwd\s*=|secret|token|user\s*id\s*=|uid\s*=|aws_access|iam_role", re.I)


# --- fixtures and the checks the tests share --------------------------------------------------


@pytest.fixture(scope="module")
def model() -> tmdl.Model:
    return tmdl.load(DEFINITION)


@pytest.fixture(scope="module")
def warehouse(golden_star_home):
    con = duckdb.connect(str(Path(golden_star_home) / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def schema(warehouse) -> dict[str, dict[str, str]]:
    """warehouse table -> {column: type}."""
    out: dict[str, dict[str, str]] = {}
    for table, column, type_ in warehouse.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall():
        out.setdefault(table, {})[column] = type_
    return out


def data_tables(model: tmdl.Model) -> list[str]:
    """The tables that read the warehouse (all but the calculation group)."""
    return [name for name, t in model.tables.items() if t.one("calculationGroup") is None]


def source_table(model: tmdl.Model, table: str) -> str:
    return tmdl.m_warehouse_table(model.partition(table).properties["source"])


def source_column(model: tmdl.Model, table: str, column: str) -> str:
    return model.columns(table)[column].properties["sourceColumn"]


def relationship_ends(model: tmdl.Model, rel: tmdl.Node) -> tuple[str, str, str, str]:
    """(from table, from column, to table, to column) in model names."""
    return (*tmdl.split_reference(rel.properties["fromColumn"]), *tmdl.split_reference(rel.properties["toColumn"]))


def in_warehouse(model: tmdl.Model, table: str, column: str) -> tuple[str, str]:
    return source_table(model, table), source_column(model, table, column)


def mode(model: tmdl.Model, table: str) -> str:
    return model.partition(table).properties["mode"]


def warehouse_problems(model: tmdl.Model, schema: dict[str, dict[str, str]]) -> list[str]:
    """Every way the model's tables and columns miss the warehouse."""
    found = []
    for table in data_tables(model):
        try:
            source = model.partition(table).properties["source"]
            wtable, selected = tmdl.m_warehouse_table(source), tmdl.m_selected_columns(source)
        except (tmdl.TmdlError, KeyError) as exc:
            found.append(f"{table}: {exc}")
            continue
        if wtable not in schema:
            found.append(f"{table}: reads {wtable}, which is not a warehouse table")
            continue
        columns = model.columns(table)
        sources = [c.properties.get("sourceColumn") for c in columns.values()]
        if sorted(selected) != sorted(sources):
            found.append(f"{table}: its M keeps {sorted(set(selected) ^ set(sources))} that the columns do not "
                         f"(or the reverse)")
        for name, col in columns.items():
            src, type_ = col.properties.get("sourceColumn"), col.properties.get("dataType")
            if src not in schema[wtable]:
                found.append(f"{table}[{name}]: sourceColumn {src!r} is not a column of {wtable}")
            elif schema[wtable][src] not in COMPATIBLE.get(type_, set()):
                found.append(f"{table}[{name}]: dataType {type_} cannot hold {wtable}.{src} ({schema[wtable][src]})")
    return found


def duplicate_keys(con, table: str, column: str) -> tuple[int, int]:
    """(rows beyond the first per key value, rows with a null key) of a warehouse table."""
    return con.execute(f'SELECT count("{column}") - count(DISTINCT "{column}"), count(*) - count("{column}") '
                       f'FROM "{table}"').fetchone()


def dax_expressions(model: tmdl.Model) -> list[tuple[str, str]]:
    """(what, DAX) for every DAX expression of the model."""
    out = []
    for table in model.tables.values():
        for m in table.all("measure"):
            out.append((f"measure [{m.name}]", m.default))
            out += [(f"format of [{m.name}]", f.default) for f in m.all("formatStringDefinition")]
        for c in table.all("column"):
            if "expression" in c.properties:
                out.append((f"column {table.name}[{c.name}]", c.properties["expression"]))
        group = table.one("calculationGroup")
        if group is not None:
            for item in group.all("calculationItem"):
                out.append((f"calculation item {item.name}", item.default))
                out += [(f"format of item {item.name}", f.default) for f in item.all("formatStringDefinition")]
    return out


def metadata(model: tmdl.Model):
    import sidemantic_dax

    return sidemantic_dax.ModelMetadata(tables=[
        sidemantic_dax.ModelTable(name=name, columns=[c.name for c in t.all("column")],
                                  measures=[m.name for m in t.all("measure")])
        for name, t in model.tables.items()])


def evaluator(model: tmdl.Model, con) -> dax.Evaluator:
    """Measures evaluated with sums and distinct values computed in SQL over the warehouse,
    filters reaching a table through the model's relationships (a filter on a table the measure's
    table is not related to has no effect, as in the engine)."""
    rels = [relationship_ends(model, r) for r in model.relationships if r.properties.get("isActive") != "false"]

    def where(table: str, filters: dict, alias: str = "f") -> tuple[str, str, list]:
        joins, conds, params = [], [], []
        for n, ((ftable, fcolumn), value) in enumerate(sorted(filters.items())):
            if ftable == table:
                conds.append(f'{alias}."{source_column(model, table, fcolumn)}" = ?')
            else:
                link = [r for r in rels if r[0] == table and r[2] == ftable]
                if not link:
                    continue
                _, fk, _, pk = link[0]
                joins.append(f'JOIN "{source_table(model, ftable)}" d{n} ON {alias}."{source_column(model, table, fk)}" '
                             f'= d{n}."{source_column(model, ftable, pk)}"')
                conds.append(f'd{n}."{source_column(model, ftable, fcolumn)}" = ?')
            params.append(value)
        return " ".join(joins), (" WHERE " + " AND ".join(conds)) if conds else "", params

    def total(table, column, filters):
        joins, cond, params = where(table, filters)
        return con.execute(f'SELECT SUM(f."{source_column(model, table, column)}") FROM "{source_table(model, table)}" f '
                           f"{joins}{cond}", params).fetchone()[0]

    def values(table, column, filters):
        same = {k: v for k, v in filters.items() if k[0] == table}
        _, cond, params = where(table, same)
        return [r[0] for r in con.execute(f'SELECT DISTINCT f."{source_column(model, table, column)}" '
                                          f'FROM "{source_table(model, table)}" f{cond}', params).fetchall()]

    measures = {name: node.default for name, (_, node) in model.measures().items()}
    return dax.Evaluator(measures, total, values)


def golden_rows(golden: Path, name: str) -> dict[str, dict[str, str]]:
    with open(golden / name, newline="") as fh:
        return {row["entity_id"]: row for row in csv.DictReader(fh)}


def entity_filter(entity: str, basis: str | None = None) -> dict:
    out = {("dim_legal_entity", "entity_id"): entity, ("dim_date", "date"): GOLDEN_DATE}
    if basis:
        out[("dim_basis", "basis")] = basis
    return out


# --- the project ------------------------------------------------------------------------------


def test_the_project_files_point_at_each_other():
    pbip = json.loads((POWERBI / "regcalc.pbip").read_text())
    reports = [a["report"]["path"] for a in pbip["artifacts"] if "report" in a]
    assert reports == ["regcalc.Report"]
    pbir = json.loads((POWERBI / "regcalc.Report" / "definition.pbir").read_text())
    model_dir = (POWERBI / "regcalc.Report" / pbir["datasetReference"]["byPath"]["path"]).resolve()
    assert model_dir == SEMANTIC_MODEL.resolve()
    assert json.loads((SEMANTIC_MODEL / "definition.pbism").read_text())["version"] == "4.0"  # TMDL definition
    report = json.loads((POWERBI / "regcalc.Report" / "report.json").read_text())
    assert [s["displayName"] for s in report["sections"]] == ["Liquidity"]
    assert (DEFINITION / "model.tmdl").is_file() and not (SEMANTIC_MODEL / "model.bim").exists()


def test_the_tmdl_parses(model):
    assert int(model.database.properties["compatibilityLevel"]) >= 1500  # calculation groups need 1500
    assert model.model.properties.get("discourageImplicitMeasures") is True  # required with a calculation group
    # one file per table, named after it, and model.tmdl orders exactly the tables there are
    files = {p.stem for p in (DEFINITION / "tables").glob("*.tmdl")}
    assert files == set(model.tables)
    assert sorted(tmdl.unquote_name(r.name.removeprefix("table ")) for r in model.refs) == sorted(model.tables)
    for name, table in model.tables.items():
        assert table.description, f"table {name} has no /// description"
        if name in data_tables(model):
            assert model.partition(name).default == "m" and mode(model, name) in ("import", "directQuery", "dual")


# --- the warehouse ------------------------------------------------------------------------------


def test_every_table_and_column_exists_in_the_warehouse(model, schema):
    assert warehouse_problems(model, schema) == []


def test_the_model_covers_the_star_and_its_relationships(model):
    from regcalc_core.star.spec import StarSpec

    spec = StarSpec.from_yaml(STAR_SPEC)
    roles = spec.classify()
    out = {r.table: r.output for r in roles}
    aggregates = spec.aggregates_of(roles)
    want_tables = set(out.values()) | {"dim_date"} | {f"agg_{a.name}" for a in aggregates}
    assert {source_table(model, t) for t in data_tables(model)} == want_tables

    want = set()
    for rel in spec.relationships:
        if rel.type == "n:n":  # the bridge holds both surrogate keys
            for end in (rel.many[0], rel.one[0]):
                want.add((out[rel.via], spec.own_key(end), out[end], spec.own_key(end)))
        else:
            want.add((out[rel.many[0]], spec.key_column(rel), out[rel.one[0]], spec.own_key(rel.one[0])))
    for role in roles:
        if role.role == "fact" and spec.tables[role.table].date:
            want.add((role.output, "date_key", "dim_date", "date_key"))
    for agg in aggregates:  # relationship-based aggregations: the same dimensions as their fact
        for key in agg.grain:
            want.add((f"agg_{agg.name}", key, f"dim_{key.removesuffix('_key')}", key))
    got = set()
    for rel in model.relationships:
        ft, fc, tt, tc = relationship_ends(model, rel)
        got.add((*in_warehouse(model, ft, fc), *in_warehouse(model, tt, tc)))
    assert got == want, f"missing: {sorted(want - got)}; not in the star: {sorted(got - want)}"


def test_relationships_are_well_formed(model):
    pairs, from_columns = {}, set()
    for rel in model.relationships:
        ft, fc, tt, tc = relationship_ends(model, rel)
        assert fc in model.columns(ft) and tc in model.columns(tt), rel.name
        assert rel.name == f"{ft}__{fc}", "relationships are named <from table>__<from column>"
        assert (ft, fc) not in from_columns, f"{ft}.{fc} has two relationships"
        from_columns.add((ft, fc))
        if rel.properties.get("isActive") != "false":
            assert frozenset((ft, tt)) not in pairs, f"two active relationships between {ft} and {tt}"
            pairs[frozenset((ft, tt))] = rel.name
        assert model.columns(tt)[tc].properties.get("isKey") is True or tt.startswith("fact_"), \
            f"{tt}.{tc} (one side) is not the table's key"
        if mode(model, ft) == "directQuery":  # inner joins on DirectQuery: every key resolves (tested below)
            assert rel.properties.get("relyOnReferentialIntegrity") is True, rel.name
            assert mode(model, tt) == "dual", f"{tt} filters the DirectQuery {ft}: it must be Dual"
    both = [r for r in model.relationships if r.properties.get("crossFilteringBehavior") == "bothDirections"]
    assert [r.name for r in both] == ["bridge_position_rule__position_key"]  # the bridge filters its positions


def test_every_relationship_key_is_unique_on_its_dimension_side(model, warehouse):
    for rel in model.relationships:
        _, _, tt, tc = relationship_ends(model, rel)
        table, column = in_warehouse(model, tt, tc)
        assert duplicate_keys(warehouse, table, column) == (0, 0), f"{rel.name}: {table}.{column} is not a key"


def test_every_foreign_key_resolves(model, warehouse):
    for rel in model.relationships:
        ft, fc, tt, tc = relationship_ends(model, rel)
        (mt, mc), (ot, oc) = in_warehouse(model, ft, fc), in_warehouse(model, tt, tc)
        orphans = warehouse.execute(f'SELECT count(*) FROM "{mt}" m LEFT JOIN "{ot}" o ON m."{mc}" = o."{oc}" '
                                    f'WHERE o."{oc}" IS NULL').fetchone()[0]
        assert orphans == 0, f"{rel.name}: {orphans} rows of {mt} whose {mc} is not in {ot}.{oc}"
    assert warehouse.execute("SELECT count(*) FROM fact_position").fetchone()[0] > 0  # not vacuous


# --- DAX ------------------------------------------------------------------------------------


def test_every_dax_expression_parses_and_resolves(model):
    expressions = dax_expressions(model)
    assert len(expressions) >= len(REQUIRED_MEASURES) + 3
    meta = metadata(model)
    found = {what: dax.problems(text, meta) for what, text in expressions}
    assert {what: p for what, p in found.items() if p} == {}
    # no measure shares a name with a column (DAX names are case-insensitive)
    columns = {c.name.lower() for t in model.tables.values() for c in t.all("column")}
    assert not [m for m in model.measures() if m.lower() in columns]


def test_the_measures_the_issue_asks_for(model):
    measures = model.measures()
    assert [m for m in REQUIRED_MEASURES if m not in measures] == []
    lcr, nsfr = dax.parse(measures["LCR"][1].default), dax.parse(measures["NSFR"][1].default)
    assert lcr == dax.parse("DIVIDE([HQLA], [Net Outflows])")  # a ratio of sums ...
    assert nsfr == dax.parse("DIVIDE([ASF], [RSF])")
    for name in ("HQLA", "Net Outflows", "ASF", "RSF"):
        assert dax.functions(dax.parse(measures[name][1].default)) >= {"SUM"}, name
    # ... and never a sum of the entities' ratios: the ratio columns are not even in the model
    assert {"lcr", "nsfr"}.isdisjoint(model.columns("fact_metric")) and {"lcr", "nsfr"}.isdisjoint(
        c.properties["sourceColumn"] for c in model.columns("agg_daily_liquidity").values())


def test_every_text_a_dax_expression_expects_is_in_the_warehouse(model, warehouse):
    checked = set()
    for what, text in dax_expressions(model):
        for table, column, value in dax.literal_filters(dax.parse(text)):
            wt, wc = in_warehouse(model, table, column)
            n = warehouse.execute(f'SELECT count(*) FROM "{wt}" WHERE "{wc}" = ?', [value]).fetchone()[0]
            assert n > 0, f"{what} compares {table}[{column}] with {value!r}, which {wt}.{wc} never holds"
            checked.add((table, column, value))
    assert {("dim_basis", "basis", "BASE"), ("dim_basis", "basis", "ADJUSTED")} <= checked


def test_the_metric_measures_give_the_golden_figures(model, warehouse, golden):
    ev = evaluator(model, warehouse)
    want = {"BASE": golden_rows(golden, "expected_base.csv"), "ADJUSTED": golden_rows(golden, "expected_adjusted.csv")}
    for basis, rows in want.items():
        for entity, row in rows.items():
            for measure, column in GOLDEN_MEASURES.items():
                got = ev.measure(measure, entity_filter(entity, basis))
                assert got == pytest.approx(float(row[column]), rel=1e-9, abs=1e-6), (entity, basis, measure)
    for entity, row in want["ADJUSTED"].items():  # no basis chosen: the adjusted figures, never base + adjusted
        for measure, column in GOLDEN_MEASURES.items():
            assert ev.measure(measure, entity_filter(entity)) == pytest.approx(float(row[column]), rel=1e-9, abs=1e-6)
        impact = float(row["lcr"]) - float(want["BASE"][entity]["lcr"])
        assert ev.measure("Adjustment Impact", entity_filter(entity)) == pytest.approx(impact, rel=1e-9, abs=1e-12)
        assert impact != 0  # the golden rules move every entity's LCR
    # over both entities: ratios of the summed figures, not sums of the entities' ratios
    both = {("dim_date", "date"): GOLDEN_DATE}
    hqla = sum(float(r["hqla"]) for r in want["ADJUSTED"].values())
    net = sum(float(r["net_outflows"]) for r in want["ADJUSTED"].values())
    assert ev.measure("LCR", both) == pytest.approx(hqla / net, rel=1e-9)
    assert ev.measure("LCR", both) != pytest.approx(sum(float(r["lcr"]) for r in want["ADJUSTED"].values()))


def test_the_calculation_group_is_adjusted_minus_base_through_the_basis(model, warehouse, golden):
    group = model.tables[CALCULATION_GROUP].one("calculationGroup")
    items = sorted(group.all("calculationItem"), key=lambda i: int(i.properties["ordinal"]))
    assert [i.name for i in items] == ["Base", "With Adjustments", "Variance"]
    on = {"Base": "BASE", "With Adjustments": "ADJUSTED"}
    for item in items[:2]:
        assert dax.parse(item.default) == dax.parse(f"CALCULATE(SELECTEDMEASURE(), 'dim_basis'[basis] = \"{on[item.name]}\")")
    assert dax.parse(items[2].default) == dax.parse(
        f"{items[1].default} - {items[0].default}"), "Variance is With Adjustments minus Base, each through dim_basis"
    assert [c.name for c in model.tables[CALCULATION_GROUP].all("column")] == ["Scenario", "Ordinal"]

    ev = evaluator(model, warehouse)
    base, adjusted = golden_rows(golden, "expected_base.csv"), golden_rows(golden, "expected_adjusted.csv")
    by_name = {i.name: i.default for i in items}
    for entity in adjusted:
        for measure, column in [("LCR", "lcr"), ("NSFR", "nsfr"), ("HQLA", "hqla"), ("Net Outflows", "net_outflows")]:
            b, a = float(base[entity][column]), float(adjusted[entity][column])
            for basis in (None, "BASE", "ADJUSTED"):  # whatever basis the visual filters, an item sets its own
                f = entity_filter(entity, basis)
                assert ev.measure(measure, f, by_name["Base"]) == pytest.approx(b, rel=1e-9, abs=1e-6)
                assert ev.measure(measure, f, by_name["With Adjustments"]) == pytest.approx(a, rel=1e-9, abs=1e-6)
                assert ev.measure(measure, f, by_name["Variance"]) == pytest.approx(a - b, rel=1e-9, abs=1e-6)


def test_the_design_documents_calculation_group_is_rejected(model):
    """The design's items (shared/design/design-document.md, "Dataset Design") compare a flag column
    that the star does not have, and its Variance subtracts measures that do not exist."""
    meta = metadata(model)
    with_adjustments = "CALCULATE(SELECTEDMEASURE(), 'Metrics'[adjustment_flag] = TRUE)"
    variance = "[With Adjustments] - [Base]"
    assert any("Metrics" in p for p in dax.problems(with_adjustments, meta))
    assert len(dax.problems(variance, meta)) == 2


# --- refresh, aggregations, source ----------------------------------------------------------


def test_the_import_facts_refresh_incrementally_by_business_date(model, schema):
    facts = [t for t in data_tables(model) if source_table(model, t).startswith(("fact_", "bridge_"))]
    detail = {tmdl.split_reference(c.one("alternateOf").properties["baseColumn"])[0]
              for t in model.tables.values() for c in t.all("column")
              if c.one("alternateOf") is not None and "baseColumn" in c.one("alternateOf").properties}
    # Power BI requires an aggregation's detail table to be DirectQuery: those facts carry no policy
    assert {t for t in facts if mode(model, t) == "directQuery"} == detail == {"fact_metric", "fact_component"}
    in_range = re.compile(r"Table\.SelectRows\(Source, each \[business_date\] >= Date\.From\(RangeStart\) "
                          r"and \[business_date\] < Date\.From\(RangeEnd\)\)")
    policies = 0
    for table in facts:
        policy = model.tables[table].one("refreshPolicy")
        if mode(model, table) == "directQuery":
            assert policy is None, table
            continue
        assert mode(model, table) == "import" and policy is not None, f"{table} has no refresh policy"
        props = policy.properties
        assert props["policyType"] == "basic" and props["mode"] == "import"
        assert props["rollingWindowGranularity"] in ("day", "month", "quarter", "year")
        assert props["incrementalGranularity"] in ("day", "month", "quarter", "year")
        assert int(props["rollingWindowPeriods"]) > 0 and int(props["incrementalPeriods"]) > 0
        assert props["sourceExpression"] == model.partition(table).properties["source"], table
        assert in_range.search(props["sourceExpression"]), table  # [RangeStart, RangeEnd) on the business date
        assert "business_date" in {c.properties["sourceColumn"] for c in model.columns(table).values()}
        assert schema[source_table(model, table)]["business_date"] == "DATE"
        assert in_range.search(props["pollingExpression"]) and "List.Max(InRange[loaded_at])" in props["pollingExpression"]
        assert "loaded_at" in schema[source_table(model, table)]
        policies += 1
    assert policies == 3  # fact_position, fact_adjustment, bridge_position_rule
    for name in ("RangeStart", "RangeEnd"):
        assert re.fullmatch(r'#datetime\([\d, ]+\) meta \[IsParameterQuery=true, Type="DateTime", '
                            r'IsParameterQueryRequired=true\]', model.expressions[name].default), name


def test_the_aggregate_tables_are_declared_as_aggregations(model, warehouse):
    from regcalc_core.star.spec import StarSpec

    spec = StarSpec.from_yaml(STAR_SPEC)
    roles = spec.classify()
    out = {r.table: r.output for r in roles}
    for agg in spec.aggregates_of(roles):
        table = f"agg_{agg.name}"
        assert model.tables[table].properties.get("isHidden") is True and mode(model, table) == "import"
        detail = out[agg.fact]
        assert mode(model, detail) == "directQuery"
        group_by, sums, counts = [], [], []
        for name, col in model.columns(table).items():
            alt = col.one("alternateOf")
            assert alt is not None, f"{table}[{name}] is not declared as an aggregation"
            kind = alt.properties["summarization"]
            if kind == "count":
                assert alt.properties["baseTable"] == detail
                counts.append(source_column(model, table, name))
                continue
            base_table, base_column = tmdl.split_reference(alt.properties["baseColumn"])
            assert base_table == detail and base_column in model.columns(detail), f"{table}[{name}]"
            base = model.columns(detail)[base_column]
            assert base.properties["dataType"] == col.properties["dataType"], f"{table}[{name}]"
            assert base.properties["sourceColumn"] == col.properties["sourceColumn"], f"{table}[{name}]"
            (group_by if kind == "groupBy" else sums).append(col.properties["sourceColumn"])
            assert kind in ("groupBy", "sum"), f"{table}[{name}]: {kind}"
        assert sorted(group_by) == sorted(agg.grain) and sums and counts == ["row_count"]
        # the declared mapping holds on the data: the aggregate is its detail summed by the grain
        keys = ", ".join(f'"{k}"' for k in group_by)
        n = len(group_by)
        summed = ", ".join(f'"{s}"' for s in sums)
        agg_rows = {r[:n]: r[n:] for r in warehouse.execute(
            f'SELECT {keys}, {summed}, "{counts[0]}" FROM "{table}"').fetchall()}
        fact_rows = {r[:n]: r[n:] for r in warehouse.execute(
            f'SELECT {keys}, {", ".join(f"SUM({q})" for q in summed.split(", "))}, count(*) '
            f'FROM "{detail}" GROUP BY {keys}').fetchall()}
        assert agg_rows.keys() == fact_rows.keys() and agg_rows
        for key, values in fact_rows.items():
            assert agg_rows[key] == pytest.approx(values, rel=1e-9, abs=1e-6), (table, key)
        # every dimension the aggregate shares with its detail table is Dual (filters both)
        for rel in model.relationships:
            ft, _, tt, _ = relationship_ends(model, rel)
            if ft == table:
                assert mode(model, tt) == "dual", tt


def test_one_parameter_switches_the_source_between_postgresql_and_redshift(model):
    kind = model.expressions["WarehouseKind"].default
    assert re.search(r'List=\{"PostgreSQL", "Redshift"\}', kind) and "IsParameterQuery=true" in kind
    navigation = model.expressions["WarehouseTable"].default
    for needle in ('if WarehouseKind = "Redshift"', "AmazonRedshift.Database(WarehouseServer, WarehouseDatabase)",
                   'else if WarehouseKind = "PostgreSQL"', "PostgreSQL.Database(WarehouseServer, WarehouseDatabase)",
                   "{[Name = WarehouseSchema]}[Data]{[Name = tableName]}[Data]",
                   "{[Schema = WarehouseSchema, Item = tableName]}[Data]", "error "):
        assert needle in navigation, needle
    for name in ("WarehouseServer", "WarehouseDatabase", "WarehouseSchema"):
        assert 'Type="Text"' in model.expressions[name].default
    for table in data_tables(model):  # every partition goes through it; none names a connector itself
        source = model.partition(table).properties["source"]
        assert tmdl.m_warehouse_table(source) and ".Database(" not in source, table
    for path in POWERBI.rglob("*"):
        if path.is_file() and path.suffix != ".md":  # the model and project files, not the prose
            assert not CREDENTIALS.search(path.read_text(encoding="utf-8")), f"{path}: looks like a credential"


# --- the checkers reject a broken model -----------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("table t\n  column c\n", "tabs, not spaces"),
    ("table t\n\t\tcolumn c\n", "more than one level"),
    ("table t\n\tcolumn c\n\t\tdataTyp: int64\n", "'dataTyp' is not a property"),
    ("table t\n\tmeasure m = ```\n\t\t\tSUM(t[c])\n", "unterminated"),
    ("tabel t\n", "not a root object type"),
    ("table t\n\tcolumn c\n\tcolumn c\n", "duplicate column"),
    ("table t\n\tpartition p = m\n\t\tsource: let x = 1 in x\n", "is an expression"),
    ("table t\n\tmeasure m =\n\tcolumn c\n", "no expression"),
])
def test_the_tmdl_reader_rejects_malformed_text(text, message):
    with pytest.raises(tmdl.TmdlError, match=re.escape(message)):
        tmdl.parse(text)


@pytest.mark.parametrize("text", [
    "DIVIDE([HQLA], [Net Outflows]",  # unbalanced
    "SUM('fact_metric'[hqla_amount]))",
    "CALCULATE(SUM('fact_metric'[hqla_amount]) 'dim_basis'[basis] = \"BASE\")",  # a missing comma
    "'fact_metric[hqla_amount]",  # an unterminated quote
    "SUM('fact_metric'[hqla_amt])",  # no such column
    "SUM('fact_metric'[lcr])",  # the ratio column is left out: this names the measure LCR, not a column
    "SUM('fact_metrics'[hqla_amount])",  # no such table
    "DIVIDE([HQLA], [Net Outflow])",  # no such measure
    "SUMM('fact_metric'[hqla_amount])",  # no such function
    "DIVIDE([HQLA])",  # arity
])
def test_the_dax_check_rejects_broken_expressions(model, text):
    assert dax.problems(text, metadata(model)), text


def test_the_warehouse_check_rejects_a_missing_column(model, schema, tmp_path):
    copy = tmp_path / "definition"
    shutil.copytree(DEFINITION, copy)
    path = copy / "tables" / "fact_metric.tmdl"
    path.write_text(path.read_text().replace("sourceColumn: net_outflows", "sourceColumn: net_outflow")
                    .replace('"net_outflows"', '"net_outflow"'))
    found = warehouse_problems(tmdl.load(copy), schema)
    assert found == ["fact_metric[net_outflows]: sourceColumn 'net_outflow' is not a column of fact_metric"]
    path.write_text(path.read_text().replace('"net_outflow"', '"net_outflows"'))  # now the M disagrees too
    assert len(warehouse_problems(tmdl.load(copy), schema)) == 2


def test_the_key_check_rejects_a_key_that_is_not_unique(warehouse):
    duplicates, nulls = duplicate_keys(warehouse, "fact_metric", "legal_entity_key")  # two bases per entity
    assert duplicates > 0 and nulls == 0
