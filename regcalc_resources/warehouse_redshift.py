"""Amazon Redshift warehouse: partitions replaced through a staging table in one transaction.

Two ways into the staging table, chosen per load by ``route`` from configured thresholds:

* **direct** (small loads, and adjustment-trail loads under their own lower threshold): multi-row
  ``INSERT ... VALUES`` statements with escaped literals, each capped in bytes (Redshift rejects
  statements over 16 MB);
* **staged** (large loads): the rows are written as zstd Parquet files to
  ``s3://<bucket>/<prefix>/<table>/<run_id>/part-N.parquet`` with a Redshift manifest next to
  them (``content_length`` of every file, required for Parquet), then ``COPY ... FORMAT AS
  PARQUET MANIFEST`` with an IAM role.

Both end with the same swap in the same transaction: ``DELETE`` the replaced (business_date,
entity_id) partitions from the table, ``INSERT ... SELECT`` the staging rows with ``loaded_at``
and ``run_id``. If the direct path fails with a database error the transaction is rolled back and
the load is retried through the staged path (``LoadResult.method`` says so).

The SQL builders are pure functions returning text so that they can be parsed (sqlglot's Redshift
dialect) and, where the SQL is common, executed against PostgreSQL in tests; ``execute_load``
runs a statement list in one transaction through any DB-API connection.

Credentials come only from the environment: ``REGCALC_REDSHIFT_DSN`` (a ``redshift://`` URL or
libpq-style ``key=value`` string, read through ``dg.EnvVar``) for the database, the default AWS
credential chain (environment, IRSA) for S3. Neither is logged nor shown in the resource's repr.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import logging
import math
import os
import re
import time
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl, unquote, urlsplit

import dagster as dg
import pyarrow as pa
from pydantic import Field

from regcalc_resources.connections import InvalidDsnError
from regcalc_resources.warehouse import LoadResult, Warehouse, dbt_env, table_spec

log = logging.getLogger(__name__)

DIRECT_THRESHOLD = 100_000
ADJUSTMENT_THRESHOLD = 50_000
ADJUSTMENT_TABLE = "adjustment_trail"
# Redshift's statement limit is 16 MB; stay well below it (the literal text is not the only cost)
MAX_STATEMENT_BYTES = 8 * 1024 * 1024
LOAD_COLUMNS = ("loaded_at", "run_id")

REDSHIFT_TYPES = {"date": "DATE", "string": "VARCHAR(256)", "double": "DOUBLE PRECISION", "bigint": "BIGINT",
                  "int": "INTEGER", "bool": "BOOLEAN", "timestamp": "TIMESTAMP"}
VARCHAR_WIDTHS = {"source_file": 1024, "description": 1024, "citation": 4096}  # longer than ids and keys
# AZ64 is only valid for SMALLINT, INTEGER, BIGINT, DECIMAL, DATE, TIMESTAMP(TZ); Redshift rejects it
# for DOUBLE PRECISION, BOOLEAN and VARCHAR, which get ZSTD.
ENCODINGS = {"date": "AZ64", "bigint": "AZ64", "int": "AZ64", "timestamp": "AZ64", "double": "ZSTD",
             "string": "ZSTD", "bool": "ZSTD"}
ARROW_TYPES = {"date": pa.date32(), "string": pa.string(), "double": pa.float64(), "bigint": pa.int64(),
               "int": pa.int32(), "bool": pa.bool_(), "timestamp": pa.timestamp("us")}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------- SQL builders (pure)

def _ident(name: str) -> str:
    """A plain identifier, checked (names come from ``TABLES`` or this module, never from data)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def _spec(table: str):
    return table_spec(table)


def data_columns(table: str) -> list[str]:
    """The table's columns that a load supplies (all but ``loaded_at`` and ``run_id``)."""
    return [c for c in _spec(table).names if c not in LOAD_COLUMNS]


def column_type(column: str, logical: str) -> str:
    if logical == "string" and column in VARCHAR_WIDTHS:
        return f"VARCHAR({VARCHAR_WIDTHS[column]})"
    return REDSHIFT_TYPES[logical]


def column_encoding(column: str, logical: str, sortkey: tuple[str, ...] = ()) -> str:
    """RAW for the sort key's leading column (AWS: a highly compressed leading sort column makes
    range-restricted scans read more blocks of the other columns), else by type."""
    return "RAW" if sortkey and column == sortkey[0] else ENCODINGS[logical]


