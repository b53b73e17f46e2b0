"""The Redshift warehouse without a cluster: its generated SQL (parsed with sqlglot's Redshift
dialect, expected texts worked out by hand from the table specs), its COPY manifest, its routing,
its literal escaping and staging swap executed on a real PostgreSQL (the SQL the two share), and
the direct -> staged fallback with the staged files written to a local moto S3 server."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from regcalc_resources import warehouse_redshift as rs
from regcalc_resources.warehouse import TABLES, create_table_sql

D = dt.date(2024, 6, 28)
IAM_ROLE = "arn:aws:iam::123456789012:role/RegcalcCopy"
NASTY = "x'); DROP TABLE t; --"
PG_TYPES = {"date": "DATE", "string": "TEXT", "double": "DOUBLE PRECISION", "bigint": "BIGINT", "int": "INTEGER",
            "bool": "BOOLEAN", "timestamp": "TIMESTAMP"}


def parse(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="redshift")


def metrics(rows: list[tuple]) -> pa.Table:
    """liquidity_metrics rows (entity_id, basis, hqla, lcr, final_rules_version) on D; the other
    columns are left out (null)."""
    entity, basis, hqla, lcr, version = zip(*rows) if rows else ((),) * 5
    return pa.table({"business_date": pa.array([D] * len(rows), pa.date32()), "entity_id": pa.array(entity, pa.string()),
                     "basis": pa.array(basis, pa.string()), "hqla": pa.array(hqla, pa.float64()),
                     "lcr": pa.array(lcr, pa.float64()), "final_rules_version": pa.array(version, pa.string())})


# --------------------------------------------------------------------------- (a) generated SQL

def test_ddl_for_adjustment_trail_is_exactly_the_design():
    # worked out column by column from TABLES["adjustment_trail"]: strings VARCHAR(256) ZSTD, ints AZ64,
    # doubles and booleans ZSTD (AZ64 is invalid for them), the leading sort column RAW
    assert rs.create_table("adjustment_trail") == (
        "CREATE TABLE IF NOT EXISTS adjustment_trail (business_date DATE NOT NULL ENCODE RAW, "
        "entity_id VARCHAR(256) NOT NULL ENCODE ZSTD, stage VARCHAR(256) NOT NULL ENCODE ZSTD, "
        "step INTEGER NOT NULL ENCODE AZ64, rule_id VARCHAR(256) ENCODE ZSTD, version INTEGER ENCODE AZ64, "
        "row_key VARCHAR(256) NOT NULL ENCODE ZSTD, source_system VARCHAR(256) ENCODE ZSTD, "
        "position_id VARCHAR(256) ENCODE ZSTD, component VARCHAR(256) ENCODE ZSTD, "
        "field VARCHAR(256) NOT NULL ENCODE ZSTD, value_before DOUBLE PRECISION ENCODE ZSTD, "
        "value_after DOUBLE PRECISION ENCODE ZSTD, clamped BOOLEAN NOT NULL ENCODE ZSTD, "
        "loaded_at TIMESTAMP ENCODE AZ64, run_id VARCHAR(256) ENCODE ZSTD, "
        "PRIMARY KEY (business_date, entity_id, stage, row_key, step)) "
        "DISTSTYLE KEY DISTKEY(entity_id) COMPOUND SORTKEY(business_date, entity_id)")


@pytest.mark.parametrize("table", sorted(TABLES))
def test_ddl_parses_with_distkey_sortkey_and_encodings(table):
    sql = rs.create_table(table)
    assert "DISTKEY(entity_id)" in sql and "SORTKEY(business_date, entity_id)" in sql
    tree = parse(sql)
    assert isinstance(tree, exp.Create) and tree.args["exists"]
    assert tree.find(exp.DistKeyProperty).this.name == "entity_id"
    assert [i.name for i in tree.find(exp.SortKeyProperty).this] == ["business_date", "entity_id"]
    columns = {c.name: c for c in tree.find_all(exp.ColumnDef)}
    assert list(columns) == TABLES[table].names
    encodings = {name: c.find(exp.EncodeColumnConstraint).this.name for name, c in columns.items()}
    kinds = {name: c.args["kind"].this for name, c in columns.items()}
    assert encodings["business_date"] == "RAW"
    assert encodings["entity_id"] == "ZSTD" and kinds["entity_id"] == exp.DataType.Type.VARCHAR
    assert encodings["loaded_at"] == "AZ64" and kinds["loaded_at"] == exp.DataType.Type.TIMESTAMP
    for name, kind in kinds.items():  # Redshift rejects AZ64 on anything but ints, decimals, dates, timestamps
        if kind in (exp.DataType.Type.DOUBLE, exp.DataType.Type.BOOLEAN, exp.DataType.Type.VARCHAR):
            assert encodings[name] == "ZSTD", name
        if kind in (exp.DataType.Type.INT, exp.DataType.Type.BIGINT) or (kind == exp.DataType.Type.DATE and name != "business_date"):
            assert encodings[name] == "AZ64", name
    key = tree.find(exp.PrimaryKey)
    if TABLES[table].declare_key:
        assert [i.name for i in key.expressions] == list(TABLES[table].key)
    else:
        assert key is None


def test_ddl_specific_columns():
    metrics_ddl = rs.create_table("liquidity_metrics")
    assert "hqla DOUBLE PRECISION ENCODE ZSTD" in metrics_ddl  # a double: ZSTD (AZ64 is not valid for doubles)
    assert "positions_accepted BIGINT ENCODE AZ64" in metrics_ddl
    assert "basis VARCHAR(256) NOT NULL ENCODE ZSTD" in metrics_ddl
    assert "source_file VARCHAR(1024) ENCODE ZSTD" in rs.create_table("lineage")


def test_staging_copy_and_swap_texts():
    assert rs.create_staging("liquidity_metrics", "liquidity_metrics_staging") == \
        "CREATE TEMP TABLE liquidity_metrics_staging (LIKE liquidity_metrics)"
    copy = rs.copy_from_manifest("liquidity_metrics_staging",
                                 "s3://bucket/regcalc/staging/liquidity_metrics/r1/liquidity_metrics.manifest", IAM_ROLE)
    assert copy == ("COPY liquidity_metrics_staging FROM "
                    "'s3://bucket/regcalc/staging/liquidity_metrics/r1/liquidity_metrics.manifest' "
                    "IAM_ROLE 'arn:aws:iam::123456789012:role/RegcalcCopy' FORMAT AS PARQUET MANIFEST")
    assert rs.swap("liquidity_components", "liquidity_components_staging",
                   [("2024-06-28", "LE_US"), (D, "LE_UK"), ("2024-06-28", "LE_US")], "0b7c'x") == [
        "DELETE FROM liquidity_components WHERE (business_date = '2024-06-28' AND entity_id = 'LE_UK') "
        "OR (business_date = '2024-06-28' AND entity_id = 'LE_US')",
        "INSERT INTO liquidity_components (business_date, entity_id, reporting_currency, basis, component, "
        "component_order, amount, position_count, aggregation_rules_version, loaded_at, run_id) "
        "SELECT business_date, entity_id, reporting_currency, basis, component, component_order, amount, "
        "position_count, aggregation_rules_version, GETDATE(), '0b7c''x' FROM liquidity_components_staging"]
    # no partitions: nothing to delete, only the insert
    assert [s.split()[0] for s in rs.swap("lineage", "lineage_staging", [], "r")] == ["INSERT"]
    assert "now(), 'r' FROM" in rs.swap("lineage", "lineage_staging", [], "r", now="now()")[0]
    with pytest.raises(ValueError):
        rs.swap("lineage", "lineage_staging", [], "r", now="now()); DROP TABLE lineage; --")


def test_copy_parses_with_parquet_manifest_and_iam_role():
    tree = parse(rs.copy_from_manifest("s", "s3://b/p/t.manifest", IAM_ROLE))
    assert isinstance(tree, exp.Copy) and tree.this.name == "s"
    assert [f.this for f in tree.args["files"]] == ["s3://b/p/t.manifest"]
    assert tree.args["credentials"].args["iam_role"].this == IAM_ROLE
    params = {p.this.name: (p.expression.name if p.expression else None) for p in tree.args["params"]}
    assert params == {"FORMAT": "PARQUET", "MANIFEST": None}
    with pytest.raises(ValueError):
        rs.copy_from_manifest("s", "https://example.com/m", IAM_ROLE)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_statement_of_both_paths_parses(table):
    rows = rs.conform(table, pa.table({"business_date": pa.array([D], pa.date32()), "entity_id": ["LE_US"]}))
    direct = rs.direct_load_statements(table, rows, [(D, "LE_US"), (D, "LE_'UK")], str(uuid.uuid4()))
    staged = rs.staged_load_statements(table, "s3://b/regcalc/m.manifest", IAM_ROLE, [(D, "LE_US")], "r1")
    kinds = {exp.Create: "create", exp.Insert: "insert", exp.Copy: "copy", exp.Delete: "delete", exp.Drop: "drop"}
    assert [kinds[type(parse(s))] for s in direct] == ["create", "create", "insert", "delete", "insert", "drop"]
    assert [kinds[type(parse(s))] for s in staged] == ["create", "create", "copy", "delete", "insert", "drop"]


# --------------------------------------------------------------------------- literals and batches

def test_insert_values_literals_by_hand():
    sql = rs.insert_values("s", ["a", "b", "c", "d", "e"], [
        ("O'Brien", 1.5, True, None, D),
        (NASTY, -0.1, False, 7, None),
    ])
    assert sql == ["INSERT INTO s (a, b, c, d, e) VALUES ('O''Brien', 1.5, TRUE, NULL, '2024-06-28'), "
                   "('x''); DROP TABLE t; --', -0.1, FALSE, 7, NULL)"]
    tree = parse(sql[0])
    assert isinstance(tree, exp.Insert)  # one statement: the payload stayed inside its literal
    assert [lit.this for lit in tree.find_all(exp.Literal) if lit.is_string] == ["O'Brien", "2024-06-28", NASTY]


def test_special_values():
    assert rs.literal(float("nan")) == "CAST('NaN' AS DOUBLE PRECISION)"
    assert rs.literal(float("-inf")) == "CAST('-Infinity' AS DOUBLE PRECISION)"
    assert rs.literal(1e-05) == "1e-05" and rs.literal(1 / 3) == "0.3333333333333333"
    assert rs.literal(dt.datetime(2024, 6, 28, 17, 5, 1)) == "'2024-06-28 17:05:01.000000'"
    assert rs.literal(2**40) == "1099511627776"


def test_backslashes_are_doubled_for_redshift_only():
    # Redshift treats a backslash in an ordinary literal as an escape (its QUOTE_LITERAL doubles them)
    assert rs.quote_string("C:\\dir\\") == "'C:\\\\dir\\\\'"
    assert rs.quote_string("C:\\dir\\", backslash_escapes=False) == "'C:\\dir\\'"
    # sqlglot's Redshift dialect agrees: the doubled form reads back as the value ...
    tree = parse("SELECT " + rs.quote_string("it's C:\\dir\\"))
    assert tree.find(exp.Literal).this == "it's C:\\dir\\"
    # ... while the standard-conforming form would swallow the closing quote
    with pytest.raises(sqlglot.errors.TokenError):
        parse("INSERT INTO s (a, b) VALUES ('C:\\dir\\', 'x')")
    with pytest.raises(ValueError):
        rs.quote_string("nul\x00")


def test_statements_are_capped_in_bytes():
    # header "INSERT INTO s (a) VALUES " is 25 bytes, each row "('xx')" 6, the separator ", " 2:
    # one row 31, two rows 39, three 47
    rows = [("xx",), ("yy",), ("zz",)]
    assert rs.insert_values("s", ["a"], rows, max_bytes=47) == ["INSERT INTO s (a) VALUES ('xx'), ('yy'), ('zz')"]
    assert rs.insert_values("s", ["a"], rows, max_bytes=39) == [
        "INSERT INTO s (a) VALUES ('xx'), ('yy')", "INSERT INTO s (a) VALUES ('zz')"]
    assert len(rs.insert_values("s", ["a"], rows, max_bytes=38)) == 3
    assert rs.insert_values("s", ["a"], [], max_bytes=38) == []
    with pytest.raises(ValueError, match="31 bytes"):
        rs.insert_values("s", ["a"], rows, max_bytes=30)
    # bytes, not characters: "('éé')" is 6 characters but 8 bytes of UTF-8 -> 33 bytes
    with pytest.raises(ValueError, match="33 bytes"):
        rs.insert_values("s", ["a"], [("éé",)], max_bytes=32)
    assert rs.insert_values("s", ["a"], [("éé",)], max_bytes=33) == ["INSERT INTO s (a) VALUES ('éé')"]


def test_default_cap_is_below_redshifts_16_mb():
    assert rs.MAX_STATEMENT_BYTES <= 16 * 1024 * 1024
    rows = [("y" * 200,)] * 100_000  # ~20 MB of literals
    statements = rs.insert_values("s", ["a"], rows)
    assert len(statements) == 3 and all(len(s.encode()) <= rs.MAX_STATEMENT_BYTES for s in statements)
    assert sum(s.count("('") for s in statements) == 100_000


# --------------------------------------------------------------------------- (b) manifest

def test_manifest_for_two_files():
    prefix = "s3://regcalc-staging/regcalc/staging/liquidity_metrics/run-1"
    assert rs.manifest([(f"{prefix}/part-00000.parquet", 1234), (f"{prefix}/part-00001.parquet", 987)]) == {
        "entries": [
            {"url": f"{prefix}/part-00000.parquet", "mandatory": True, "meta": {"content_length": 1234}},
            {"url": f"{prefix}/part-00001.parquet", "mandatory": True, "meta": {"content_length": 987}},
        ]}
    with pytest.raises(ValueError):
        rs.manifest([("/tmp/part-0.parquet", 1)])


# --------------------------------------------------------------------------- (c) routing

def test_routing_thresholds():
    assert rs.route(99_999, "liquidity_metrics") == "direct"
    assert rs.route(100_000, "liquidity_metrics") == "staged"
    assert rs.route(49_999, "adjustment_trail") == "direct"
    assert rs.route(50_000, "adjustment_trail") == "staged"
    assert rs.route(99_999, "lineage") == "direct" and rs.route(0, "lineage") == "direct"
    # configurable
    assert rs.route(10, "liquidity_metrics", direct_threshold=10) == "staged"
    assert rs.route(9, "liquidity_metrics", direct_threshold=10) == "direct"
    assert rs.route(60_000, "adjustment_trail", adjustment_threshold=70_000) == "direct"
    assert rs.route(60_000, "liquidity_metrics", direct_threshold=70_000, adjustment_threshold=1) == "direct"


def test_thresholds_and_secrets_from_the_environment(monkeypatch):
    monkeypatch.setenv("REGCALC_REDSHIFT_DSN", "redshift://loader:top%40secret@cluster.example:5439/regcalc?sslmode=verify-full")
    monkeypatch.setenv("REGCALC_REDSHIFT_IAM_ROLE", IAM_ROLE)
    monkeypatch.setenv("REGCALC_REDSHIFT_STAGING_BUCKET", "regcalc-staging")
    monkeypatch.setenv("REGCALC_REDSHIFT_DIRECT_THRESHOLD", "1000")
    monkeypatch.delenv("REGCALC_REDSHIFT_ADJUSTMENT_THRESHOLD", raising=False)
    warehouse = rs.RedshiftWarehouse.from_env().process_config_and_initialize()
    assert (warehouse.direct_threshold, warehouse.adjustment_threshold) == (1000, 50_000)
    assert warehouse.iam_role == IAM_ROLE and warehouse.staging_bucket == "regcalc-staging"
    assert warehouse._connect_kwargs() == {"host": "cluster.example", "port": 5439, "user": "loader",
                                           "password": "top@secret", "database": "regcalc", "sslmode": "verify-full"}
    assert "secret" not in repr(warehouse) and "secret" not in str(warehouse)
    with pytest.raises(ValueError) as error:
        rs.parse_dsn("mysql://loader:top-secret@cluster.example/regcalc")
    assert "secret" not in str(error.value)


# --------------------------------------------------------------------------- (d), (e) on PostgreSQL

@pytest.fixture()
def pg(postgres_uri):
    """A psycopg connection (DB-API, autocommit off) in a scratch schema, with ordinary string
    literals read as Redshift reads them (backslash escapes: standard_conforming_strings off)."""
    import psycopg

    schema = f"rs_{uuid.uuid4().hex[:10]}"
    con = psycopg.connect(postgres_uri)
    con.execute(f"CREATE SCHEMA {schema}")
    con.execute(f"SET search_path TO {schema}")
    con.execute("SET standard_conforming_strings = off")
    con.execute("SET escape_string_warning = off")
    con.commit()
    yield con
    con.rollback()
    con.execute(f"DROP SCHEMA {schema} CASCADE")
    con.commit()
    con.close()


STRINGS = ["O'Brien", NASTY, "C:\\dir\\", "\\'", "'", "tab\tnew\nline", "ünïcødé €", "%s %% ? $1", ""]


@pytest.mark.slow
def test_literals_round_trip_through_postgresql(pg):
    assert pg.execute("SHOW standard_conforming_strings").fetchone() == ("off",)  # Redshift's reading
    pg.execute("CREATE TABLE t (i INTEGER, s TEXT, d DATE, f DOUBLE PRECISION, b BOOLEAN)")
    pg.commit()
    rows = [(i, s, D, 1 / 3 if i % 2 else -1.5e300, bool(i % 2)) for i, s in enumerate(STRINGS)]
    rows.append((len(STRINGS), None, None, None, None))
    rs.execute_load(pg, rs.insert_values("t", ["i", "s", "d", "f", "b"], rows, max_bytes=120))
    assert pg.execute("SELECT i, s, d, f, b FROM t ORDER BY i").fetchall() == rows
    # the same values through a standard-conforming session with backslash_escapes=False
    pg.execute("SET standard_conforming_strings = on")
    pg.execute("DELETE FROM t")
    rs.execute_load(pg, rs.insert_values("t", ["i", "s", "d", "f", "b"], rows, backslash_escapes=False))
    assert pg.execute("SELECT i, s, d, f, b FROM t ORDER BY i").fetchall() == rows
    assert pg.execute("SELECT count(*) FROM t").fetchone() == (len(rows),)  # t was not dropped


def _load_on_postgres(con, table: str, rows: pa.Table, partitions, run_id: str) -> int:
    """The direct path's statements (same builder as RedshiftWarehouse.load) on PostgreSQL: the table
    exists already (PostgreSQL DDL) and the time function is now(). Small statements (800 bytes) so
    that the rows take several INSERTs; returns how many."""
    statements = rs.direct_load_statements(table, rs.conform(table, rows), partitions, run_id,
                                           now="now()", create=False, max_bytes=800)
    rs.execute_load(con, statements)
    return sum(s.startswith(f"INSERT INTO {table}_staging ") for s in statements)


def _metrics_on_postgres(con) -> list[tuple]:
    return con.execute("SELECT entity_id, basis, hqla, lcr, final_rules_version, run_id, loaded_at IS NOT NULL "
                       "FROM liquidity_metrics ORDER BY entity_id, basis").fetchall()


@pytest.mark.slow
def test_staging_swap_on_postgresql(pg):
    pg.execute(create_table_sql("liquidity_metrics", PG_TYPES))
    pg.commit()
    both = [(D, "LE_UK"), (D, "LE_US")]
    first = metrics([("LE_US", "base", 100.0, 1.25, "v1"), ("LE_US", "adjusted", 90.5, 1 / 3, NASTY),
                     ("LE_UK", "base", 7e-05, None, "C:\\rules\\"), ("LE_UK", "adjusted", None, 2.0, "it's")])
    run1 = "3f2a'; DELETE FROM liquidity_metrics; --"
    assert _load_on_postgres(pg, "liquidity_metrics", first, both, run1) > 1
    expected = [("LE_UK", "adjusted", None, 2.0, "it's", run1, True), ("LE_UK", "base", 7e-05, None, "C:\\rules\\", run1, True),
                ("LE_US", "adjusted", 90.5, 1 / 3, NASTY, run1, True), ("LE_US", "base", 100.0, 1.25, "v1", run1, True)]
    assert _metrics_on_postgres(pg) == expected

    # the same load again (a retry): one copy of every row, the new run_id
    _load_on_postgres(pg, "liquidity_metrics", first, both, "run-2")
    assert _metrics_on_postgres(pg) == [(*r[:5], "run-2", True) for r in expected]

    # replace LE_UK only (one row now): LE_US untouched
    _load_on_postgres(pg, "liquidity_metrics", metrics([("LE_UK", "base", 8.0, 1.5, "v2")]), [(D, "LE_UK")], "run-3")
    assert _metrics_on_postgres(pg) == [("LE_UK", "base", 8.0, 1.5, "v2", "run-3", True),
                                        ("LE_US", "adjusted", 90.5, 1 / 3, NASTY, "run-2", True),
                                        ("LE_US", "base", 100.0, 1.25, "v1", "run-2", True)]
    before = _metrics_on_postgres(pg)

    # a statement failing after the DELETE (two rows with the same key: the final INSERT violates the
    # primary key PostgreSQL enforces) rolls the whole transaction back: LE_US intact
    duplicate = metrics([("LE_US", "base", 1.0, 1.0, "bad"), ("LE_US", "base", 2.0, 2.0, "bad")])
    statements = rs.direct_load_statements("liquidity_metrics", rs.conform("liquidity_metrics", duplicate),
                                           [(D, "LE_US")], "run-4", now="now()", create=False)
    assert [s.split()[0] for s in statements] == ["CREATE", "INSERT", "DELETE", "INSERT", "DROP"]
    import psycopg

    with pytest.raises(psycopg.errors.UniqueViolation):
        rs.execute_load(pg, statements)
    assert _metrics_on_postgres(pg) == before
    assert pg.execute("SELECT to_regclass('liquidity_metrics_staging')").fetchone() == (None,)

    # an empty load of a partition empties it
    _load_on_postgres(pg, "liquidity_metrics", metrics([]), [(D, "LE_UK")], "run-5")
    assert [r[0] for r in _metrics_on_postgres(pg)] == ["LE_US", "LE_US"]


# --------------------------------------------------------------------------- (f) routing and fallback in load()

class FakeConnection:
    """A DB-API connection double that records what it is asked to do; the first INSERT of all
    (shared ``journal``) raises the error redshift_connector raises for a failed statement."""

    def __init__(self, journal: list, fail_first_insert: bool = True, error: Exception | None = None):
        self.journal, self.fail_first_insert, self.error = journal, fail_first_insert, error
        self.number = sum(1 for e in journal if e == ("connect",))
        journal.append(("connect",))

    def cursor(self):
        return FakeCursor(self)

    def execute(self, sql, params=None):
        inserts = [e for e in self.journal if e[0] == "execute" and e[1].startswith("INSERT")]
        self.journal.append(("execute", sql))
        if sql.startswith("INSERT") and not inserts and self.fail_first_insert:
            import redshift_connector

            raise self.error or redshift_connector.ProgrammingError(
                {"S": "ERROR", "C": "22001", "M": "value too long for type character varying(256)"})

    def close(self):
        self.journal.append(("close",))

    def commit(self):
        self.journal.append(("commit",))

    def rollback(self):
        self.journal.append(("rollback",))


class FakeCursor:
    def __init__(self, connection: FakeConnection):
        self.execute = connection.execute

    def close(self):
        pass


class RecordingWarehouse(rs.RedshiftWarehouse):
    """The real RedshiftWarehouse with its connection replaced by the double."""

    def _connect(self):
        return FakeConnection(JOURNAL, **FAKE_OPTIONS)


JOURNAL: list = []
FAKE_OPTIONS: dict = {}


@pytest.fixture()
def journal():
    JOURNAL.clear()
    FAKE_OPTIONS.clear()
    yield JOURNAL
    JOURNAL.clear()
    FAKE_OPTIONS.clear()


@pytest.fixture()
def moto_s3(monkeypatch, tmp_path):
    """A real S3 API (moto's server) on 127.0.0.1, dummy credentials; (endpoint URL, client)."""
    import boto3
    from moto.server import ThreadedMotoServer

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "HTTP_PROXY", "HTTPS_PROXY",
                 "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="regcalc-staging")
    yield endpoint, s3
    server.stop()


def _executed(journal, connection: int) -> list[str]:
    """The statements run on the n-th connection (0-based), and how it ended."""
    out, n = [], -1
    for entry in journal:
        if entry == ("connect",):
            n += 1
        elif n == connection:
            out.append(entry[1].split()[0] if entry[0] == "execute" else entry[0])
    return out


@pytest.mark.slow
def test_direct_failure_falls_back_to_staged_copy(journal, moto_s3):
    endpoint, s3 = moto_s3
    warehouse = RecordingWarehouse(iam_role=IAM_ROLE, staging_bucket="regcalc-staging", s3_endpoint_url=endpoint,
                                   rows_per_file=2)
    rows = metrics([("LE_US", "base", 100.0, 1.25, "v1"), ("LE_US", "adjusted", 90.5, None, NASTY),
                    ("LE_UK", "base", 3.0, 0.5, "v1")])
    run_id = "5b0e9c1e-7a8f-4d8e-9a51-0d4f3c2b1a00"
    result = warehouse.load("liquidity_metrics", rows, [(D, "LE_US"), (D, "LE_UK")], run_id)
    assert (result.table, result.rows, result.method) == ("liquidity_metrics", 3, "redshift direct failed -> staged copy")

    # first connection: the direct transaction, rolled back at its first INSERT; second: the staged one
    assert _executed(journal, 0) == ["CREATE", "CREATE", "INSERT", "rollback", "close"]
    assert _executed(journal, 1) == ["CREATE", "CREATE", "COPY", "DELETE", "INSERT", "DROP", "commit", "close"]
    prefix = f"regcalc/staging/liquidity_metrics/{run_id}"
    manifest_url = f"s3://regcalc-staging/{prefix}/liquidity_metrics.manifest"
    copy = next(e[1] for e in journal if e[0] == "execute" and e[1].startswith("COPY"))
    assert copy == rs.copy_from_manifest("liquidity_metrics_staging", manifest_url, IAM_ROLE)

    # the staged files and their manifest, with the sizes S3 reports
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="regcalc-staging", Prefix=prefix)["Contents"])
    assert keys == [f"{prefix}/liquidity_metrics.manifest", f"{prefix}/part-00000.parquet", f"{prefix}/part-00001.parquet"]
    sizes = {k: s3.head_object(Bucket="regcalc-staging", Key=k)["ContentLength"] for k in keys}
    body = json.loads(s3.get_object(Bucket="regcalc-staging", Key=f"{prefix}/liquidity_metrics.manifest")["Body"].read())
    assert body == {"entries": [
        {"url": f"s3://regcalc-staging/{prefix}/part-0000{i}.parquet", "mandatory": True,
         "meta": {"content_length": sizes[f"{prefix}/part-0000{i}.parquet"]}} for i in (0, 1)]}

    # the Parquet parts: every table column in table order (COPY matches by position), zstd, 2 + 1 rows
    import pyarrow.parquet as pq

    parts = [pq.ParquetFile(io.BytesIO(s3.get_object(Bucket="regcalc-staging", Key=k)["Body"].read())) for k in keys[1:]]
    assert [p.metadata.num_rows for p in parts] == [2, 1]
    assert parts[0].schema_arrow.names == TABLES["liquidity_metrics"].names
    assert parts[0].metadata.row_group(0).column(0).compression == "ZSTD"
    table = pa.concat_tables(p.read() for p in parts)
    assert table.column("final_rules_version").to_pylist() == ["v1", NASTY, "v1"]
    assert table.column("hqla").to_pylist() == [100.0, 90.5, 3.0]
    assert table.column("business_date").type == pa.date32() and table.column("positions_accepted").type == pa.int64()
    assert table.column("run_id").null_count == 3  # set by the swap, not staged


