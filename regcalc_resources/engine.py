"""Compute engines: one PySpark-API session per process, chosen by configuration.

Every transformation in ``regcalc_assets`` is written once against the PySpark DataFrame API.
``DuckDBEngine`` runs it on sqlframe's DuckDB session (embedded default, no JVM);
``SparkEngine`` runs it on real Spark through dagster-pyspark (local mode, a cluster, or Spark
Connect with ``spark.remote``). Only file I/O differs per engine, and it lives here. A remote
engine (Spark Connect) is given only paths under the stage store's root, as the cluster names
them: it never sees this process's disk (``remote``, ``SparkEngine.storage``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import dagster as dg
from pydantic import Field

from regcalc_resources.stage_store import StageStore

_SESSIONS: dict[tuple, Any] = {}
_LOCK = threading.Lock()


class ComputeEngine(dg.ConfigurableResource):
    """Interface: a PySpark-API session plus the engine-specific Parquet/CSV I/O."""

    @property
    def remote(self) -> bool:
        """Whether the engine runs outside this process and its machine (Spark Connect): it is then
        given only paths under the stage store's root, as the cluster names them."""
        return False

    def session(self):  # pragma: no cover - interface
        raise NotImplementedError

    def read_text_table(self, path: str, columns: list[str]) -> Any:
        """The ``columns`` of a landing file (.parquet or .csv) as strings, plus ``source_row``
        (1-based). Other delivered columns are never read, whatever their names."""
        raise NotImplementedError

    def read_parquet(self, paths: list[str]) -> Any:
        raise NotImplementedError

    def write_partitioned(self, df, dest_dir: str, date_dir: str, entity_dir: str, entity_index: dict[str, int] | None) -> None:
        """Write ``df`` as zstd Parquet under ``dest_dir/<date_dir>=<business_date>/<entity_dir>=<n>/``.

        ``n`` is the entity's number in ``entity_index`` (``0`` for every row when it is None: a
        date-level asset), never the entity_id itself: the engine's own escaping of partition
        values must not decide where a partition lands (the stage store encodes keys itself). A
        row whose entity is not in the index lands in a directory the caller does not expect, so
        it is reported, never lost. ``business_date`` and ``entity_id`` stay inside the files.
        """
        raise NotImplementedError

    def write_empty(self, df, dest_dir: str) -> None:
        """Write a zero-row Parquet file carrying ``df``'s schema into ``dest_dir``."""
        raise NotImplementedError

    def read_table(self, path: str) -> Any:
        """A typed DataFrame over one CSV file (header row, types inferred) or Parquet file or
        directory of Parquet files: the inputs of ``regcalc star build``."""
        raise NotImplementedError

    def write_table(self, df, dest_dir: str) -> None:
        """Write ``df`` as one zstd Parquet file into ``dest_dir``, rows sorted by every column, so
        that the same rows give the same file (an unpartitioned star table)."""
        raise NotImplementedError

    def checkpoint(self, df) -> Any:
        """Compute ``df`` once and return a DataFrame over the result (for a frame used several times)."""
        raise NotImplementedError

    def from_arrow(self, table) -> Any:
        """A DataFrame over a small Arrow table built in Python (cheaper than ``createDataFrame``
        of many rows on sqlframe, which plans every value as an expression)."""
        raise NotImplementedError


def _cached(key: tuple, build):
    with _LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = build()
        return _SESSIONS[key]


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _plain_name(name: str) -> bool:
    """A column name that may be quoted into SQL as is (the contract's names are all plain)."""
    import re

    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)) and name != "source_row"


