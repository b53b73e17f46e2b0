"""The dbt project of the reporting layer, without Dagster: where it is, its parsed manifest
(built once per version of the project, under a file lock), the variables of one partition's
build, and the dbt executable. The assets (``assets.py``) only wire these to dagster-dbt.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).with_name("dbt")
PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "models", "seeds", "macros", "tests")
TEMPLATES = ("eu_liq1", "eu_liq2", "us_lcr")


def dbt_executable() -> str:
    """The ``dbt`` next to this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def project_digest() -> str:
    """A digest of every file of the project: a new version of a model, seed or macro is a new
    manifest."""
    digest = hashlib.sha256()
    for name in PROJECT_FILES:
        root = PROJECT_DIR / name
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            if path.exists() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(PROJECT_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _manifest_root() -> Path:
    """``$REGCALC_DBT_MANIFEST_DIR``, else the project's own ``target/`` when it is writable (an
    editable install, an image built with it), else the temporary directory."""
    configured = os.environ.get("REGCALC_DBT_MANIFEST_DIR")
    if configured:
        return Path(configured)
    own = PROJECT_DIR / "target"
    try:
        own.mkdir(exist_ok=True)
        if os.access(own, os.W_OK):
            return own
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "regcalc-dbt"


def manifest_path() -> Path:
    """The project's ``manifest.json``, parsed by ``dbt parse`` when this version of the project
    has none yet (a few seconds, once; concurrent processes wait on a lock for the first)."""
    import fcntl

    target = _manifest_root() / f"manifest-{project_digest()}"
    manifest = target / "manifest.json"
    if manifest.exists():
        return manifest
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not manifest.exists():
            env = {**os.environ, "REGCALC_DBT_TARGET": "duckdb", "REGCALC_DBT_DUCKDB_PATH": ":memory:",
                   "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
            done = subprocess.run(
                [dbt_executable(), "parse", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                 "--target-path", str(target), "--log-path", str(target), "--quiet"],
                env=env, capture_output=True, text=True)
            if done.returncode != 0 or not manifest.exists():
                raise RuntimeError(f"dbt parse of {PROJECT_DIR} failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    return manifest


def build_vars(business_date: str, entities: list[str]) -> str:
    """``--vars`` of a build of one business date and its entities (the run's partitions)."""
    return json.dumps({"business_date": business_date, "entity_ids": sorted(entities)})
