"""Opening a DuckDB database file when another process may hold it.

DuckDB locks its file: one process may write, or any number may read. An analyst with the
warehouse open, or a second command reading the rule store, holds that lock; the EOD then waits,
retrying, for up to ``$REGCALC_LOCK_TIMEOUT`` seconds, and fails with a ``ResourceBusyError``
naming the holder (DuckDB's own message carries its PID). Readers open the file read-only so
that they share it with each other.
"""

from __future__ import annotations

import os
import re
import time

from regcalc_core.errors import RegcalcInputError, ResourceBusyError
from regcalc_resources.settings import lock_timeout

_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def lock_holder(message: str) -> tuple[int, str] | None:
    """(pid, program) of the process DuckDB says holds the file, or None if it is not a lock conflict."""
    found = _HOLDER.search(message)
    return (int(found["pid"]), found["program"]) if found else None


def _unwritable(message: str) -> bool:
    return "Read-only file system" in message or "Permission denied" in message


def connect(path: str, read_only: bool = False, timeout: float | None = None, poll: float = 0.25):
    """A DuckDB connection to the file ``path``, waiting while another process holds its lock.

    ``read_only`` shares the file with other readers (and never creates it). ``timeout`` defaults
    to ``lock_timeout()``; when it runs out, ``ResourceBusyError`` names the holding process. A
    file or directory regcalc cannot write gives a ``RegcalcInputError`` naming it.
    """
    import duckdb

    if not read_only:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    limit = lock_timeout() if timeout is None else timeout
    deadline = time.monotonic() + limit
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            message = str(exc)
            holder = lock_holder(message)
            if holder is None:
                if _unwritable(message):
                    raise RegcalcInputError(f"cannot open {path}: {message.split(': ')[-1]}") from exc
                raise
            if time.monotonic() >= deadline:
                pid, program = holder
                raise ResourceBusyError(
                    f"{path} is locked by another process (PID {pid}, {program}); gave up after "
                    f"{limit:g}s (REGCALC_LOCK_TIMEOUT): close that session or wait for it to finish"
                ) from exc
            time.sleep(min(poll, max(deadline - time.monotonic(), 0.0)))
