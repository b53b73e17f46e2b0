"""Connections from a DSN that holds a password, whose errors never repeat it.

psycopg repeats an unparseable connection string in its error (``missing "=" after
"postgresq://user:PASSWORD@..."``), and the error would then reach the command line, the Dagster
event log and the compute logs. Every PostgreSQL connection from a ``REGCALC_*_DSN`` goes through
``connect_postgres``: the DSN is parsed first (an unparseable one is a ``RegcalcInputError`` naming
its variable, its message redacted), and any other error of the connection is re-raised redacted
(``regcalc_core.redaction``) with no chained error holding the DSN.
"""

from __future__ import annotations

import os

from regcalc_core.errors import RegcalcInputError, first_line
from regcalc_core.redaction import redact, secret_safe_call


class InvalidDsnError(RegcalcInputError, ValueError):
    """A connection string that cannot be parsed; the message names its variable, never its password."""


def _environ_with(variable: str, dsn: str) -> dict[str, str]:
    """The environment with ``variable`` set to ``dsn`` (a DSN passed in, not read from it)."""
    return {**os.environ, variable: dsn}


def parse_postgres_dsn(dsn: str, variable: str) -> dict[str, str]:
    """The libpq fields of ``dsn`` (a URI or ``key=value`` string); ``InvalidDsnError`` naming
    ``variable`` when libpq cannot parse it or its port is not a number."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except Exception as exc:  # noqa: BLE001 - psycopg's message repeats the DSN: redacted below
        problem = redact(first_line(exc), _environ_with(variable, dsn))
    else:
        if not info.get("port") or info["port"].replace(",", "").isdigit():
            return info
        problem = "the port is not a number"
    raise InvalidDsnError(f"{variable} is not a valid PostgreSQL connection string: {problem}")


def connect_postgres(dsn: str, variable: str, **kwargs):
    """``psycopg.connect(dsn, **kwargs)`` for the DSN of ``variable`` (e.g. ``REGCALC_RULES_DSN``):
    parsed first (``parse_postgres_dsn``), then connected; an error never carries the password."""
    import psycopg

    def connect():
        parse_postgres_dsn(dsn, variable)
        return psycopg.connect(dsn, **kwargs)

    return secret_safe_call(connect, environ=_environ_with(variable, dsn))
