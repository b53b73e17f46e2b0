"""The warehouse on PostgreSQL: partitions replaced through a COPY-loaded staging table.

One ``load`` is one transaction on one connection:

1. ``CREATE TABLE IF NOT EXISTS`` the table (from the backend-neutral ``TABLES`` spec);
2. ``CREATE TEMP TABLE ... (LIKE table INCLUDING DEFAULTS) ON COMMIT DROP`` (NOT NULL is copied,
   so bad rows fail here, before the table is touched);
3. ``COPY staging (cols) FROM STDIN (FORMAT CSV)``, the Arrow rows rendered to CSV by Arrow's C++
   writer in large chunks (measured faster than binary COPY fed row by row from Python);
4. ``DELETE`` the (business_date, entity_id) partitions, ``INSERT ... SELECT`` the staging rows with
   ``loaded_at = now()`` and ``run_id``; ``COMMIT``.

Until the commit nothing is visible to readers, so an error or a killed process at any point
leaves the previous version of every partition exactly as it was (PostgreSQL rolls the
transaction back when the client connection goes away).
"""

from __future__ import annotations

import re
import time

import pyarrow as pa

from regcalc_resources.warehouse import TABLES, LoadResult, Warehouse, create_table_sql

POSTGRES_TYPES = {"date": "DATE", "string": "TEXT", "double": "DOUBLE PRECISION", "bigint": "BIGINT",
                  "int": "INTEGER", "bool": "BOOLEAN", "timestamp": "TIMESTAMPTZ"}
METHOD = "postgresql copy csv + delete/insert swap"
# A single-quoted literal, a double-quoted identifier, or one placeholder/percent sign.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[?%]")


def to_pyformat(sql: str) -> str:
    """DuckDB-style ``?`` placeholders as psycopg ``%s`` (``%`` escaped as ``%%``), outside quoted
    literals and identifiers. ``CAST(? AS DATE)`` becomes ``CAST(%s AS DATE)``, which PostgreSQL
    types from the cast. SQL already written with ``%s`` is returned unchanged."""
    if "%s" in sql:
        return sql
    return _TOKENS.sub(lambda m: {"?": "%s", "%": "%%"}.get(m.group(0), m.group(0)), sql)


def _csv_chunks(rows: pa.Table, chunk_rows: int):
    """The rows as headerless CSV, ``chunk_rows`` at a time (nulls unquoted-empty, strings quoted,
    which is what PostgreSQL's CSV format reads as NULL and as text)."""
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False, batch_size=chunk_rows)
    for batch in rows.to_batches(max_chunksize=chunk_rows):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(batch, sink, options)
        yield memoryview(sink.getvalue())


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database; ``dsn`` is a libpq connection string or URI (in production
    ``dg.EnvVar("REGCALC_WAREHOUSE_DSN")``: it holds credentials and is never logged)."""

    dsn: str
    copy_chunk_rows: int = 250_000  # rows rendered to CSV and sent per COPY write

    def _connect(self, **kwargs):
        import psycopg

        return psycopg.connect(self.dsn, **kwargs)

    def load(self, table, rows, partitions, run_id):
        """Replace ``partitions`` of ``table`` with ``rows`` in one transaction (see the module)."""
        started = time.perf_counter()
        names = TABLES[table].names
        columns = [c for c in rows.column_names if c not in ("loaded_at", "run_id")]
        if unknown := sorted(set(columns) - set(names)):
            raise ValueError(f"{table} has no columns {unknown}")
        cols = ", ".join(columns)
        dates, entities = [str(d) for d, _ in partitions], [str(e) for _, e in partitions]
        with self._connect(autocommit=True) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(create_table_sql(table, POSTGRES_TYPES))
            if rows.num_rows:
                cur.execute(f"CREATE TEMP TABLE staging_{table} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
                with cur.copy(f"COPY staging_{table} ({cols}) FROM STDIN (FORMAT CSV)") as copy:
                    for chunk in _csv_chunks(rows.select(columns), self.copy_chunk_rows):
                        copy.write(chunk)
            cur.execute(
                f"DELETE FROM {table} WHERE (business_date, entity_id) IN "
                "(SELECT * FROM unnest(%s::date[], %s::text[]))", [dates, entities])
            if rows.num_rows:
                cur.execute(f"INSERT INTO {table} ({cols}, loaded_at, run_id) "
                            f"SELECT {cols}, now(), %s FROM staging_{table}", [run_id])
        return LoadResult(table, rows.num_rows, METHOD, time.perf_counter() - started)

    def query(self, sql, params=None):
        """Rows of ``sql`` as dicts, on a new connection; ``?`` or ``%s`` placeholders."""
        from psycopg.rows import dict_row

        with self._connect(autocommit=True, row_factory=dict_row) as conn:
            cur = conn.execute(to_pyformat(sql), params) if params else conn.execute(sql)
            return cur.fetchall() if cur.description else []
