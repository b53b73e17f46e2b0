"""The warehouse on PostgreSQL: partitions replaced by a DELETE and a binary COPY, in one transaction.

One ``load`` is one transaction on one connection:

1. before connecting: the rows cast to the table's types (text in an int column, an int32 overflow
   raise here) and NULLs in NOT NULL columns rejected, so bad rows fail before the table is touched;
2. ``CREATE TABLE IF NOT EXISTS`` the table (from the backend-neutral ``TABLES`` spec);
3. ``DELETE`` the (business_date, entity_id) partitions;
4. ``COPY table (cols, loaded_at, run_id) FROM STDIN (FORMAT BINARY)`` straight into the table:
   the Arrow rows encoded to PostgreSQL's binary COPY format column by column with Arrow compute
   kernels (no Python loop over rows), ``loaded_at`` (the transaction's ``now()``) and ``run_id``
   appended to every row as constant fields; the encoding runs in this thread while psycopg's
   writer thread sends the previous chunks, so the client's encoding and the server's COPY overlap;
5. ``COMMIT``.

Until the commit nothing is visible to readers (they keep reading the previous rows; the DELETE
only locks them), so an error at any point (a duplicate key, a bad value the server rejects) or a
killed process leaves the previous version of every partition exactly as it was: PostgreSQL rolls
the transaction back when the client connection goes away.

Why this way: ``benchmarks/load_benchmark.py`` (results in ``benchmarks/results/``), 1,000,000
lineage rows (the widest table, 16 columns), 20 partitions per load, a stock PostgreSQL 16
(``pgserver``) on the same 2-core machine as the client, medians of 5 in one run; rows/s, "new
date" into empty partitions, "re-run" replacing 1,000,000 previous rows:

=============================================================  ========  ========
variant                                                        new date  re-run
=============================================================  ========  ========
before: this encoder, TEMP staging, DELETE, INSERT ... SELECT   215,546   147,217
ADBC ``adbc_ingest`` (C encoder), TEMP staging, DELETE, INSERT  202,330   174,268
ADBC, UNLOGGED staging table, DELETE, INSERT ... SELECT         209,982   160,997
ADBC: DELETE, ``adbc_ingest`` straight into the table           255,129   189,103
this encoder: DELETE, COPY straight into the table (now)        401,351   251,630
=============================================================  ========  ========

* The server is the bottleneck: COPY of 1M lineage rows alone costs it 1.3 to 2 s of CPU here
  (its backend's CPU time, measured beside the benchmark), whoever encodes them. A staging table
  makes it write every row twice (the staging COPY, then the INSERT ... SELECT), TEMP or UNLOGGED
  alike; COPY straight into the table, after the DELETE and in the same transaction, writes them
  once and keeps the load atomic.
* ADBC's encoder takes less client CPU than this one (about 0.9 s against 1.2 s per 1M rows),
  but it encodes and sends on one thread, so the server idles while it encodes; here psycopg's
  writer thread sends while the next chunk is encoded, and the two overlap.
* Building the key index after the COPY (a first load into a fresh table) is 1.8 times faster
  than maintaining it during the COPY (171,833 against 96,781 rows/s with lineage's key as an
  index), but only a table's first load could use it and lineage, the large table, declares no
  key; so the load does not special-case it.
* Binary, because PostgreSQL parses it about twice as fast as CSV (no text to number
  conversions; measured when this encoder was written), and psycopg's per-row ``write_row`` is
  several times slower than this encoder.
* The 500,000 rows/s target is not reached on that machine: 401k for a new date (best of 5:
  475k), 252k for a re-run, whose DELETE of the previous 1M rows adds about 1.5 s (and scans the
  whole table: lineage has no index on the partition columns).
"""

from __future__ import annotations

import datetime as dt
import re
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regcalc_resources.warehouse import LOAD_COLUMN_NAMES, LoadResult, Warehouse, create_table_sql, dbt_env, table_spec

POSTGRES_TYPES = {"date": "DATE", "string": "TEXT", "double": "DOUBLE PRECISION", "bigint": "BIGINT",
                  "int": "INTEGER", "bool": "BOOLEAN", "timestamp": "TIMESTAMPTZ"}
ARROW_TYPES = {"date": pa.date32(), "string": pa.string(), "double": pa.float64(), "bigint": pa.int64(),
               "int": pa.int32(), "bool": pa.bool_(), "timestamp": pa.timestamp("us", "UTC")}
METHOD = "postgresql delete + binary copy"
DSN_VARIABLE = "REGCALC_WAREHOUSE_DSN"

# A single-quoted literal, a double-quoted identifier, or one placeholder/percent sign.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[?%]")


