"""Errors a user can act on: bad input, bad arguments, a busy or unwritable resource.

The command line prints such an error as one line and exits with code 2 (``--debug`` shows the
trace); a Dagster run keeps the full trace in its event log.
"""

from __future__ import annotations


class RegcalcInputError(Exception):
    """Input, arguments or environment the user must fix; the message names the culprit."""


class InvalidIdentifierError(RegcalcInputError):
    """An identifier that would become a path, a partition key or a SQL name breaks the rules."""


class ResourceBusyError(RegcalcInputError):
    """A file or a business date is held by another process or run; the message names the holder."""
