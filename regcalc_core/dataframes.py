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