def to_pyformat(sql: str) -> str:
    """DuckDB-style ``?`` placeholders as psycopg ``%s``: ``?`` outside quoted literals and
    identifiers, and every ``%`` escaped as ``%%`` (psycopg reads them inside literals too).
    ``CAST(? AS DATE)`` becomes ``CAST(%s AS DATE)``, which PostgreSQL types from the cast. SQL
    already written with ``%s`` is returned unchanged."""
    if "%s" in sql:
        return sql
    return _TOKENS.sub(lambda m: "%s" if m.group(0) == "?" else m.group(0).replace("%", "%%"), sql)


# --- Arrow -> PostgreSQL binary COPY ----------------------------------------------------------
# The stream: signature, flags and extension length; per row an int16 field count, then per
# field an int32 byte length (-1: NULL) and the value in network byte order; an int16 -1 trailer.
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = b"\xff\xff"
_NULL = pa.scalar(b"\xff\xff\xff\xff", pa.binary())
_WIRE = {pa.date32(): ">i4", pa.int32(): ">i4", pa.int64(): ">i8", pa.float64(): ">f8", pa.bool_(): "u1",
         pa.timestamp("us", "UTC"): ">i8"}
_PG_EPOCH_DAYS, _PG_EPOCH_US = 10_957, 946_684_800_000_000  # 2000-01-01 after 1970-01-01
_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


def _fixed_binary(values: np.ndarray) -> pa.Array:
    """Each element of ``values`` (its raw bytes) as one binary value."""
    return pa.Array.from_buffers(pa.binary(values.dtype.itemsize), len(values),
                                 [None, pa.py_buffer(values.tobytes())]).cast(pa.binary())


def _wire_fields(col: pa.Array) -> list[pa.Array]:
    """One column's (length, value) fields, as binary arrays to concatenate row-wise."""
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        lengths = pc.fill_null(pc.binary_length(col), -1).to_numpy().astype(">i4")
        return [_fixed_binary(lengths), col.cast(pa.binary())]  # a NULL value joins as b""
    wire = np.dtype(_WIRE[col.type])
    if pa.types.is_date32(col.type):
        values = pc.fill_null(col.cast(pa.int32()), 0).to_numpy() - _PG_EPOCH_DAYS
    elif pa.types.is_timestamp(col.type):
        values = pc.fill_null(col.cast(pa.int64()), 0).to_numpy() - _PG_EPOCH_US
    else:
        values = pc.fill_null(col, False if pa.types.is_boolean(col.type) else 0).to_numpy(zero_copy_only=False)
    field = np.empty(len(col), dtype=[("length", ">i4"), ("value", wire)])
    field["length"], field["value"] = wire.itemsize, values
    out = _fixed_binary(field)
    return [pc.if_else(pc.is_valid(col), out, _NULL) if col.null_count else out]


def constant_field(value: str | dt.datetime | None) -> bytes:
    """One field's wire bytes for a value repeated on every row: TEXT or TIMESTAMPTZ (aware)."""
    if value is None:
        return b"\xff\xff\xff\xff"
    if isinstance(value, dt.datetime):
        microseconds = (value - _PG_EPOCH) // dt.timedelta(microseconds=1)
        return (8).to_bytes(4, "big") + microseconds.to_bytes(8, "big", signed=True)
    data = value.encode()
    return len(data).to_bytes(4, "big") + data


def binary_copy_chunks(rows: pa.Table, chunk_rows: int, constants: tuple[bytes, ...] = ()):
    """``rows`` (already of ``ARROW_TYPES``) as a binary COPY stream, ``chunk_rows`` rows per
    buffer: each buffer is the values region of one Arrow binary array holding whole rows.
    ``constants`` (from ``constant_field``) follow each row's own fields, in that order."""
    yield COPY_SIGNATURE
    tail = [pa.scalar(c, pa.binary()) for c in constants]
    for batch in rows.to_batches(max_chunksize=chunk_rows):
        fields = [_fixed_binary(np.full(batch.num_rows, batch.num_columns + len(tail), dtype=">i2"))]
        for col in batch.columns:
            fields += _wire_fields(col)
        tuples = pc.binary_join_element_wise(*fields, *tail, pa.scalar(b"", pa.binary()),
                                             null_handling="replace", null_replacement=b"")
        offsets = np.frombuffer(tuples.buffers()[1], dtype=np.int32, count=len(tuples) + 1, offset=4 * tuples.offset)
        yield memoryview(tuples.buffers()[2])[offsets[0]:offsets[-1]]
    yield COPY_TRAILER


