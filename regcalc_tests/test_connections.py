"""Connections from a DSN with a password (regcalc_resources/connections.py and the warehouses that
use it): an unparseable DSN names its variable and never its password; a refused connection keeps
its driver's error type, without the password and without a chained error that holds it."""

from __future__ import annotations

import pytest

from regcalc_core.errors import RegcalcInputError
from regcalc_resources.connections import InvalidDsnError, connect_postgres, parse_postgres_dsn


def _no_chain(error: BaseException) -> bool:
    return error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


@pytest.mark.parametrize(("dsn", "problem"), [
    ("postgresq://user:ParsePw-1@127.0.0.1:1/db",
     'missing "=" after "postgresq://user:***@127.0.0.1:1/db" in connection info string'),
    ("postgresql://user:Parse%ZZPw-2@127.0.0.1/db", 'invalid percent-encoded token: "***"'),
    ("postgresql://user:ParsePw-3@db:notaport/risk", "the port is not a number"),
])
def test_an_unparseable_dsn_names_its_variable_not_its_password(dsn, problem):
    with pytest.raises(InvalidDsnError) as caught:
        connect_postgres(dsn, "REGCALC_RULES_DSN")
    message = str(caught.value)
    assert message == f"REGCALC_RULES_DSN is not a valid PostgreSQL connection string: {problem}"
    assert "Pw-" not in message and _no_chain(caught.value)
    assert isinstance(caught.value, RegcalcInputError) and isinstance(caught.value, ValueError)


def test_a_refused_connection_keeps_the_driver_error_without_the_password():
    import psycopg

    with pytest.raises(psycopg.OperationalError) as caught:
        connect_postgres("postgresql://user:RefusedPw-4@127.0.0.1:1/db", "REGCALC_WAREHOUSE_DSN", connect_timeout=2)
    assert "127.0.0.1" in str(caught.value) and "RefusedPw-4" not in str(caught.value)


def test_a_well_formed_dsn_parses_to_its_fields():
    info = parse_postgres_dsn("postgresql://analyst:s%40cret@db.internal:5433/risk?sslmode=require", "X_DSN")
    assert (info["user"], info["password"], info["host"], info["port"], info["dbname"]) == (
        "analyst", "s@cret", "db.internal", "5433", "risk")


def test_the_postgresql_warehouse_connects_through_it():
    from regcalc_resources.warehouse_postgres import PostgresWarehouse

    warehouse = PostgresWarehouse(dsn="postgresql://wh:Wh%ZZPw-5@127.0.0.1/db")
    for call in (lambda: warehouse.query("SELECT 1"), warehouse.dbt_profile_env):
        with pytest.raises(InvalidDsnError, match="^REGCALC_WAREHOUSE_DSN is not a valid") as caught:
            call()
        assert "Pw-5" not in str(caught.value) and _no_chain(caught.value)


@pytest.mark.parametrize(("dsn", "message"), [
    ("redshft//loader:RsPw-6@cluster:5439/dev", "REGCALC_REDSHIFT_DSN is neither a URL nor key=value pairs"),
    ("mysql://loader:RsPw-7@cluster/dev", "REGCALC_REDSHIFT_DSN must be a redshift:// or postgresql:// URL"),
    ("host=cluster port=RsPw-8 password=x", "REGCALC_REDSHIFT_DSN option 'port' is not a number"),
])
def test_the_redshift_warehouse_refuses_a_bad_dsn_without_its_password(dsn, message):
    from regcalc_resources.warehouse_redshift import RedshiftWarehouse

    warehouse = RedshiftWarehouse(dsn=dsn, iam_role="arn:aws:iam::1:role/r", staging_bucket="b")
    for call in (warehouse._connect, warehouse.dbt_profile_env, lambda: warehouse.query("SELECT 1")):
        with pytest.raises(InvalidDsnError) as caught:
            call()
        assert str(caught.value) == message and "RsPw" not in str(caught.value) and _no_chain(caught.value)
