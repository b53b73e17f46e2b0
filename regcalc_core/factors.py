"""Regulatory factor tables: versioned YAML data compiled into first-match-wins column expressions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from regcalc_core.conditions import all_sql, from_when, sql_literal

DEFAULT_REGIME = "bcbs_238_295_v1"


@dataclass(frozen=True)
class TableRow:
    id: str
    when: dict
    value: object
    op: str = "value"


@dataclass(frozen=True)
class FactorTables:
    regime: str
    version: int
    tables: dict  # name -> tuple[TableRow, ...]

    @property
    def label(self) -> str:
        return f"{self.regime}@v{self.version}"


@lru_cache(maxsize=8)
def load_factor_tables(name: str = DEFAULT_REGIME) -> FactorTables:
    """Load a regime's tables shipped in ``regcalc_core/factors/<name>.yaml``."""
    text = resources.files("regcalc_core").joinpath("factors", f"{name}.yaml").read_text()
    doc = yaml.safe_load(text)
    tables = {
        table: tuple(TableRow(r["id"], r.get("when") or {}, r["value"], r.get("op", "value")) for r in rows)
        for table, rows in doc["tables"].items()
    }
    return FactorTables(doc["regime"], int(doc["version"]), tables)


def first_match(F, rows: tuple[TableRow, ...], pick):
    """CASE WHEN row1 THEN pick(row1) WHEN row2 ... END (null when no row matches), as one column.

    Compiled to a Spark SQL expression string (``F.expr``): both engines parse it once, which is
    far cheaper than composing a hundred Column objects on sqlframe.
    """
    branches = " ".join(f"WHEN {condition_sql(row.when)} THEN {pick(row)}" for row in rows)
    return F.expr(f"CASE {branches} END")


def value_of_rule(F, rows: tuple[TableRow, ...], rule_column: str):
    """The value of the table row named in ``rule_column`` (null when no row matched)."""
    branches = " ".join(f"WHEN {sql_literal(row.id)} THEN {sql_literal(float(row.value))}" for row in rows)
    return F.expr(f"CASE `{rule_column}` {branches} END")


def condition_sql(when: dict) -> str:
    """A table row's ``when`` conditions as Spark SQL (``regcalc_core.conditions`` semantics)."""
    return all_sql(from_when(when))
