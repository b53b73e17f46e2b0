"""Issue 11 item 6a: concurrent first runs in a fresh $REGCALC_HOME create and migrate the
Dagster instance once (no second alembic head), and a later command works in that home."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 4
TRIALS = 2

# Each child imports everything first, then waits for the start signal, so that the instance
# creation of all four overlaps (as with commands started together).
CHILD = """
import os, sys, time
from regcalc_cli.instance import get_instance
ready, go = sys.argv[1], sys.argv[2]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
instance = get_instance()
instance.get_runs(limit=1)
instance.all_instigator_state()
instance.event_log_storage.get_concurrency_keys()
print("ok")
"""


def _alembic_rows(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM alembic_version").fetchone()[0]
    finally:
        con.close()


def _start_together(home: Path, signals: Path) -> list[subprocess.CompletedProcess]:
    """Start PROCESSES children on ``home`` and release them at the same moment."""
    env = {**os.environ, "REGCALC_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    signals.mkdir()
    go = signals / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(signals / f"ready-{i}"), str(go)], cwd=REPO, env=env,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(PROCESSES)]
    deadline = time.monotonic() + 120
    while len(list(signals.glob("ready-*"))) < PROCESSES and time.monotonic() < deadline:
        time.sleep(0.05)  # every child has imported dagster and waits
    go.touch()
    return [subprocess.CompletedProcess(p.args, p.wait(120), *p.communicate()) for p in procs]


def test_concurrent_first_runs_create_the_instance_once(tmp_path, monkeypatch):
    for trial in range(TRIALS):
        home = tmp_path / f"home-{trial}"
        done = _start_together(home, tmp_path / f"signals-{trial}")
        errors = [[line for line in d.stderr.splitlines() if "Error" in line][-1:] or d.stderr[-300:]
                  for d in done if d.returncode != 0]
        assert not errors, f"trial {trial}: {errors}"
        storage = home / "dagster" / "storage"
        for db in (storage / "schedules" / "schedules.db", storage / "history" / "runs.db",
                   storage / "history" / "runs" / "index.db"):
            assert _alembic_rows(db) == 1, f"trial {trial}: {db} has {_alembic_rows(db)} alembic heads"
        assert not [p for p in (home / "dagster").iterdir() if p.name.startswith(".dagster.yaml.")]

    # a later command in that home works: it opens the instance and plans from it
    from regcalc_cli.main import cli

    landing = tmp_path / "empty-landing"
    landing.mkdir()
    monkeypatch.setenv("REGCALC_HOME", str(home))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = CliRunner().invoke(cli, ["recalc", "--landing", str(landing)])
    assert result.exit_code == 0, result.output
    assert "nothing is stale" in result.output


def test_config_is_written_atomically(tmp_path, monkeypatch):
    """The instance config appears whole (write aside, then rename), never half-written."""
    from regcalc_cli.instance import INSTANCE_YAML, dagster_home

    monkeypatch.setenv("REGCALC_HOME", str(tmp_path / "home"))
    home = dagster_home()
    assert (home / "dagster.yaml").read_text() == INSTANCE_YAML.format(base=home / "storage")
    assert sorted(p.name for p in home.iterdir()) == [".regcalc-instance.lock", "dagster.yaml"]


def test_first_run_dialog_and_telemetry_off(tmp_path, monkeypatch):
    """The instance a fresh home gets has Dagster's first-run community dialog (nux) and telemetry
    off, as Dagster itself reads the settings."""
    from regcalc_cli.instance import get_instance

    monkeypatch.setenv("REGCALC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    instance = get_instance()
    try:
        assert instance.nux_enabled is False
        assert instance.telemetry_enabled is False
    finally:
        instance.dispose()


def test_an_older_regcalc_config_gains_the_nux_setting_and_a_foreign_one_is_kept(tmp_path, monkeypatch):
    """A home whose dagster.yaml regcalc wrote before the setting existed gets ``nux: enabled:
    false`` appended (everything else kept); a dagster.yaml written by someone else is not touched."""
    import yaml

    from regcalc_cli.instance import INSTANCE_YAML, NUX_OFF, dagster_home

    older = INSTANCE_YAML.replace(NUX_OFF, "")
    assert "nux" not in older
    for name, text, expected_nux in (("regcalc", older, {"enabled": False}), ("foreign", "telemetry:\n  enabled: true\n", None)):
        home = tmp_path / name
        (home / "dagster").mkdir(parents=True)
        config = home / "dagster" / "dagster.yaml"
        config.write_text(text.format(base=home / "dagster" / "storage"))
        before = yaml.safe_load(config.read_text())
        monkeypatch.setenv("REGCALC_HOME", str(home))
        dagster_home()
        dagster_home()  # a second call changes nothing more
        after = yaml.safe_load(config.read_text())
        assert after.pop("nux", None) == expected_nux, name
        assert after == before, name
