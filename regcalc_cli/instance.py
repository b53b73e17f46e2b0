"""The Dagster instance under $REGCALC_HOME, shared by the CLI, `dagster dev` and the daemon."""

from __future__ import annotations

import os
from pathlib import Path

from regcalc_resources.settings import regcalc_home

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
"""


def dagster_home() -> Path:
    home = regcalc_home() / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML.format(base=home / "storage"))
    return home


def get_instance():
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home())
    return dg.DagsterInstance.get()
