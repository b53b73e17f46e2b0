"""The PySpark API of whichever engine a DataFrame belongs to.

Logic modules call ``functions_for(df)`` instead of importing ``pyspark.sql.functions`` so that
the same code runs on real Spark and on sqlframe (DuckDB) without a code change.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


def is_sqlframe(obj: Any) -> bool:
    """Whether a DataFrame or session is sqlframe's (DuckDB) rather than real Spark's."""
    return type(obj).__module__.startswith("sqlframe")


def functions_for(obj: Any) -> tuple[ModuleType, Any]:
    """(functions module, Window class) for a DataFrame or session of either engine."""
    if is_sqlframe(obj):
        import sqlframe.base.functions as F
        from sqlframe.base.window import Window

        return F, Window
    import pyspark.sql.functions as F
    from pyspark.sql.window import Window

    return F, Window


def session_of(df: Any) -> Any:
    return df.session if is_sqlframe(df) else df.sparkSession


def lookup(left, right, key: str):
    """``left`` LEFT JOIN ``right`` on one key column that both sides name alike."""
    return left.join(right, on=key, how="left")


def column_types(df: Any) -> dict[str, str]:
    """Column name -> Spark simple type name (``string``, ``bigint``, ``decimal(38,10)`` ...), on
    either engine (sqlframe has no ``dtypes``)."""
    return {f.name: f.dataType.simpleString() for f in df.schema.fields}


_ARROW_TYPES = {"int": "int32", "bigint": "int64", "string": "string", "date": "date32", "boolean": "bool_",
                "double": "float64", "timestamp": "timestamp"}


def frame_of_rows(session: Any, rows: list[tuple], schema: str) -> Any:
    """A small DataFrame of Python ``rows`` with ``schema`` ("name type, ..."). On sqlframe the rows
    go to DuckDB as one Arrow table (``createDataFrame`` there plans every value as a SQL literal:
    seconds for a few thousand rows, and again in every later operation); on Spark,
    ``createDataFrame``. The table is named by its content, so the same rows are one table."""
    if not is_sqlframe(session):
        return session.createDataFrame(rows, schema)
    import hashlib

    import pyarrow as pa

    fields = []
    for part in schema.split(","):
        name, kind = part.split()
        arrow = getattr(pa, _ARROW_TYPES[kind])
        fields.append(pa.field(name, arrow("us") if kind == "timestamp" else arrow()))
    arrow_schema = pa.schema(fields)
    table = pa.Table.from_pylist([dict(zip(arrow_schema.names, row)) for row in rows], schema=arrow_schema)
    name = "rows_" + hashlib.sha1(repr((schema, rows)).encode()).hexdigest()[:24]
    conn = session._conn
    conn.register(f"{name}_in", table)
    try:
        conn.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_in")
    finally:
        conn.unregister(f"{name}_in")
    return session.table(name)
