"""One EOD (or recalc) per business date at a time, and no run left "STARTED" by a dead process.

The lock is a Dagster global concurrency key per business date (``regcalc-eod-2024-06-28``,
limit 1) in the instance's event log storage, so it holds across processes and hosts on the
SQLite and the PostgreSQL instance alike, and the Dagster UI shows it with its holder. The
holder is a lock id of its own (``regcalc-eod-<hex>``, claimed in place of a run id, since one
EOD is several runs) with the holding process (host / pid / start time) as the step key; every
run made under it carries both as tags (``regcalc/date_lock``, ``regcalc/process``).

A process that is killed leaves its runs STARTED and its claim in place. The next holder of the
date marks such a run failed ("process 1234 on host X is gone") and frees its claim; a waiter
frees the claim of a holder whose process is gone instead of waiting for it. A process counts as
gone only on its own host: it no longer exists, is a zombie, or its pid now belongs to a process
started at another time.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from regcalc_core.errors import ResourceBusyError

BUSINESS_DATE_TAG = "regcalc/business_date"
LOCK_TAG = "regcalc/date_lock"
PROCESS_TAG = "regcalc/process"
CLAIMS_LOCK = ".regcalc-claims.lock"  # serializes claims on this host (SQLite has no SELECT ... FOR UPDATE)


def lock_key(business_date: str) -> str:
    """The concurrency key that stands for one business date."""
    return f"regcalc-eod-{business_date}"


# -- which process, and is it still there (pure apart from reading /proc) -------------------------

def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state first), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2:].split()


def process_start(pid: int) -> str:
    """When ``pid`` started (field 22 of /proc/<pid>/stat, clock ticks after boot); "" if unknown."""
    stat = _proc_stat(pid) if os.path.exists("/proc/self/stat") else None
    return stat[19] if stat else ""


@dataclass(frozen=True)
class ProcessIdentity:
    """A process that runs regcalc work: host, pid and start time (so a reused pid is not taken
    for the original process)."""

    host: str
    pid: int
    start: str = ""

    @classmethod
    def current(cls) -> "ProcessIdentity":
        return cls(socket.gethostname(), os.getpid(), process_start(os.getpid()))

    @classmethod
    def parse(cls, token: str | None) -> "ProcessIdentity | None":
        """The inverse of ``token``; None for anything else (a run not made by regcalc)."""
        host, _, rest = (token or "").rpartition("@")
        pid, _, start = rest.partition("/")
        return cls(host, int(pid), start) if host and pid.isdigit() else None

    def token(self) -> str:
        """``host@pid/start``: the run tag and the lock's step key."""
        return f"{self.host}@{self.pid}/{self.start}"

    def is_gone(self) -> bool:
        """True only when it is certain: a process of this host that no longer runs (absent,
        zombie, or its pid reused by a later process). A process of another host is never gone."""
        if self.host != socket.gethostname():
            return False
        if not os.path.exists("/proc/self/stat"):  # no /proc: existence only
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
            return False
        stat = _proc_stat(self.pid)
        if stat is None or stat[0] in ("Z", "X"):
            return True
        return bool(self.start) and stat[19] != self.start

    def __str__(self) -> str:
        return f"process {self.pid} on host {self.host}"


@dataclass(frozen=True)
class Holder:
    """Who holds a business date: the lock id, its process, since when, and its latest run."""

    lock_id: str
    process: ProcessIdentity | None = None
    since: dt.datetime | None = None
    run_id: str | None = None
    run_started: dt.datetime | None = None


def _utc(moment: dt.datetime | None) -> str:
    if moment is None:
        return "an unknown time"
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def busy_message(business_date: str, holder: Holder | None, waited: float) -> str:
    """The one line a waiter gives up with: which run (or lock) holds the date, since when."""
    if holder is None:
        who = "another EOD"
    elif holder.run_id:
        who = f"run {holder.run_id} (started {_utc(holder.run_started)}"
        who += f", {holder.process})" if holder.process else ")"
    else:
        who = f"{holder.lock_id} ({holder.process or 'unknown process'}, since {_utc(holder.since)}, no run started yet)"
    return (f"business date {business_date} is held by {who}; gave up after {waited:g}s "
            "(REGCALC_LOCK_TIMEOUT): wait for it to finish or try again later")


def orphan_reason(process: ProcessIdentity, business_date: str) -> str:
    return (f"{process} is gone: run orphaned (its process died without ending it); "
            f"marked failed by the next EOD of {business_date}")


# -- wiring: the instance's concurrency slots and runs -------------------------------------------

@dataclass(frozen=True)
class DateLock:
    """A held business date: its key, the lock id and the tags every run made under it carries."""

    key: str
    lock_id: str
    tags: dict[str, str] = field(default_factory=dict)
    orphans: tuple[str, ...] = ()  # run ids found orphaned and marked failed on taking the lock