def create_table(table: str) -> str:
    """CREATE TABLE IF NOT EXISTS with Redshift types, encodings, DISTKEY, SORTKEY and the natural
    key declared (informational: Redshift does not enforce it)."""
    spec = _spec(table)
    cols = [f"{_ident(c)} {column_type(c, t)}{'' if nullable else ' NOT NULL'} ENCODE {column_encoding(c, t, spec.sortkey)}"
            for c, t, nullable in spec.columns]
    if spec.key and spec.declare_key:
        cols.append(f"PRIMARY KEY ({', '.join(map(_ident, spec.key))})")
    if spec.diststyle not in ("KEY", "ALL", "AUTO", "EVEN") or (spec.diststyle == "KEY") != bool(spec.distkey):
        raise ValueError(f"{table}: DISTSTYLE {spec.diststyle} with DISTKEY {spec.distkey!r}")
    dist = f"DISTSTYLE {spec.diststyle}" + (f" DISTKEY({_ident(spec.distkey)})" if spec.distkey else "")
    sort = f" COMPOUND SORTKEY({', '.join(map(_ident, spec.sortkey))})" if spec.sortkey else ""
    return f"CREATE TABLE IF NOT EXISTS {_ident(table)} ({', '.join(cols)}) {dist}{sort}"


def staging_name(table: str) -> str:
    return f"{_ident(table)}_staging"


def create_staging(table: str, staging: str) -> str:
    """A session-local copy of the table's definition (Redshift's LIKE keeps DISTKEY, SORTKEY,
    encodings and NOT NULL, so the INSERT ... SELECT of the swap is collocated)."""
    return f"CREATE TEMP TABLE {_ident(staging)} (LIKE {_ident(table)})"


def drop_staging(staging: str) -> str:
    return f"DROP TABLE {_ident(staging)}"


def quote_string(value: str, backslash_escapes: bool = True) -> str:
    """A SQL string literal. Redshift (like PostgreSQL before standard_conforming_strings) treats a
    backslash in an ordinary literal as an escape, so it is doubled as well as the quote
    (Redshift's QUOTE_LITERAL does the same); ``backslash_escapes=False`` is for standard-
    conforming databases (PostgreSQL's default)."""
    if "\x00" in value:
        raise ValueError("a string with a NUL character cannot be stored in a VARCHAR")
    if backslash_escapes:
        value = value.replace("\\", "\\\\")
    return "'" + value.replace("'", "''") + "'"


