"""Issue 11 item 11 "Environment": a read-only $REGCALC_HOME gives one line naming the directory
and exit code 2, not a traceback.

Root ignores directory permissions, so the home is made read-only for real: a read-only bind
mount in a private mount namespace (``unshare --mount``), which refuses root's writes with EROFS.
As a non-root user, ``chmod 0555`` is used instead."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATE = "2024-06-28"


def _read_only_runner(directory: Path) -> list[str]:
    """A command prefix under which ``directory`` is read-only for the process, or skip."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return []
    if not shutil.which("unshare"):
        pytest.skip("root without unshare: no way to make a directory read-only for root here")
    probe = subprocess.run(["unshare", "--mount", "sh", "-c",
                            f'mount --bind -o ro "{directory}" "{directory}" && ! touch "{directory}/probe"'],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here: {probe.stderr.decode().strip()}")
    return ["unshare", "--mount", "sh", "-c", f'mount --bind -o ro "{directory}" "{directory}" && exec "$@"', "--"]


def _regcalc(prefix: list[str], home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REGCALC_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run([*prefix, sys.executable, "-m", "regcalc_cli.main", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def _one_line_naming(result: subprocess.CompletedProcess, directory: Path) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert str(directory) in lines[0], lines[0]


def test_read_only_existing_home(tmp_path, golden):
    """An existing home (with its instance) that became read-only: eod and recalc say so in one line."""
    home = tmp_path / "home"
    env = {**os.environ, "REGCALC_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    subprocess.run([sys.executable, "-c", "from regcalc_cli.instance import get_instance; get_instance()"],
                   cwd=REPO, env=env, check=True, capture_output=True)
    prefix = _read_only_runner(home)
    _one_line_naming(_regcalc(prefix, home, "eod", "--date", DATE, "--landing", str(golden / "landing")), home)
    _one_line_naming(_regcalc(prefix, home, "recalc", "--landing", str(golden / "landing")), home)


def test_home_under_a_read_only_directory(tmp_path, golden):
    """A home that does not exist and cannot be created."""
    parent = tmp_path / "read-only"
    parent.mkdir()
    prefix = _read_only_runner(parent)
    home = parent / "home"
    _one_line_naming(_regcalc(prefix, home, "eod", "--date", DATE, "--landing", str(golden / "landing")), parent)


def test_writable_dir_check(tmp_path):
    """The check itself: a probe write, not os.access (which root passes on a read-only mount too)."""
    from regcalc_cli.instance import UnwritableHomeError, writable_dir

    assert writable_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    with pytest.raises(UnwritableHomeError, match="cannot write to /proc/regcalc"):
        writable_dir(Path("/proc/regcalc"))