class NoS3Warehouse(RecordingWarehouse):
    def _s3(self):
        raise AssertionError("the direct path must not touch S3")


def test_direct_path_commits_without_s3(journal):
    warehouse = NoS3Warehouse(iam_role=IAM_ROLE, staging_bucket="unused")
    FAKE_OPTIONS["fail_first_insert"] = False
    result = warehouse.load("liquidity_metrics", metrics([("LE_US", "base", 1.0, 1.0, "v1")]), [(D, "LE_US")], "r")
    assert result.method == "redshift direct insert"
    assert _executed(journal, 0) == ["CREATE", "CREATE", "INSERT", "DELETE", "INSERT", "DROP", "commit", "close"]


def test_non_database_errors_do_not_fall_back(journal):
    warehouse = NoS3Warehouse(iam_role=IAM_ROLE, staging_bucket="unused")
    FAKE_OPTIONS["error"] = KeyError("a bug, not the database")
    with pytest.raises(KeyError):
        warehouse.load("liquidity_metrics", metrics([("LE_US", "base", 1.0, 1.0, "v1")]), [(D, "LE_US")], "r")
    assert _executed(journal, 0) == ["CREATE", "CREATE", "INSERT", "rollback", "close"]
    assert journal.count(("connect",)) == 1


@pytest.mark.slow
def test_large_loads_go_straight_to_staged_copy(journal, moto_s3):
    endpoint, s3 = moto_s3
    warehouse = RecordingWarehouse(iam_role=IAM_ROLE, staging_bucket="regcalc-staging", s3_endpoint_url=endpoint,
                                   direct_threshold=3)
    FAKE_OPTIONS["fail_first_insert"] = False
    rows = metrics([("LE_US", "base", 1.0, 1.0, "v1"), ("LE_US", "adjusted", 2.0, 1.0, "v1"), ("LE_UK", "base", 3.0, 1.0, "v1")])
    result = warehouse.load("liquidity_metrics", rows, [(D, "LE_US"), (D, "LE_UK")], "r-large")
    assert result.method == "redshift staged copy"
    assert journal.count(("connect",)) == 1
    assert _executed(journal, 0) == ["CREATE", "CREATE", "COPY", "DELETE", "INSERT", "DROP", "commit", "close"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="regcalc-staging", Prefix="regcalc/staging/liquidity_metrics/r-large/")["Contents"]]
    assert sorted(keys) == ["regcalc/staging/liquidity_metrics/r-large/liquidity_metrics.manifest",
                            "regcalc/staging/liquidity_metrics/r-large/part-00000.parquet"]


