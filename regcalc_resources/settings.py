"""Where regcalc keeps its state, read from the environment (never at import time)."""

from __future__ import annotations

import os
from pathlib import Path

from regcalc_core.errors import RegcalcInputError


def regcalc_home() -> Path:
    """``$REGCALC_HOME`` (default ``./.regcalc``): Dagster home, stage storage and warehouse live here."""
    return Path(os.environ.get("REGCALC_HOME", ".regcalc")).resolve()


def storage_root() -> str:
    """Root of the per-stage Parquet storage (a local directory, or s3://bucket/prefix in production)."""
    return os.environ.get("REGCALC_STORAGE_ROOT") or str(regcalc_home() / "storage")


def spark_storage_root(store_root: str) -> str:
    """The stage storage root as a remote Spark (Spark Connect, ``REGCALC_SPARK_REMOTE``) sees it,
    for the store whose own root is ``store_root`` (``s3://bucket/prefix`` or a local directory):
    ``$REGCALC_SPARK_STORAGE_ROOT`` if set, else ``s3a://bucket/prefix`` for ``s3://bucket/prefix``
    (Hadoop's S3A connector, which open-source Spark on Kubernetes uses; set the variable for a
    platform whose ``s3://`` is its own connector, such as EMR) and ``file://<the same path>`` for
    a local directory (a volume the driver and the cluster mount at the same path). Every path a
    remote session reads or writes is under it: the cluster never sees the driver's disk."""
    configured = os.environ.get("REGCALC_SPARK_STORAGE_ROOT", "").strip()
    if configured:
        return configured.rstrip("/")
    if store_root.startswith("s3://"):
        return "s3a://" + store_root[len("s3://"):].rstrip("/")
    return "file://" + os.path.abspath(store_root).rstrip("/")


def warehouse_path() -> str:
    return os.environ.get("REGCALC_WAREHOUSE_PATH") or str(regcalc_home() / "warehouse.duckdb")


DEPLOYMENTS = ("local", "k8s")
CHART_CODE_SERVER_VARIABLE = "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"
"""Set by the official Dagster Helm chart in every code server pod (dagster-user-deployments)."""


class SharedStateError(RegcalcInputError):
    """A multi-pod deployment configured with state that would stay inside one pod."""


def deployment() -> str:
    """``$REGCALC_DEPLOYMENT``: ``local`` (one machine: the command line, ``dagster dev``; the
    default) or ``k8s`` (a multi-pod deployment: the code server, the daemon and every run in a
    pod of its own, as ``helm/values.yaml`` sets it). Unset, a pod of the official Dagster chart's
    code server (``DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP`` set) counts as ``k8s``; ``local``
    says otherwise explicitly."""
    value = os.environ.get("REGCALC_DEPLOYMENT", "").strip().lower()
    if not value:
        return "k8s" if os.environ.get(CHART_CODE_SERVER_VARIABLE) else "local"
    if value not in DEPLOYMENTS:
        raise RegcalcInputError(f"REGCALC_DEPLOYMENT must be 'local' or 'k8s', not {value!r}")
    return value


def check_shared_state() -> None:
    """Refuse a multi-pod deployment (``deployment() == "k8s"``) whose state would stay in one pod:
    the rule store (an approval in one pod invisible to the sensor and the runs), the warehouse and
    the stage storage must be shared services. Raises ``SharedStateError`` naming every variable
    to set; does nothing locally. Every builder of a store calls it (``regcalc_resources``)."""
    if deployment() != "k8s":
        return
    env = os.environ
    missing = []
    if not env.get("REGCALC_RULES_DSN"):
        missing.append("the rule store would be a DuckDB file in the pod: set REGCALC_RULES_DSN (PostgreSQL)")
    if not (env.get("REGCALC_REDSHIFT_DSN") or env.get("REGCALC_WAREHOUSE_DSN")):
        missing.append("the warehouse would be a DuckDB file in the pod: set REGCALC_REDSHIFT_DSN (Amazon Redshift) "
                       "or REGCALC_WAREHOUSE_DSN (PostgreSQL)")
    if "://" not in storage_root():
        missing.append(f"stage storage would be the pod's disk ({storage_root()}): "
                       "set REGCALC_STORAGE_ROOT to s3://bucket/prefix")
    if missing:
        source = ("REGCALC_DEPLOYMENT=k8s" if os.environ.get("REGCALC_DEPLOYMENT")
                  else f"{CHART_CODE_SERVER_VARIABLE} is set")
        raise SharedStateError(f"a multi-pod deployment ({source}) needs state every pod shares; "
                               + "; ".join(missing))