class DuckDBEngine(ComputeEngine):
    """sqlframe's DuckDB session: the PySpark API compiled to DuckDB SQL, in process."""

    threads: int | None = Field(default=None, description="DuckDB worker threads (default: all cores)")
    memory_limit: str | None = Field(default=None, description="e.g. '8GB' (default: settings.duckdb_memory_limit)")
    spill_dir: str | None = Field(default=None, description="where DuckDB spills past its memory limit")
    target_file_size: str = Field(default="128MB", description="Parquet files are cut at about this size (the design's 128 MB)")

    def session(self):
        def build():
            import duckdb
            from sqlframe.duckdb import DuckDBSession

            conn = duckdb.connect(":memory:")
            if self.threads:
                conn.execute(f"SET threads = {int(self.threads)}")
            if self.memory_limit:
                conn.execute(f"SET memory_limit = {_sql_str(self.memory_limit)}")
            if self.spill_dir:
                conn.execute(f"SET temp_directory = {_sql_str(self.spill_dir)}")
            conn.execute("SET preserve_insertion_order = false")  # CSV row numbers: see read_text_table
            return DuckDBSession(conn=conn)

        return _cached(("duckdb", self.threads, self.memory_limit, self.spill_dir), build)

    def _conn(self):
        return self.session()._conn

    def _sql(self, df) -> str:
        session = df.session
        expressions = df._get_expressions()
        for expression in expressions[:-1]:  # cached intermediate tables
            session._collect(expression)
        return session._to_sql(expressions[-1])

    def read_text_table(self, path: str, columns: list[str]):
        if path.endswith(".csv"):
            return self._read_csv_numbered(path).select(*columns, "source_row")
        texts = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in columns if _plain_name(c))
        return self._view("landing", f"SELECT {texts}, CAST(file_row_number + 1 AS BIGINT) AS source_row "
                                     f"FROM read_parquet({_sql_str(path)}, file_row_number = true)")

    def _drop_tables_except(self, prefix: str, keep: str | None = None) -> bool:
        """Drop the session's tables named ``prefix*`` other than ``keep``; True if ``keep`` exists."""
        conn = self._conn()
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE starts_with(table_name, ?)", [prefix]
        ).fetchall()}
        for stale in tables - {keep}:
            conn.execute(f"DROP TABLE IF EXISTS {stale}")
        return keep in tables

    def _read_csv_numbered(self, path: str):
        """CSV as text with file row numbers: loaded once with insertion order preserved, so that
        ``row_number() OVER ()`` is the line's position in the file."""
        import hashlib
        import os

        # one table per file version: the assets of a run share it, a re-delivered file replaces it
        stat = os.stat(path)
        prefix = "landing_csv_" + hashlib.sha1(path.encode()).hexdigest()[:12]
        name = f"{prefix}_{hashlib.sha1(f'{stat.st_mtime_ns}:{stat.st_size}'.encode()).hexdigest()[:8]}"
        conn = self._conn()
        if self._drop_tables_except(prefix, keep=name):
            return self.session().table(name)
        conn.execute("SET preserve_insertion_order = true")
        try:
            # every delivered column is kept as text under a positional name, so no delivered
            # name (a backtick, a quote, an internal column's name) ever reaches the SQL
            from regcalc_core.files import csv_header

            header = csv_header(path)
            renamed = ", ".join(f'c{i} AS "{c}"' for i, c in enumerate(header) if _plain_name(c))
            conn.execute(
                f"CREATE TABLE {name} AS SELECT {renamed}, CAST(row_number() OVER () AS BIGINT) AS source_row "
                f"FROM read_csv({_sql_str(path)}, header = true, all_varchar = true, delim = ',', quote = '\"', "
                f"names = [{', '.join(_sql_str(f'c{i}') for i in range(len(header)))}])"
            )
        finally:
            conn.execute("SET preserve_insertion_order = false")
        return self.session().table(name)

    def read_parquet(self, paths: list[str]):
        globs = ", ".join(_sql_str(p.rstrip("/") + "/*.parquet") for p in paths)
        return self._view("parquet", f"SELECT * FROM read_parquet([{globs}], hive_partitioning = false)")

    def _view(self, kind: str, query: str):
        """A DataFrame over a DuckDB view of ``query``. sqlframe's own reader loads each path
        separately (a schema query each) and unions them, and every later operation copies that
        whole tree; a view is one table reference however many partitions it reads. Named by its
        query, so the same read is one view."""
        import hashlib

        name = f"{kind}_{hashlib.sha1(query.encode()).hexdigest()[:20]}"
        self._conn().execute(f"CREATE OR REPLACE VIEW {name} AS {query}")
        return self.session().table(name)

    def read_table(self, path):
        if path.endswith(".csv"):
            query = f"SELECT * FROM read_csv({_sql_str(path)}, header = true, auto_detect = true)"
        else:
            query = f"SELECT * FROM read_parquet({_sql_str(path.rstrip('/') + '/*.parquet' if os.path.isdir(path) else path)})"
        return self._view("table", query)

    def write_table(self, df, dest_dir):
        os.makedirs(dest_dir, exist_ok=True)
        self._conn().execute(
            f"COPY (SELECT * FROM ({self._sql(df)}) ORDER BY ALL) TO {_sql_str(os.path.join(dest_dir, 'part-0.parquet'))} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)")

    def checkpoint(self, df):
        import uuid

        # one live checkpoint per session: steps run one after another in a process
        self._drop_tables_except("checkpoint_")
        name = f"checkpoint_{uuid.uuid4().hex[:16]}"
        self._conn().execute(f"CREATE TABLE {name} AS {self._sql(df)}")
        return self.session().table(name)

    def from_arrow(self, table):
        import uuid

        self._drop_tables_except("arrow_")  # one live table per session, like checkpoints
        name = f"arrow_{uuid.uuid4().hex[:16]}"
        conn = self._conn()
        conn.register(f"{name}_view", table)
        try:
            conn.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_view")
        finally:
            conn.unregister(f"{name}_view")
        return self.session().table(name)

    def write_partitioned(self, df, dest_dir, date_dir, entity_dir, entity_index):
        # the directory columns are added in SQL, not as DataFrame operations: sqlframe re-plans
        # the whole query on every operation, which costs seconds on a deep stage
        if entity_index is None:
            entity = "0"
        else:
            cases = " ".join(f"WHEN {_sql_str(e)} THEN {int(n)}" for e, n in entity_index.items())
            entity = f"CASE entity_id {cases} ELSE -1 END"
        query = f"SELECT *, CAST(business_date AS VARCHAR) AS {date_dir}, {entity} AS {entity_dir} FROM ({self._sql(df)})"
        self._conn().execute(
            f"COPY ({query}) TO {_sql_str(dest_dir)} "
            f"(FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({date_dir}, {entity_dir}), OVERWRITE_OR_IGNORE true, "
            f"ROW_GROUP_SIZE 1000000, FILE_SIZE_BYTES {_sql_str(self.target_file_size)})"
        )

    def write_empty(self, df, dest_dir: str) -> None:
        import os

        os.makedirs(dest_dir, exist_ok=True)
        self._conn().execute(
            f"COPY (SELECT * FROM ({self._sql(df)}) WHERE false) TO "
            f"{_sql_str(os.path.join(dest_dir, 'part-empty.parquet'))} (FORMAT parquet, COMPRESSION zstd)"
        )