@contextmanager
def business_date_lock(instance, business_date: str, purpose: str = "eod", timeout: float | None = None,
                       poll: float = 0.5):
    """Hold ``business_date`` for the block, waiting up to ``timeout`` (default
    ``$REGCALC_LOCK_TIMEOUT``) for another holder; then ``ResourceBusyError`` names it. On taking
    the lock, runs of the date orphaned by a dead process are marked failed. The lock is always
    released, on failure too; a killed holder's claim is freed by the next one who needs it."""
    from regcalc_resources.settings import lock_timeout

    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        raise RuntimeError("the Dagster instance has no concurrency tables: run `dagster instance migrate`")
    key = lock_key(business_date)
    me = ProcessIdentity.current()
    lock_id = f"regcalc-{purpose}-{uuid.uuid4().hex[:12]}"
    limit = lock_timeout() if timeout is None else timeout
    deadline = time.monotonic() + limit
    try:
        while not _claim(instance, key, lock_id, me):
            freed = release_dead_holders(instance, key)  # then claim again at once
            if time.monotonic() >= deadline:
                raise ResourceBusyError(busy_message(business_date, describe_holder(instance, key), limit))
            if not freed:
                time.sleep(min(poll, max(deadline - time.monotonic(), 0.0)))
        orphans = fail_orphaned_runs(instance, business_date)
        yield DateLock(key, lock_id, {LOCK_TAG: lock_id, PROCESS_TAG: me.token()}, tuple(orphans))
    finally:
        storage.free_concurrency_slots_for_run(lock_id)  # the claim, or the place in the queue


def _claim(instance, key: str, lock_id: str, me: ProcessIdentity) -> bool:
    """One attempt: make sure the key has exactly one slot, then claim it (queued if taken).

    Claims from this host are serialized by a file lock: without it, processes creating the key
    at the same moment fail on SQLite (``UNIQUE constraint failed: concurrency_limits``)."""
    from regcalc_cli.instance import exclusive_lock

    storage = instance.event_log_storage
    with exclusive_lock(Path(instance.root_directory) / CLAIMS_LOCK):
        if storage.get_concurrency_info(key).slot_count != 1:
            try:
                storage.set_concurrency_slots(key, 1)
            except Exception:  # another host created the key at the same moment (PostgreSQL instance)
                if storage.get_concurrency_info(key).slot_count != 1:
                    raise
        return storage.claim_concurrency_slot(key, lock_id, me.token()).is_claimed


def release_dead_holders(instance, key: str) -> list[str]:
    """Free the claims and queue places on ``key`` of processes that are gone; their lock ids."""
    storage = instance.event_log_storage
    info = storage.get_concurrency_info(key)
    entries = [(s.run_id, s.step_key) for s in info.claimed_slots] + [(p.run_id, p.step_key) for p in info.pending_steps]
    dead = sorted({lock_id for lock_id, step in entries if (p := ProcessIdentity.parse(step)) and p.is_gone()})
    for lock_id in dead:
        storage.free_concurrency_slots_for_run(lock_id)
    return dead


def describe_holder(instance, key: str) -> Holder | None:
    """The current holder of ``key`` with its most recent run, or None if nobody holds it now."""
    import dagster as dg

    info = instance.event_log_storage.get_concurrency_info(key)
    slot = next(iter(info.claimed_slots), None)
    if slot is None:
        return None
    since = next((p.assigned_timestamp for p in info.pending_steps if p.run_id == slot.run_id), None)
    runs = instance.get_runs(dg.RunsFilter(tags={LOCK_TAG: slot.run_id}), limit=1)
    started = None
    if runs:
        record = instance.get_run_record_by_id(runs[0].run_id)
        if record is not None and record.start_time:
            started = dt.datetime.fromtimestamp(record.start_time, dt.timezone.utc)
    return Holder(slot.run_id, ProcessIdentity.parse(slot.step_key), since, runs[0].run_id if runs else None, started)


def fail_orphaned_runs(instance, business_date: str) -> list[str]:
    """Mark failed every unfinished run of ``business_date`` whose recorded process is gone, with
    the reason, and free any claim it held. Runs without a recorded process (launched by the
    daemon or the UI) are left alone. Returns the run ids marked."""
    import dagster as dg

    storage = instance.event_log_storage
    active = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
    marked = []
    for run in instance.get_runs(dg.RunsFilter(tags={BUSINESS_DATE_TAG: business_date}, statuses=active)):
        process = ProcessIdentity.parse(run.tags.get(PROCESS_TAG))
        if process is None or not process.is_gone():
            continue
        instance.report_run_failed(run, orphan_reason(process, business_date))
        storage.free_concurrency_slots_for_run(run.run_id)
        marked.append(run.run_id)
    return marked
