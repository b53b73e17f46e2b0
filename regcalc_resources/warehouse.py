"""The warehouse that BI reads: partitions replaced idempotently in one transaction.

``DuckDBWarehouse`` is the embedded default; the PostgreSQL and Redshift backends implement the
same interface from the same backend-neutral table specs (``TABLES``).
"""

from __future__ import annotations

import os

import time
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa

@dataclass(frozen=True)
class TableSpec:
    """A warehouse table, independent of the backend: (column, logical type, nullable) and the
    natural key. Logical types: date, string, double, bigint, int, bool, timestamp."""

    columns: tuple[tuple[str, str, bool], ...]
    key: tuple[str, ...] = ()
    declare_key: bool = True  # False: the key is proven by a check, not indexed (millions of rows)
    partitioned: bool = True  # replaced by (business_date, entity_id); False: replaced whole
    # physical design (Redshift): DISTSTYLE KEY / ALL / AUTO, DISTKEY, compound SORTKEY
    diststyle: str = "KEY"
    distkey: str | None = "entity_id"
    sortkey: tuple[str, ...] = ("business_date", "entity_id")

    @property
    def names(self) -> list[str]:
        return [c for c, _, _ in self.columns]

    @classmethod
    def from_arrow(cls, schema, *, partitioned: bool, diststyle: str, distkey: str | None,
                   sortkey: tuple[str, ...], not_null: tuple[str, ...] = ()) -> TableSpec:
        """The spec of a table whose columns are those of a stored Parquet schema (a star table:
        its columns come from the star spec and the operator), plus the load columns."""
        columns = [(f.name, _logical(f.type), f.name not in not_null) for f in schema if f.name not in LOAD_COLUMN_NAMES]
        return cls(tuple(columns) + _cols(LOAD_COLUMNS), (), False, partitioned, diststyle, distkey, tuple(sortkey))


def _logical(kind) -> str:
    """The logical type of an Arrow type (decimals are loaded as double)."""
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "timestamp"
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_int64(kind):
        return "bigint"
    if pa.types.is_integer(kind):
        return "int"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "double"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    raise ValueError(f"no warehouse type for Arrow type {kind}")


def _cols(spec: str) -> tuple[tuple[str, str, bool], ...]:
    """'name type [not null], ...' -> column tuples (a compact way to write the specs below)."""
    out = []
    for part in spec.split(","):
        words = part.split()
        out.append((words[0], words[1], "not" not in words[2:]))
    return tuple(out)


LOAD_COLUMNS = "loaded_at timestamp, run_id string"
LOAD_COLUMN_NAMES = ("loaded_at", "run_id")
TABLES = {
    "liquidity_metrics": TableSpec(_cols(
        "business_date date not null, entity_id string not null, reporting_currency string, basis string not null, "
        "hqla_l1 double, hqla_l2a double, hqla_l2b double, adj15 double, adj40 double, hqla double, "
        "total_outflows double, total_inflows double, capped_inflows double, net_outflows double, lcr double, "
        "asf double, rsf double, nsfr double, positions_accepted bigint, positions_quarantined bigint, "
        "final_rules_version string, " + LOAD_COLUMNS), ("business_date", "entity_id", "basis")),
    "liquidity_components": TableSpec(_cols(
        "business_date date not null, entity_id string not null, reporting_currency string, basis string not null, "
        "component string not null, component_order int, amount double, position_count bigint, "
        "aggregation_rules_version string, " + LOAD_COLUMNS), ("business_date", "entity_id", "basis", "component")),
    "adjustment_trail": TableSpec(_cols(
        "business_date date not null, entity_id string not null, stage string not null, step int not null, "
        "rule_id string, version int, row_key string not null, source_system string, position_id string, "
        "component string, field string not null, value_before double, value_after double, clamped bool not null, "
        + LOAD_COLUMNS), ("business_date", "entity_id", "stage", "row_key", "step")),
    "lineage": TableSpec(_cols(
        "business_date date not null, entity_id string not null, output_stage string not null, "
        "output_key string not null, input_stage string not null, input_key string not null, role string not null, "
        "base_contribution double, contribution double, factor_rule string, source_system string, "
        "position_id string, source_file string, source_row bigint, rule_id string, rule_version int, "
        + LOAD_COLUMNS), ("business_date", "entity_id", "output_stage", "output_key", "input_stage", "input_key"),
        declare_key=False),
}
_REGISTERED: dict[str, TableSpec] = {}


def register_table(name: str, spec: TableSpec) -> None:
    """Make a table known to every backend in this process (the star tables, whose columns come
    from the star spec, register before they load)."""
    _REGISTERED[name] = spec


def table_spec(name: str) -> TableSpec:
    """The spec of a warehouse table: one of ``TABLES`` or a registered one."""
    spec = TABLES.get(name) or _REGISTERED.get(name)
    if spec is None:
        raise ValueError(f"unknown warehouse table {name!r} (known: {', '.join(sorted({*TABLES, *_REGISTERED}))})")
    return spec


DUCKDB_TYPES = {"date": "DATE", "string": "VARCHAR", "double": "DOUBLE", "bigint": "BIGINT", "int": "INTEGER",
                "bool": "BOOLEAN", "timestamp": "TIMESTAMP"}