class SparkEngine(ComputeEngine):
    """Real Spark through dagster-pyspark: ``local[*]`` here, a cluster or Spark Connect at bank scale.

    Over Spark Connect (``spark.remote``) the cluster shares no disk with this process: it reads
    and writes only under ``storage``'s root (the stage store, ``s3a://`` in production), where
    the IO manager stages its writes and the landing files are copied before they are read.
    ``checkpoint`` keeps its result on the cluster and ``from_arrow`` sends the rows over gRPC."""

    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="Spark configuration, e.g. {'spark.master': 'k8s://...'} or {'spark.remote': 'sc://host:15002'}",
    )
    storage: StageStore | None = Field(
        default=None, description="the stage store whose root a remote session reads and writes (required over Connect)")

    @property
    def remote(self) -> bool:
        return "spark.remote" in self.spark_conf

    def _conf(self) -> dict[str, str]:
        conf = {
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "8",
            "spark.sql.parquet.compression.codec": "zstd",
            "spark.sql.sources.partitionOverwriteMode": "static",
        }
        if not self.remote:  # a Connect server's own static settings (its UI, memory) are the cluster's
            conf |= {"spark.app.name": "regcalc", "spark.ui.enabled": "false", "spark.master": "local[*]",
                     "spark.driver.memory": "4g"}
        conf.update(self.spark_conf)
        return conf

    def _shared(self, path: str) -> str:
        """A local file as the engine reads it: itself in this process, else a copy under the store's root."""
        if not self.remote:
            return path
        if self.storage is None:
            raise RuntimeError("a remote Spark session (spark.remote) reads and writes only through the stage "
                               "store's root: build the engine with storage= (regcalc_resources.build_resources)")
        return self.storage.share_file(path)

    def session(self):
        def build():
            from dagster_pyspark.resources import spark_session_from_config

            return spark_session_from_config(self._conf())

        return _cached(("spark", tuple(sorted(self._conf().items()))), build)

    def read_text_table(self, path: str, columns: list[str]):
        from pyspark.sql import functions as F
        from pyspark.sql.window import Window

        spark = self.session()
        if path.endswith(".csv"):
            df = (
                spark.read.option("header", True)
                .option("inferSchema", False)
                .option("emptyValue", None)
                .option("nullValue", "")
                .option("multiLine", True)  # a quoted value may hold a line break (RFC 4180)
                .csv(self._shared(path))
            )
        else:
            df = spark.read.parquet(self._shared(path))
        df = df.select(*[F.col(c).cast("string").alias(c) for c in columns])
        order = Window.orderBy(F.monotonically_increasing_id())
        return df.withColumn("source_row", F.row_number().over(order).cast("bigint"))

    def read_parquet(self, paths: list[str]):
        return self.session().read.parquet(*paths)

    def read_table(self, path):
        reader = self.session().read
        if path.endswith(".csv"):
            return reader.option("header", True).option("inferSchema", True).option("nullValue", "").csv(path)
        return reader.parquet(path)

    def write_table(self, df, dest_dir):
        df.orderBy(*df.columns).coalesce(1).write.mode("overwrite").option("compression", "zstd").parquet(dest_dir)

    def checkpoint(self, df):
        return df.localCheckpoint(eager=True)

    def from_arrow(self, table):
        return self.session().createDataFrame(table)

    def write_partitioned(self, df, dest_dir, date_dir, entity_dir, entity_index):
        from pyspark.sql import functions as F

        if entity_index is None:
            number = F.lit(0)
        else:
            number = F.lit(-1)
            for entity, n in entity_index.items():
                number = F.when(F.col("entity_id") == F.lit(entity), F.lit(int(n))).otherwise(number)
        out = df.withColumn(date_dir, F.col("business_date").cast("string")).withColumn(entity_dir, number)
        out.write.mode("overwrite").option("compression", "zstd").partitionBy(date_dir, entity_dir).parquet(dest_dir)

    def write_empty(self, df, dest_dir: str) -> None:
        df.limit(0).coalesce(1).write.mode("overwrite").option("compression", "zstd").parquet(dest_dir)
