"""The Dagster instance under $REGCALC_HOME, shared by the CLI, `dagster dev` and the daemon.

The instance is created and migrated once: its config file and its SQLite storages (runs,
event log index, schedules) are created and stamped by one process at a time, under an exclusive
file lock in the Dagster home. Without it, two commands started together in a fresh home both
stamp ``alembic_version`` and leave a database with two heads that no later command can open.
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from regcalc_core.errors import RegcalcInputError
from regcalc_resources.settings import regcalc_home

# the UI's first-run "Join the Dagster community" dialog (shown on a loopback origin) stays off:
# it would cover the page of every user of a fresh home until someone dismissed it
NUX_OFF = """nux:
  enabled: false
"""
INSTANCE_YAML = """# written by regcalc: SQLite instance storage under $REGCALC_HOME (see helm/ for PostgreSQL)
storage:
  sqlite:
    base_dir: {base}
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 1
telemetry:
  enabled: false
""" + NUX_OFF
INIT_LOCK = ".regcalc-instance.lock"  # held while the instance is created or migrated
UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class UnwritableHomeError(RegcalcInputError):
    """$REGCALC_HOME (or a directory regcalc must write under it) cannot be written."""


def unwritable(path: Path, exc: OSError | None = None) -> UnwritableHomeError:
    """The one-line error for a directory regcalc cannot write (read-only file system, permissions)."""
    reason = f": {exc.strerror}" if exc is not None and exc.strerror else ""
    return UnwritableHomeError(f"cannot write to {path}{reason} "
                               "($REGCALC_HOME must be a writable directory)")


def writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and prove it writable by creating and removing a file in it.

    ``os.access`` alone is not enough: root passes it on a 0555 directory, yet an immutable
    directory or a read-only mount still refuses the write. Any failure (read-only file system,
    permissions, a file in the way, a full disk) raises ``UnwritableHomeError`` naming ``path``.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".regcalc-write-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:  # read-only, permissions, a file in the way, no space: the user's to fix
        raise unwritable(path, exc) from exc
    return path


@contextmanager
def exclusive_lock(path: Path):
    """Hold an exclusive OS lock (``flock``) on ``path`` for the duration of the block; other
    processes block until it is released. The kernel releases it if the holder dies."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno in UNWRITABLE:
            raise unwritable(path.parent, exc) from exc
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``: a reader
    sees the old file or the whole new one, never a partial one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def dagster_home() -> Path:
    """``$REGCALC_HOME/dagster``, created with its ``dagster.yaml`` if missing (under the init lock).

    A config that regcalc wrote before it turned the first-run dialog off gains the ``nux``
    setting; a config written by anyone else is left as it is."""
    writable_dir(regcalc_home())
    home = writable_dir(regcalc_home() / "dagster")
    config = home / "dagster.yaml"
    if not config.exists() or lacks_nux_setting(config):
        with exclusive_lock(home / INIT_LOCK):
            if not config.exists():
                write_atomically(config, INSTANCE_YAML.format(base=home / "storage"))
            elif lacks_nux_setting(config):
                write_atomically(config, config.read_text().rstrip("\n") + "\n" + NUX_OFF)
    return home


def lacks_nux_setting(config: Path) -> bool:
    """Whether ``config`` is a ``dagster.yaml`` regcalc wrote that has no top-level ``nux`` key."""
    text = config.read_text()
    return text.startswith(INSTANCE_YAML.splitlines()[0]) and not any(
        line.startswith("nux:") for line in text.splitlines())


def get_instance():
    """The Dagster instance of $REGCALC_HOME, its storages created and stamped exactly once.

    Loading the instance creates any missing SQLite database and stamps its alembic version;
    that happens under the exclusive init lock, and every storage is touched while the lock is
    held so that nothing is left to create lazily by a later, concurrent caller.
    """
    import dagster as dg

    home = dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    with exclusive_lock(home / INIT_LOCK):
        try:
            instance = dg.DagsterInstance.get()
            touch_storages(instance)
        except Exception as exc:  # noqa: BLE001 - only the read-only cases are the user's to fix
            if "readonly database" in str(exc) or "read-only file system" in str(exc).lower():
                raise unwritable(home, None) from exc
            raise
    return instance


def touch_storages(instance) -> None:
    """One cheap read of each storage, which creates and stamps any database not yet there
    (the run and schedule databases, the event log index and its concurrency tables)."""
    instance.get_runs(limit=1)
    instance.event_log_storage.get_concurrency_keys()
    if instance.schedule_storage is not None:
        instance.all_instigator_state()
