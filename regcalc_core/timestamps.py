"""Moments given on the command line or in run tags: parsed, converted to UTC, compared in UTC."""

from __future__ import annotations

import datetime as dt

from regcalc_core.errors import RegcalcInputError


def is_iso_date(value) -> bool:
    """Whether ``value`` is a real calendar date written exactly YYYY-MM-DD (``2024-02-30`` is not)."""
    try:
        return isinstance(value, str) and len(value) == 10 and dt.date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False


def parse_utc(value: str, what: str = "timestamp") -> dt.datetime:
    """An ISO-8601 moment as a naive UTC datetime (the stores keep UTC without a zone).

    An offset is converted (``2026-11-30T06:00:00+02:00`` is 04:00 UTC); a moment without one is
    taken as UTC; a date alone is its midnight UTC. Anything else is a RegcalcInputError."""
    text = value.strip()
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise RegcalcInputError(
            f"{what} {value!r} is not an ISO-8601 timestamp such as 2026-11-30T16:00:00Z or 2026-11-30T18:00:00+02:00"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


def format_utc(moment: dt.datetime) -> str:
    """The canonical text of a naive UTC moment (for run tags): ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    return moment.isoformat() + "Z"