def _as_table_types(table: str, rows: pa.Table, columns: list[str]) -> pa.Table:
    """The incoming columns cast to the table's types (an impossible cast, e.g. text in an int
    column or an int32 overflow, raises here, before the database is touched)."""
    logical = {c: t for c, t, _ in table_spec(table).columns}
    out = []
    for name in columns:
        col, want = rows.column(name), ARROW_TYPES[logical[name]]
        out.append(col if col.type == want or (want == pa.string() and pa.types.is_large_string(col.type))
                   else col.cast(want))
    return pa.table(out, names=columns)


def _check_not_null(table: str, rows: pa.Table) -> None:
    """NOT NULL columns of ``table`` that ``rows`` leaves NULL raise here, before the database is
    touched (the table's constraints are the same check, but after the DELETE)."""
    if not rows.num_rows:
        return
    required = [c for c, _, nullable in table_spec(table).columns if not nullable and c not in LOAD_COLUMN_NAMES]
    if bad := [c for c in required if c not in rows.column_names or rows.column(c).null_count]:
        raise ValueError(f"{table}: NULL in NOT NULL columns {bad}")


def copy_rows(cur, table: str, rows: pa.Table, run_id: str, chunk_rows: int) -> None:
    """COPY ``rows`` (of ``ARROW_TYPES``) into ``table`` on ``cur``'s open transaction, with
    ``loaded_at`` = the transaction's ``now()`` and ``run_id`` on every row. This thread encodes
    the chunks; psycopg's queued writer sends them from its own thread (a bounded queue)."""
    from psycopg.copy import QueuedLibpqWriter

    [(loaded_at,)] = cur.execute("SELECT now()").fetchall()
    cols = ", ".join([*rows.column_names, *LOAD_COLUMN_NAMES])
    constants = (constant_field(loaded_at), constant_field(run_id))  # in LOAD_COLUMN_NAMES order
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)", writer=QueuedLibpqWriter(cur)) as copy:
        for chunk in binary_copy_chunks(rows, chunk_rows, constants):
            copy.write(chunk)


def _abort_when_client_dies(conn) -> None:
    """Have the server check the client socket every second while a statement runs (PostgreSQL
    14+, where the OS supports it): a load whose process was killed is rolled back at once,
    instead of after its statement has run to the end holding the partitions' row locks."""
    import psycopg

    try:
        conn.execute("SET client_connection_check_interval = 1000")
    except psycopg.Error:
        pass


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database; ``dsn`` is a libpq connection string or URI (in production
    ``dg.EnvVar("REGCALC_WAREHOUSE_DSN")``: it holds credentials and is never logged)."""

    dsn: str
    copy_chunk_rows: int = 50_000  # rows encoded per COPY buffer (about 12 MiB of lineage rows)

    def _connect(self, **kwargs):
        """A connection whose errors never carry the DSN's password (``connections.connect_postgres``)."""
        from regcalc_resources.connections import connect_postgres

        return connect_postgres(self.dsn, DSN_VARIABLE, **kwargs)

    def dbt_profile_env(self):
        from regcalc_resources.connections import parse_postgres_dsn

        info = parse_postgres_dsn(self.dsn, DSN_VARIABLE)  # its error names the variable, never the password
        return dbt_env("postgres", host=info.get("host"), port=info.get("port"), user=info.get("user"),
                       password=info.get("password"), dbname=info.get("dbname"), sslmode=info.get("sslmode"))

    def load(self, table, rows, partitions, run_id):
        """Replace ``partitions`` of ``table`` with ``rows`` in one transaction (see the module)."""
        started = time.perf_counter()
        columns = [c for c in rows.column_names if c not in LOAD_COLUMN_NAMES]
        if unknown := sorted(set(columns) - set(table_spec(table).names)):
            raise ValueError(f"{table} has no columns {unknown}")
        rows = _as_table_types(table, rows, columns)
        _check_not_null(table, rows)
        with self._connect(autocommit=True) as conn:
            _abort_when_client_dies(conn)
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(create_table_sql(table, POSTGRES_TYPES))
                if partitions is None:
                    cur.execute(f"DELETE FROM {table}")
                else:
                    cur.execute(f"DELETE FROM {table} WHERE (business_date, entity_id) IN "
                                "(SELECT * FROM unnest(%s::date[], %s::text[]))",
                                [[str(d) for d, _ in partitions], [str(e) for _, e in partitions]])
                if rows.num_rows:
                    copy_rows(cur, table, rows, run_id, self.copy_chunk_rows)
        return LoadResult(table, rows.num_rows, METHOD, time.perf_counter() - started)

    def query(self, sql, params=None):
        """Rows of ``sql`` as dicts, on a new connection; ``?`` or ``%s`` placeholders."""
        from psycopg.rows import dict_row

        with self._connect(autocommit=True, row_factory=dict_row) as conn:
            cur = conn.execute(to_pyformat(sql), params) if params else conn.execute(sql)
            return cur.fetchall() if cur.description else []