def create_table_sql(table: str, types: dict[str, str], suffix: str = "") -> str:
    """CREATE TABLE IF NOT EXISTS for ``table`` with the backend's type names (``types``)."""
    spec = table_spec(table)
    cols = [f"{c} {types[t]}{'' if nullable else ' NOT NULL'}" for c, t, nullable in spec.columns]
    if spec.key and spec.declare_key:
        cols.append(f"PRIMARY KEY ({', '.join(spec.key)})")
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(cols)}){suffix}"


@dataclass
class LoadResult:
    """One table's partitions replaced: how (the method chosen), how many rows, how long."""

    table: str
    rows: int
    method: str
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return round(self.rows / self.seconds, 1) if self.seconds else 0.0


def dbt_env(target: str, **connection) -> dict[str, str]:
    """``REGCALC_DBT_TARGET`` and ``REGCALC_DBT_<FIELD>`` for the fields that are set."""
    return {"REGCALC_DBT_TARGET": target,
            **{f"REGCALC_DBT_{k.upper()}": str(v) for k, v in connection.items() if v not in (None, "")}}


class Warehouse(dg.ConfigurableResource):
    """Interface: replace whole (business_date, entity_id) partitions of a table atomically and
    idempotently (the rows of those partitions after a load are exactly ``rows``); with
    ``partitions`` None, the whole table (an unpartitioned star dimension or aggregate)."""

    def load(self, table: str, rows: pa.Table, partitions: list[tuple[str, str]], run_id: str) -> LoadResult:
        raise NotImplementedError

    def replace_partitions(self, table: str, rows: pa.Table, partitions: list[tuple[str, str]], run_id: str) -> int:
        return self.load(table, rows, partitions, run_id).rows

    def load_files(self, table: str, files: list[str], partitions: list[tuple[str, str]], run_id: str) -> LoadResult:
        """The same replacement from staged Parquet files (the stage store's partitions), read
        with the table's columns only. Backends that can read Parquet themselves override it."""
        import pyarrow.parquet as pq

        wanted = [c for c in table_spec(table).names if c not in LOAD_COLUMN_NAMES]
        parts = [pq.read_table(f, columns=wanted) for f in files]
        rows = pa.concat_tables(parts) if parts else pa.table({c: [] for c in wanted})
        return self.load(table, rows, partitions, run_id)

    def query(self, sql: str, params: list | None = None) -> list[dict]:
        raise NotImplementedError

    def dbt_profile_env(self) -> dict[str, str]:
        """The environment of a dbt process that builds the reporting layer in this warehouse
        (the ``regcalc`` profile of regcalc_assets/reporting/dbt/profiles.yml reads it): the
        target and its connection, credentials included, so they never go into a file."""
        raise NotImplementedError


class DuckDBWarehouse(Warehouse):
    """An embedded DuckDB database file (``$REGCALC_HOME/warehouse.duckdb``)."""

    path: str

    def _connect(self, read_only: bool = False):
        """Loads open the file for writing and wait while another process holds it (an analyst's
        session); queries open it read-only, shared with other readers, and close it at once."""
        from regcalc_resources.duckdb_files import connect

        return connect(self.path, read_only=read_only)

    def dbt_profile_env(self):
        return {"REGCALC_DBT_TARGET": "duckdb", "REGCALC_DBT_DUCKDB_PATH": os.path.abspath(self.path)}

    def load(self, table, rows, partitions, run_id):
        started = time.perf_counter()
        con = self._connect()
        try:
            con.execute(create_table_sql(table, DUCKDB_TYPES))
            columns = [c for c in rows.column_names]
            con.register("incoming", rows)
            con.execute("BEGIN TRANSACTION")
            self._delete(con, table, partitions)
            if rows.num_rows:
                cols = ", ".join(columns)
                con.execute(
                    f"INSERT INTO {table} ({cols}, loaded_at, run_id) SELECT {cols}, now(), ? FROM incoming", [run_id]
                )
            con.execute("COMMIT")
            return LoadResult(table, rows.num_rows, "duckdb delete+insert", time.perf_counter() - started)
        except Exception:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def load_files(self, table, files, partitions, run_id):
        """DuckDB reads the staged Parquet itself: no Arrow copy through Python."""
        started = time.perf_counter()
        cols = ", ".join(c for c in table_spec(table).names if c not in LOAD_COLUMN_NAMES)
        con = self._connect()
        try:
            con.execute(create_table_sql(table, DUCKDB_TYPES))
            con.execute("BEGIN TRANSACTION")
            self._delete(con, table, partitions)
            count = 0
            if files:
                count = con.execute(f"INSERT INTO {table} ({cols}, loaded_at, run_id) SELECT {cols}, now(), ? "
                                    "FROM read_parquet(?, hive_partitioning = false)", [run_id, list(files)]).fetchone()[0]
            con.execute("COMMIT")
            return LoadResult(table, count, "duckdb insert from staged parquet", time.perf_counter() - started)
        except Exception:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    @staticmethod
    def _delete(con, table: str, partitions) -> None:
        if partitions is None:
            con.execute(f"DELETE FROM {table}")
            return
        keys = pa.table({"business_date": [p[0] for p in partitions], "entity_id": [p[1] for p in partitions]})
        con.register("replaced", keys)
        con.execute(
            f"DELETE FROM {table} WHERE (business_date, entity_id) IN "
            "(SELECT CAST(business_date AS DATE), entity_id FROM replaced)"
        )

    def query(self, sql, params=None):
        import os

        if not os.path.exists(self.path):
            return []
        con = self._connect(read_only=True)
        try:
            cur = con.execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            con.close()