def schedules_running() -> bool:
    """``$REGCALC_SCHEDULES``: ``running`` starts the EOD schedules (``eod_schedule``,
    ``unassigned_positions_job_schedule``) by default, as ``helm/values.yaml`` sets it in production;
    ``stopped`` (the default) leaves them off until someone turns them on in the UI, so a local
    ``dagster dev`` never starts a batch unasked. A state set in the UI overrides either default."""
    value = os.environ.get("REGCALC_SCHEDULES", "stopped").strip().lower()
    if value not in ("running", "stopped"):
        raise RegcalcInputError(f"REGCALC_SCHEDULES must be 'running' or 'stopped', not {value!r}")
    return value == "running"


def landing_root() -> str:
    """The landing zone: ``$REGCALC_LANDING`` (``--landing`` on the command line sets it)."""
    root = os.environ.get("REGCALC_LANDING")
    if not root:
        raise RuntimeError("No landing zone configured: pass --landing DIR or set REGCALC_LANDING")
    return str(Path(root).resolve())


def engine_name() -> str:
    """``duckdb`` (embedded default, sqlframe on DuckDB) or ``spark`` (dagster-pyspark)."""
    name = os.environ.get("REGCALC_ENGINE", "duckdb").lower()
    if name not in ("duckdb", "spark"):
        raise RuntimeError(f"REGCALC_ENGINE must be 'duckdb' or 'spark', not {name!r}")
    return name


def lineage_enabled() -> bool:
    """``$REGCALC_LINEAGE``: ``on`` (default) materializes the lineage asset and its warehouse table
    in every EOD run; ``off`` leaves them out (figures are unchanged)."""
    value = os.environ.get("REGCALC_LINEAGE", "on").lower()
    if value not in ("on", "off"):
        raise RuntimeError(f"REGCALC_LINEAGE must be 'on' or 'off', not {value!r}")
    return value == "on"


def star_enabled() -> bool:
    """``$REGCALC_STAR``: ``on`` (default) builds the liquidity star schema and loads it into the
    warehouse in every EOD run; ``off`` leaves it out (the figures and the wide tables are
    unchanged)."""
    value = os.environ.get("REGCALC_STAR", "on").lower()
    if value not in ("on", "off"):
        raise RuntimeError(f"REGCALC_STAR must be 'on' or 'off', not {value!r}")
    return value == "on"


def reporting_enabled() -> bool:
    """``$REGCALC_REPORTING``: ``on`` (default) builds the reporting layer (dbt marts, aggregates,
    disclosures) over the star schema in every EOD run; ``off`` leaves it out. It needs the star
    (REGCALC_STAR=on). The first build after ``off`` (or on a new warehouse) builds every stored
    date, so a batch of dates can be loaded with it off and the reporting layer built once."""
    value = os.environ.get("REGCALC_REPORTING", "on").lower()
    if value not in ("on", "off"):
        raise RuntimeError(f"REGCALC_REPORTING must be 'on' or 'off', not {value!r}")
    return value == "on" and star_enabled()


DEFAULT_LOCK_TIMEOUT = 600.0
"""Ten minutes: longer than an EOD of a business date takes at bank scale (the longest holder of
the date lock and of the warehouse), short enough that a forgotten session fails the batch well
inside its overnight window instead of hanging it."""


def lock_timeout() -> float:
    """``$REGCALC_LOCK_TIMEOUT``: seconds to wait for a DuckDB file or a business date held by
    another process (default 600)."""
    raw = os.environ.get("REGCALC_LOCK_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise RegcalcInputError(f"REGCALC_LOCK_TIMEOUT must be a number of seconds, not {raw!r}") from None
    if value < 0 or value != value:
        raise RegcalcInputError(f"REGCALC_LOCK_TIMEOUT must be zero or more seconds, not {raw!r}")
    return value


def duckdb_memory_limit() -> str:
    """``$REGCALC_DUCKDB_MEMORY`` (a DuckDB size such as ``8GB``), else a quarter of the machine's
    physical memory. DuckDB's own default is 80%, which with the process's Python and Arrow memory
    on top leaves a machine that also runs the Dagster daemon or webserver short (measured at 20M
    positions on 23.5 GiB: a third gave an 8.4 GiB peak); past the limit DuckDB spills to
    ``$REGCALC_HOME/duckdb-spill`` instead of growing."""
    raw = os.environ.get("REGCALC_DUCKDB_MEMORY", "").strip()
    if raw:
        return raw
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(1, total // 4 // 2**20)}MB"