def literal(value, backslash_escapes: bool = True) -> str:
    """A Python value (as ``pyarrow.Table.to_pylist`` gives them) as a typed SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):  # before int: bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "CAST('NaN' AS DOUBLE PRECISION)"
        if math.isinf(value):
            return f"CAST('{'-' if value < 0 else ''}Infinity' AS DOUBLE PRECISION)"
        return repr(value)  # shortest text that reads back as the same double
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"non-finite decimal {value}")
        return str(value)
    if isinstance(value, dt.datetime):  # before date: datetime is a date
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return f"'{value.isoformat(sep=' ', timespec='microseconds')}'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return quote_string(value, backslash_escapes)
    raise TypeError(f"no SQL literal for a {type(value).__name__}")


def insert_values(staging: str, columns: Sequence[str], rows: Iterable[Sequence], *,
                  max_bytes: int = MAX_STATEMENT_BYTES, backslash_escapes: bool = True) -> list[str]:
    """Multi-row ``INSERT INTO staging (columns) VALUES (...), (...)`` statements, each at most
    ``max_bytes`` bytes of UTF-8; ``rows`` are sequences in ``columns`` order (or dicts)."""
    head = f"INSERT INTO {_ident(staging)} ({', '.join(map(_ident, columns))}) VALUES "
    head_bytes = len(head.encode())
    statements: list[str] = []
    batch: list[str] = []
    size = head_bytes
    for row in rows:
        if isinstance(row, dict):
            row = [row.get(c) for c in columns]
        if len(row) != len(columns):
            raise ValueError(f"row has {len(row)} values for {len(columns)} columns")
        text = "(" + ", ".join(literal(v, backslash_escapes) for v in row) + ")"
        n = len(text.encode())
        if head_bytes + n > max_bytes:
            raise ValueError(f"one row needs {head_bytes + n} bytes, more than a statement may have ({max_bytes})")
        if batch and size + 2 + n > max_bytes:
            statements.append(head + ", ".join(batch))
            batch, size = [], head_bytes
        size += n + (2 if batch else 0)
        batch.append(text)
    if batch:
        statements.append(head + ", ".join(batch))
    return statements


def _iso_date(value) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    return dt.date.fromisoformat(str(value)).isoformat()  # validates 'YYYY-MM-DD'


def delete_partitions(table: str, partitions: Sequence[tuple] | None, backslash_escapes: bool = True) -> str | None:
    """DELETE the (business_date, entity_id) partitions (None when there are none; every row when
    ``partitions`` is None: a whole-table replace). A disjunction of equalities rather than a
    row-value IN list, which Redshift does not document."""
    if partitions is None:
        return f"DELETE FROM {_ident(table)}"
    keys = sorted({(_iso_date(d), str(e)) for d, e in partitions})
    if not keys:
        return None
    terms = " OR ".join(f"(business_date = '{d}' AND entity_id = {quote_string(e, backslash_escapes)})"
                        for d, e in keys)
    return f"DELETE FROM {_ident(table)} WHERE {terms}"


def swap(table: str, staging: str, partitions: Sequence[tuple], run_id: str, now: str = "GETDATE()",
         backslash_escapes: bool = True) -> list[str]:
    """The partition swap: delete the replaced partitions, insert the staging rows with
    ``loaded_at`` (``now``: GETDATE() on Redshift, now() on PostgreSQL) and ``run_id``."""
    if now not in ("GETDATE()", "SYSDATE", "now()", "CURRENT_TIMESTAMP"):
        raise ValueError(f"unexpected 'now' expression {now!r}")
    cols = ", ".join(map(_ident, data_columns(table)))
    delete = delete_partitions(table, partitions, backslash_escapes)
    insert = (f"INSERT INTO {_ident(table)} ({cols}, loaded_at, run_id) "
              f"SELECT {cols}, {now}, {quote_string(str(run_id), backslash_escapes)} FROM {_ident(staging)}")
    return ([delete] if delete else []) + [insert]


def copy_from_manifest(staging: str, manifest_url: str, iam_role: str) -> str:
    """COPY the manifest's Parquet files into the staging table (columns matched by position)."""
    if not manifest_url.startswith("s3://"):
        raise ValueError("the manifest must be an s3:// URL")
    if not iam_role:
        raise ValueError("an IAM role ARN is required for COPY")
    return (f"COPY {_ident(staging)} FROM {quote_string(manifest_url)} IAM_ROLE {quote_string(iam_role)} "
            "FORMAT AS PARQUET MANIFEST")


def manifest(urls_with_sizes: Iterable[tuple[str, int]]) -> dict:
    """Redshift's COPY manifest; ``meta.content_length`` (bytes) is required for Parquet files."""
    entries = []
    for url, size in urls_with_sizes:
        if not str(url).startswith("s3://"):
            raise ValueError(f"manifest entries must be s3:// URLs, not {url!r}")
        entries.append({"url": str(url), "mandatory": True, "meta": {"content_length": int(size)}})
    return {"entries": entries}


def route(rows: int, table: str, direct_threshold: int = DIRECT_THRESHOLD,
          adjustment_threshold: int = ADJUSTMENT_THRESHOLD) -> str:
    """``"direct"`` below the table's threshold, ``"staged"`` at or above it (adjustment-trail
    loads have their own, lower threshold)."""
    threshold = adjustment_threshold if table == ADJUSTMENT_TABLE else direct_threshold
    return "staged" if rows >= threshold else "direct"


# --------------------------------------------------------------------------- execution helpers

def execute_load(connection, statements: Sequence[str]) -> int:
    """Run ``statements`` in one transaction on a DB-API connection (not in autocommit): commit
    after the last, roll back and re-raise on any error. Returns the number run."""
    cursor = connection.cursor()
    try:
        for statement in statements:
            cursor.execute(statement)
        connection.commit()
        return len(statements)
    except BaseException:
        try:
            connection.rollback()
        except Exception:  # the original error matters more; a broken connection is closed by the caller
            log.warning("rollback failed after a load error", exc_info=True)
        raise
    finally:
        try:
            cursor.close()
        except Exception:
            pass


