"""The warehouse that BI reads: partitions replaced idempotently in one transaction.

``DuckDBWarehouse`` is the embedded default; Redshift and PostgreSQL backends implement the same
interface in production (publication issue).
"""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

SCHEMA_SQL = {
    "liquidity_metrics": """
        business_date DATE NOT NULL, entity_id VARCHAR NOT NULL, reporting_currency VARCHAR,
        basis VARCHAR NOT NULL, hqla_l1 DOUBLE, hqla_l2a DOUBLE, hqla_l2b DOUBLE, adj15 DOUBLE, adj40 DOUBLE, hqla DOUBLE,
        total_outflows DOUBLE, total_inflows DOUBLE, capped_inflows DOUBLE, net_outflows DOUBLE,
        lcr DOUBLE, asf DOUBLE, rsf DOUBLE, nsfr DOUBLE, positions_accepted BIGINT,
        positions_quarantined BIGINT, final_rules_version VARCHAR, loaded_at TIMESTAMP, run_id VARCHAR,
        PRIMARY KEY (business_date, entity_id, basis)""",
    "liquidity_components": """
        business_date DATE NOT NULL, entity_id VARCHAR NOT NULL, reporting_currency VARCHAR,
        basis VARCHAR NOT NULL, component VARCHAR NOT NULL, component_order INTEGER, amount DOUBLE,
        position_count BIGINT, aggregation_rules_version VARCHAR, loaded_at TIMESTAMP, run_id VARCHAR,
        PRIMARY KEY (business_date, entity_id, basis, component)""",
    "adjustment_trail": """
        business_date DATE NOT NULL, entity_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, step INTEGER NOT NULL,
        rule_id VARCHAR, version INTEGER, row_key VARCHAR NOT NULL, source_system VARCHAR, position_id VARCHAR,
        component VARCHAR, field VARCHAR NOT NULL, value_before DOUBLE, value_after DOUBLE, clamped BOOLEAN NOT NULL,
        loaded_at TIMESTAMP, run_id VARCHAR,
        PRIMARY KEY (business_date, entity_id, stage, row_key, step)""",
    # natural key (business_date, entity_id, output_stage, output_key, input_stage, input_key), not
    # declared: the lineage check proves it, and an index on millions of edges would slow every load
    "lineage": """
        business_date DATE NOT NULL, entity_id VARCHAR NOT NULL, output_stage VARCHAR NOT NULL,
        output_key VARCHAR NOT NULL, input_stage VARCHAR NOT NULL, input_key VARCHAR NOT NULL, role VARCHAR NOT NULL,
        base_contribution DOUBLE, contribution DOUBLE, factor_rule VARCHAR, source_system VARCHAR, position_id VARCHAR,
        source_file VARCHAR, source_row BIGINT, rule_id VARCHAR, rule_version INTEGER, loaded_at TIMESTAMP, run_id VARCHAR""",
}


class Warehouse(dg.ConfigurableResource):
    """Interface: replace whole (business_date, entity_id) partitions of a table atomically."""

    def replace_partitions(self, table: str, rows: pa.Table, partitions: list[tuple[str, str]], run_id: str) -> int:
        raise NotImplementedError

    def query(self, sql: str, params: list | None = None) -> list[dict]:
        raise NotImplementedError


class DuckDBWarehouse(Warehouse):
    """An embedded DuckDB database file (``$REGCALC_HOME/warehouse.duckdb``)."""

    path: str

    def _connect(self, read_only: bool = False):
        import os

        import duckdb

        if not read_only:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        return duckdb.connect(self.path, read_only=read_only)

    def replace_partitions(self, table, rows, partitions, run_id):
        con = self._connect()
        try:
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({SCHEMA_SQL[table]})")
            columns = [c for c in rows.column_names]
            con.register("incoming", rows)
            con.execute("BEGIN TRANSACTION")
            keys = pa.table({"business_date": [p[0] for p in partitions], "entity_id": [p[1] for p in partitions]})
            con.register("replaced", keys)
            con.execute(
                f"DELETE FROM {table} WHERE (business_date, entity_id) IN "
                "(SELECT CAST(business_date AS DATE), entity_id FROM replaced)"
            )
            if rows.num_rows:
                cols = ", ".join(columns)
                con.execute(
                    f"INSERT INTO {table} ({cols}, loaded_at, run_id) SELECT {cols}, now(), ? FROM incoming", [run_id]
                )
            con.execute("COMMIT")
            return rows.num_rows
        except Exception:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()

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
