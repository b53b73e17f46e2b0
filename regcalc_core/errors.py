"""Errors a user can act on: bad input, bad arguments, a busy or unwritable resource.

The command line prints such an error as one line and exits with code 2 (``--debug`` shows the
trace); a Dagster run keeps the full trace in its event log.
"""

from __future__ import annotations


def first_line(exc: BaseException, limit: int = 500) -> str:
    """An error's message on one line (a multi-line message keeps its first line; an empty one
    gives the error's type), with every secret masked (``redaction.redact``): the command line
    prints errors through it."""
    from regcalc_core.redaction import redact

    text = redact(str(exc).strip()) or type(exc).__name__
    first = text.splitlines()[0]
    return first if len(first) <= limit else first[:limit - 3] + "..."


class RegcalcInputError(Exception):
    """Input, arguments or environment the user must fix; the message names the culprit."""


class InvalidIdentifierError(RegcalcInputError):
    """An identifier that would become a path, a partition key or a SQL name breaks the rules."""


class ResourceBusyError(RegcalcInputError):
    """A file or a business date is held by another process or run; the message names the holder."""
