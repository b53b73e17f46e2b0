"""Issue 11 items 6b and 12: two EODs of one business date never run at once (the second waits,
then names the run holding the date), and a run left STARTED by a killed process is marked
failed, with the reason, by the next EOD of its date. Real processes, a real instance."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from click.testing import CliRunner

from regcalc_cli.date_lock import Holder, ProcessIdentity, business_date_lock, busy_message, lock_key

REPO = Path(__file__).resolve().parents[2]
DATE = "2024-06-28"

# Another EOD of DATE: holds the date and runs a job until the file argv[2] appears.
HOLDER = """
import os, sys, time
import dagster as dg
from regcalc_cli.date_lock import BUSINESS_DATE_TAG, business_date_lock
from regcalc_cli.instance import get_instance

date, release = sys.argv[1], sys.argv[2]

@dg.op
def materialize_slowly():
    print("running", flush=True)
    while not os.path.exists(release):
        time.sleep(0.05)

@dg.job
def other_eod():
    materialize_slowly()

instance = get_instance()
with business_date_lock(instance, date) as lock:
    other_eod.execute_in_process(instance=instance, tags={BUSINESS_DATE_TAG: date, **lock.tags})
"""


def _env(home: Path) -> dict:
    env = {**os.environ, "REGCALC_HOME": str(home), "REGCALC_LOCK_TIMEOUT": "600"}
    env.pop("DAGSTER_HOME", None)
    return env


def _runs(instance, **filters):
    import dagster as dg

    return instance.get_runs(dg.RunsFilter(tags={"regcalc/business_date": DATE}, **filters))


def test_process_identity_round_trip_and_liveness():
    me = ProcessIdentity.current()
    assert ProcessIdentity.parse(me.token()) == me
    assert ProcessIdentity.parse(None) is None and ProcessIdentity.parse("daemon") is None
    assert not me.is_gone()
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert ProcessIdentity(me.host, done.pid).is_gone()  # exited (and reaped)
    assert ProcessIdentity(me.host, me.pid, str(int(me.start) + 1)).is_gone()  # pid now another process
    assert not ProcessIdentity(f"not-{socket.gethostname()}", done.pid).is_gone()  # another host: unknown


def test_busy_message_names_the_run_and_its_start():
    import datetime as dt

    holder = Holder("regcalc-eod-1", ProcessIdentity("h", 7, "9"), None, "run-1",
                    dt.datetime(2024, 6, 28, 18, 0, tzinfo=dt.timezone.utc))
    assert busy_message(DATE, holder, 600) == (
        f"business date {DATE} is held by run run-1 (started 2024-06-28 18:00:00 UTC, process 7 on host h); "
        "gave up after 600s (REGCALC_LOCK_TIMEOUT): wait for it to finish or try again later")
    assert "no run started yet" in busy_message(DATE, Holder("regcalc-eod-1", ProcessIdentity("h", 7)), 1)


def test_second_eod_of_a_date_waits_then_names_the_holder_or_proceeds(regcalc_home, golden, tmp_path, monkeypatch):
    import dagster as dg

    from regcalc_cli.instance import get_instance
    from regcalc_cli.main import cli

    release = tmp_path / "release"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, DATE, str(release)], cwd=REPO, env=_env(regcalc_home),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "running"
        instance = get_instance()
        (held,) = _runs(instance, statuses=[dg.DagsterRunStatus.STARTED])
        landing = str(shutil.copytree(golden / "landing", tmp_path / "landing"))

        monkeypatch.setenv("REGCALC_LOCK_TIMEOUT", "1")  # gives up, naming the run that holds the date
        started = time.monotonic()
        busy = CliRunner().invoke(cli, ["eod", "--date", DATE, "--landing", landing])
        assert busy.exit_code == 2, busy.output
        assert 1 <= time.monotonic() - started < 15
        assert f"business date {DATE} is held by run {held.run_id} (started " in busy.output
        assert f"process {holder.pid} on host {socket.gethostname()}" in busy.output
        assert "Traceback" not in busy.output
        assert [r.run_id for r in _runs(instance)] == [held.run_id]  # it started nothing

        monkeypatch.setenv("REGCALC_LOCK_TIMEOUT", "120")  # waits for the holder, then runs
        threading.Timer(2.0, release.touch).start()
        done = CliRunner().invoke(cli, ["eod", "--date", DATE, "--landing", landing])
        assert done.exit_code == 0, done.output
        assert holder.wait(60) == 0
    finally:
        release.touch()
        holder.kill()
        holder.wait()
    held_end = instance.get_run_record_by_id(held.run_id).end_time
    ours = [instance.get_run_record_by_id(r.run_id) for r in _runs(instance) if r.run_id != held.run_id]
    assert ours and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in ours)
    assert min(r.start_time for r in ours) >= held_end  # never beside the holder
    assert not instance.event_log_storage.get_concurrency_info(lock_key(DATE)).claimed_slots  # released

    # `regcalc recalc` holds each date it recomputes as well: a re-delivered file makes the date
    # stale, and while the date is held the recalc gives up naming the holder
    for file in Path(landing).rglob("*.*"):
        os.utime(file, (time.time() + 60, time.time() + 60))
    monkeypatch.setenv("REGCALC_LOCK_TIMEOUT", "0.5")
    with business_date_lock(instance, DATE, "eod") as lock:
        busy = CliRunner().invoke(cli, ["recalc", "--landing", landing])
    assert busy.exit_code == 2, busy.output
    assert f"business date {DATE} is held by {lock.lock_id} (process {os.getpid()} on host " in busy.output


def test_killed_eod_run_is_marked_failed_by_the_next_eod(regcalc_home, golden):
    """SIGKILL a real `regcalc eod` once its run is STARTED; the next EOD of the date marks that
    run failed, naming the dead process, takes over its date lock and succeeds."""
    import dagster as dg

    from regcalc_cli.instance import get_instance
    from regcalc_cli.main import cli

    landing = str(golden / "landing")
    eod = subprocess.Popen([sys.executable, "-m", "regcalc_cli.main", "eod", "--date", DATE, "--landing", landing],
                           cwd=REPO, env=_env(regcalc_home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        instance = get_instance()
        deadline = time.monotonic() + 120
        while not _runs(instance, statuses=[dg.DagsterRunStatus.STARTED]):
            assert eod.poll() is None and time.monotonic() < deadline, "the EOD never started a run"
            time.sleep(0.1)
    finally:
        eod.send_signal(signal.SIGKILL)
        eod.wait()
    (orphan,) = _runs(instance, statuses=[dg.DagsterRunStatus.STARTED])
    assert instance.event_log_storage.get_concurrency_info(lock_key(DATE)).claimed_slots  # the dead one's claim

    result = CliRunner().invoke(cli, ["eod", "--date", DATE, "--landing", landing])
    assert result.exit_code == 0, result.output

    assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.FAILURE
    failure = instance.get_records_for_run(
        orphan.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[-1].event_log_entry.dagster_event
    assert f"process {eod.pid} on host {socket.gethostname()} is gone" in failure.message
    others = [r for r in _runs(instance) if r.run_id != orphan.run_id]
    assert others and all(r.status == dg.DagsterRunStatus.SUCCESS for r in others)
    assert not instance.event_log_storage.get_concurrency_info(lock_key(DATE)).claimed_slots
    # the re-run after the kill reports exactly the golden figures: nothing half-written survived
    from regcalc_cli.report import fetch_report
    from regcalc_resources import cli_resource
    from regcalc_tests.e2e.test_golden_pipeline import assert_matches, expected_rows

    assert_matches(fetch_report(cli_resource("warehouse"), DATE, "base"), expected_rows(golden))


# Takes the date, records when it held it, holds it briefly, lets go.
CONTENDER = """
import json, os, sys, time
from regcalc_cli.date_lock import business_date_lock
from regcalc_cli.instance import get_instance

date, log, go = sys.argv[1], sys.argv[2], sys.argv[3]
instance = get_instance()
open(log + ".ready", "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
with business_date_lock(instance, date, timeout=120, poll=0.05):
    entered = time.time()
    time.sleep(0.3)
    left = time.time()
with open(log, "w") as f:
    json.dump([entered, left], f)
"""


def test_contending_processes_hold_a_date_one_at_a_time(regcalc_home, tmp_path):
    """Several processes released at the same moment: each gets the date, never two at once."""
    import json

    from regcalc_cli.instance import get_instance

    get_instance()  # the instance exists; the contention is on the date only
    go = tmp_path / "go"
    logs = [tmp_path / f"holder-{i}.json" for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", CONTENDER, DATE, str(log), str(go)], cwd=REPO,
                              env=_env(regcalc_home)) for log in logs]
    deadline = time.monotonic() + 120
    while not all(Path(f"{log}.ready").exists() for log in logs) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    assert [p.wait(120) for p in procs] == [0, 0, 0]
    spans = sorted(json.loads(log.read_text()) for log in logs)
    assert all(left <= entered for (_, left), (entered, _) in zip(spans, spans[1:])), spans