def test_rows_outside_the_replaced_partitions_are_refused(journal):
    warehouse = NoS3Warehouse(iam_role=IAM_ROLE, staging_bucket="unused")
    with pytest.raises(ValueError, match="not among the partitions replaced"):
        warehouse.load("liquidity_metrics", metrics([("LE_FR", "base", 1.0, 1.0, "v1")]), [(D, "LE_US")], "r")
    with pytest.raises(ValueError, match="no column"):
        warehouse.load("liquidity_metrics", metrics([]).append_column("oops", pa.array([], pa.int64())), [], "r")
    assert journal == []


@pytest.mark.slow
def test_a_star_dimension_is_replaced_whole_through_the_redshift_statements(pg):
    """A registered star table (its spec from an Arrow schema, DISTSTYLE ALL) through the direct
    path on PostgreSQL: ``partitions=None`` replaces every row, atomically, a retry leaves one copy."""
    from regcalc_resources.warehouse import TableSpec, register_table

    schema = pa.schema([("basis_key", pa.int64()), ("basis", pa.string()), ("description", pa.string())])
    register_table("dim_basis_test", TableSpec.from_arrow(schema, partitioned=False, diststyle="ALL", distkey=None,
                                                         sortkey=("basis_key",)))
    ddl = rs.create_table("dim_basis_test")
    assert ddl.endswith("DISTSTYLE ALL COMPOUND SORTKEY(basis_key)") and "DISTKEY" not in ddl
    assert "basis_key BIGINT ENCODE RAW" in ddl  # the sort key's leading column
    parse(ddl)
    pg.execute(create_table_sql("dim_basis_test", PG_TYPES))
    pg.commit()
    first = pa.table({"basis_key": [1, 2, -1], "basis": ["BASE", "ADJUSTED", "<unknown>"], "description": ["a", "b", None]},
                     schema=schema)
    for run in ("run-1", "run-2"):  # a retry: still one copy of each member
        _load_on_postgres(pg, "dim_basis_test", first, None, run)
        assert pg.execute("SELECT basis_key, basis, run_id FROM dim_basis_test ORDER BY 1").fetchall() == [
            (-1, "<unknown>", run), (1, "BASE", run), (2, "ADJUSTED", run)]
    _load_on_postgres(pg, "dim_basis_test", first.slice(0, 1), None, "run-3")
    assert pg.execute("SELECT basis_key, run_id FROM dim_basis_test").fetchall() == [(1, "run-3")]