def direct_load_statements(table: str, rows: pa.Table, partitions, run_id: str, *, now: str = "GETDATE()",
                           max_bytes: int = MAX_STATEMENT_BYTES, backslash_escapes: bool = True,
                           create: bool = True) -> list[str]:
    """The direct path's transaction: [create table], staging, multi-row INSERTs, swap, drop
    staging. ``rows`` hold the table's data columns (``conform`` them first); ``now``,
    ``backslash_escapes`` and ``create=False`` let tests run the same list on PostgreSQL."""
    staging = staging_name(table)
    columns = data_columns(table)
    data = rows.select(columns)
    values = zip(*(c.to_pylist() for c in data.columns)) if data.num_rows else iter(())
    return [*([create_table(table)] if create else []), create_staging(table, staging),
            *insert_values(staging, columns, values, max_bytes=max_bytes, backslash_escapes=backslash_escapes),
            *swap(table, staging, partitions, run_id, now, backslash_escapes), drop_staging(staging)]


def staged_load_statements(table: str, manifest_url: str, iam_role: str, partitions, run_id: str, *,
                           now: str = "GETDATE()", create: bool = True) -> list[str]:
    """The staged path's transaction: [create table], staging, COPY from the manifest, swap, drop."""
    staging = staging_name(table)
    return [*([create_table(table)] if create else []), create_staging(table, staging),
            copy_from_manifest(staging, manifest_url, iam_role),
            *swap(table, staging, partitions, run_id, now), drop_staging(staging)]


_DBAPI_ERRORS = {"Error", "DatabaseError", "InterfaceError", "DataError", "OperationalError", "IntegrityError",
                 "InternalError", "ProgrammingError", "NotSupportedError"}


def is_database_error(exc: BaseException) -> bool:
    """A DB-API error (redshift_connector's, or any driver's by the PEP 249 class names)."""
    try:
        import redshift_connector

        if isinstance(exc, redshift_connector.Error):
            return True
    except ImportError:  # pragma: no cover - redshift-connector is a dependency
        pass
    return any(c.__name__ in _DBAPI_ERRORS and c.__module__ != "builtins" for c in type(exc).__mro__)


def conform(table: str, rows: pa.Table) -> pa.Table:
    """The rows with every column of the table, in table order and type (``loaded_at`` and
    ``run_id`` null, set by the swap): COPY from Parquet matches columns by position and needs as
    many as the table has. Columns the rows lack are null; unknown columns are an error."""
    spec = _spec(table)
    unknown = sorted(set(rows.column_names) - set(spec.names))
    if unknown:
        raise ValueError(f"{table} has no column(s) {', '.join(unknown)}")
    arrays, fields = [], []
    for name, logical, nullable in spec.columns:
        kind = ARROW_TYPES[logical]
        if name in LOAD_COLUMNS or name not in rows.column_names:
            arrays.append(pa.nulls(rows.num_rows, kind))
        else:
            arrays.append(rows.column(name).cast(kind))
        fields.append(pa.field(name, kind, nullable=name in LOAD_COLUMNS or nullable))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _partitions_of(rows: pa.Table) -> set[tuple[str, str]]:
    if not rows.num_rows:
        return set()
    keys = rows.select(["business_date", "entity_id"]).group_by(["business_date", "entity_id"]).aggregate([])
    return {(_iso_date(d), e) for d, e in zip(keys.column("business_date").to_pylist(),
                                               keys.column("entity_id").to_pylist())}


def parse_dsn(dsn: str) -> dict:
    """``redshift://user:password@host:5439/db?sslmode=verify-full`` (or postgresql://, or libpq
    ``host=... port=... dbname=... user=... password=...``) -> ``redshift_connector.connect``
    keyword arguments. An unparseable DSN is an ``InvalidDsnError`` (exit code 2 on the command
    line) whose message never repeats the DSN (it holds the password)."""
    options: dict = {}
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.scheme not in ("redshift", "postgresql", "postgres", "jdbc:redshift"):
            raise InvalidDsnError("REGCALC_REDSHIFT_DSN must be a redshift:// or postgresql:// URL")
        try:
            port = parts.port
        except ValueError:
            raise InvalidDsnError("REGCALC_REDSHIFT_DSN has an invalid port") from None
        options.update(host=parts.hostname, port=port, user=unquote(parts.username) if parts.username else None,
                       password=unquote(parts.password) if parts.password else None,
                       database=unquote(parts.path.lstrip("/")) or None)
        query = parse_qsl(parts.query)
    else:
        query = []
        for word in dsn.split():
            if "=" not in word:
                raise InvalidDsnError("REGCALC_REDSHIFT_DSN is neither a URL nor key=value pairs")
            query.append(tuple(word.split("=", 1)))
    aliases = {"dbname": "database", "username": "user"}
    booleans = {"ssl", "iam", "is_serverless", "tcp_keepalive", "ssl_insecure"}
    integers = {"port", "timeout", "max_prepared_statements"}
    allowed = {"host", "port", "database", "user", "password", "sslmode", "application_name", "cluster_identifier",
               "region", "db_user", "serverless_work_group", "profile"} | booleans | integers
    for key, value in query:
        key = aliases.get(key, key)
        if key not in allowed:
            raise InvalidDsnError(f"unsupported REGCALC_REDSHIFT_DSN option {key!r}")
        if key in booleans:
            value = value.lower() in ("1", "true", "yes", "on")
        elif key in integers:
            if not value.isdigit():
                raise InvalidDsnError(f"REGCALC_REDSHIFT_DSN option {key!r} is not a number")
            value = int(value)
        options[key] = value
    return {k: v for k, v in options.items() if v is not None}


# --------------------------------------------------------------------------- the resource

class RedshiftWarehouse(Warehouse):
    """The warehouse on Amazon Redshift (see the module docstring). Build it with ``from_env()``
    so that the DSN is a ``dg.EnvVar`` (resolved at run time, never in config or logs)."""

    dsn: str | None = Field(default=None, repr=False, description="REGCALC_REDSHIFT_DSN (secret)")
    host: str | None = None
    port: int = 5439
    database: str | None = None
    user: str | None = None
    password: str | None = Field(default=None, repr=False, description="dg.EnvVar in production (secret)")
    search_path: str | None = None  # a schema to work in (tests use a scratch schema)
    iam_role: str  # the role Redshift assumes to read the staged files (an ARN, not a secret)
    staging_bucket: str
    staging_prefix: str = "regcalc/staging"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    direct_threshold: int = DIRECT_THRESHOLD
    adjustment_threshold: int = ADJUSTMENT_THRESHOLD
    rows_per_file: int = 1_000_000
    max_statement_bytes: int = MAX_STATEMENT_BYTES
    parquet_compression: str = "zstd"

    @classmethod
    def from_env(cls) -> RedshiftWarehouse:
        """REGCALC_REDSHIFT_DSN, _IAM_ROLE, _STAGING_BUCKET (required); _STAGING_PREFIX,
        _S3_ENDPOINT_URL, _S3_REGION, _DIRECT_THRESHOLD, _ADJUSTMENT_THRESHOLD (optional)."""
        env = os.environ
        optional: dict = {}
        for field, name in (("staging_prefix", "STAGING_PREFIX"), ("s3_endpoint_url", "S3_ENDPOINT_URL"),
                            ("s3_region", "S3_REGION"), ("search_path", "SEARCH_PATH")):
            if env.get(f"REGCALC_REDSHIFT_{name}"):
                optional[field] = env[f"REGCALC_REDSHIFT_{name}"]
        for field, name in (("direct_threshold", "DIRECT_THRESHOLD"), ("adjustment_threshold", "ADJUSTMENT_THRESHOLD")):
            if env.get(f"REGCALC_REDSHIFT_{name}"):
                optional[field] = dg.EnvVar.int(f"REGCALC_REDSHIFT_{name}")
        return cls(dsn=dg.EnvVar("REGCALC_REDSHIFT_DSN"), iam_role=dg.EnvVar("REGCALC_REDSHIFT_IAM_ROLE"),
                   staging_bucket=dg.EnvVar("REGCALC_REDSHIFT_STAGING_BUCKET"), **optional)

    # -- connections (the only place redshift_connector is used)

    def _secret_environ(self) -> dict[str, str]:
        """The environment plus this resource's own secrets, for ``regcalc_core.redaction``."""
        return {**os.environ, "REGCALC_REDSHIFT_DSN": self.dsn or "", "REGCALC_REDSHIFT_PASSWORD": self.password or ""}

    def _connect_kwargs(self) -> dict:
        """``redshift_connector.connect`` keyword arguments; an error never carries a secret."""
        from regcalc_core.redaction import secret_safe_call

        return secret_safe_call(self._options, environ=self._secret_environ())

    def _options(self) -> dict:
        options = parse_dsn(self.dsn) if self.dsn else {}
        for key in ("host", "database", "user", "password"):
            if getattr(self, key) is not None:
                options[key] = getattr(self, key)
        options.setdefault("port", self.port)
        return options

    def dbt_profile_env(self):
        options = self._connect_kwargs()
        return dbt_env("redshift", host=options.get("host"), port=options.get("port"), user=options.get("user"),
                       password=options.get("password"), dbname=options.get("database"),
                       sslmode=options.get("sslmode"))

    def _connect(self):
        """A DB-API connection (autocommit off) whose errors never carry a secret; tests override this."""
        from regcalc_core.redaction import secret_safe_call

        return secret_safe_call(self._open, environ=self._secret_environ())

    def _open(self):
        import redshift_connector

        con = redshift_connector.connect(**self._connect_kwargs())
        if self.search_path:
            cursor = con.cursor()
            cursor.execute(f"SET search_path TO {_ident(self.search_path)}")
            cursor.close()
            con.commit()
        return con

    def _s3(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.s3_endpoint_url, region_name=self.s3_region)

    # -- statement lists

    def direct_statements(self, table: str, rows: pa.Table, partitions, run_id: str) -> list[str]:
        return direct_load_statements(table, rows, partitions, run_id, max_bytes=self.max_statement_bytes)

    def staged_statements(self, table: str, manifest_url: str, partitions, run_id: str) -> list[str]:
        return staged_load_statements(table, manifest_url, self.iam_role, partitions, run_id)

    # -- staging files

    def staging_key(self, table: str, run_id: str) -> str:
        safe_run = re.sub(r"[^A-Za-z0-9._=-]", "_", str(run_id))
        return "/".join(p for p in (self.staging_prefix.strip("/"), _ident(table), safe_run) if p)

    def stage(self, table: str, rows: pa.Table, run_id: str) -> tuple[str, dict]:
        """Write the (conformed) rows as Parquet parts and their manifest to S3; (manifest URL,
        manifest). At least one part is written, so an empty load still has a valid manifest."""
        import pyarrow.parquet as pq

        if not self.staging_bucket:
            raise ValueError("RedshiftWarehouse.staging_bucket is not configured")
        s3, prefix = self._s3(), self.staging_key(table, run_id)
        files = []
        step = max(1, self.rows_per_file)
        for part, offset in enumerate(range(0, max(rows.num_rows, 1), step)):
            buffer = io.BytesIO()
            pq.write_table(rows.slice(offset, step), buffer, compression=self.parquet_compression)
            body = buffer.getvalue()
            key = f"{prefix}/part-{part:05d}.parquet"
            s3.put_object(Bucket=self.staging_bucket, Key=key, Body=body)
            files.append((f"s3://{self.staging_bucket}/{key}", len(body)))
        entries = manifest(files)
        key = f"{prefix}/{table}.manifest"
        s3.put_object(Bucket=self.staging_bucket, Key=key, Body=json.dumps(entries, indent=1).encode(),
                      ContentType="application/json")
        return f"s3://{self.staging_bucket}/{key}", entries

    # -- the interface

    def _run(self, statements: list[str]) -> None:
        con = self._connect()
        try:
            execute_load(con, statements)
        finally:
            con.close()

    def load(self, table, rows, partitions, run_id):
        started = time.perf_counter()
        data = conform(table, rows)
        outside = set() if partitions is None else _partitions_of(data) - {(_iso_date(d), str(e)) for d, e in partitions}
        if outside:
            raise ValueError(f"{len(outside)} (business_date, entity_id) partition(s) of the rows are not among "
                             f"the partitions replaced, e.g. {sorted(outside)[0]}")
        chosen = route(data.num_rows, table, self.direct_threshold, self.adjustment_threshold)
        method = "redshift staged copy"
        if chosen == "direct":
            statements = self.direct_statements(table, data, partitions, run_id)
            con = self._connect()
            try:
                execute_load(con, statements)
                return LoadResult(table, data.num_rows, "redshift direct insert", time.perf_counter() - started)
            except Exception as exc:
                if not is_database_error(exc):
                    raise
                log.warning("direct load of %d rows into %s failed (%s: %s); rolled back, retrying as a staged COPY",
                            data.num_rows, table, type(exc).__name__, str(exc).splitlines()[0][:300] if str(exc) else "")
                method = "redshift direct failed -> staged copy"
            finally:
                con.close()
        manifest_url, _ = self.stage(table, data, run_id)
        self._run(self.staged_statements(table, manifest_url, partitions, run_id))
        return LoadResult(table, data.num_rows, method, time.perf_counter() - started)

    def query(self, sql, params=None):
        """``?`` placeholders, as for the other backends."""
        con = self._connect()
        try:
            cursor = con.cursor()
            if params:
                cursor.paramstyle = "qmark"
                cursor.execute(sql, list(params))
            else:
                cursor.execute(sql)
            if not cursor.description:
                return []
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
        finally:
            con.rollback()
            con.close()
