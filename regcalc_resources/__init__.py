"""Resources: interfaces with a local and a production implementation, chosen once from the environment."""

from __future__ import annotations

import dagster as dg

from regcalc_resources import settings
from regcalc_resources.engine import ComputeEngine, DuckDBEngine, SparkEngine
from regcalc_resources.landing import LandingZone
from regcalc_resources.storage import PartitionedParquetIOManager
from regcalc_resources.warehouse import DuckDBWarehouse, Warehouse

__all__ = ["ComputeEngine", "DuckDBEngine", "SparkEngine", "LandingZone", "PartitionedParquetIOManager",
           "Warehouse", "DuckDBWarehouse", "build_resources"]


def build_engine(storage=None) -> ComputeEngine:
    """REGCALC_ENGINE=duckdb (default) or spark; REGCALC_SPARK_REMOTE selects Spark Connect, which
    reads and writes only under ``storage``'s root (the stage store: ``build_resources`` passes it)."""
    import os

    if settings.engine_name() == "spark":
        conf = {}
        if os.environ.get("REGCALC_SPARK_REMOTE"):
            conf["spark.remote"] = os.environ["REGCALC_SPARK_REMOTE"]
            _check_remote_storage(conf["spark.remote"])
        if os.environ.get("REGCALC_SPARK_MASTER"):
            conf["spark.master"] = os.environ["REGCALC_SPARK_MASTER"]
        return SparkEngine(spark_conf=conf, storage=storage)
    return DuckDBEngine(memory_limit=settings.duckdb_memory_limit(),
                        spill_dir=str(settings.regcalc_home() / "duckdb-spill"))


def _check_remote_storage(remote: str) -> None:
    """Refuse a Spark Connect server on another machine with a local stage storage root that the
    cluster is not said to see (REGCALC_SPARK_STORAGE_ROOT): it would read and write paths of this
    machine's disk that do not exist there."""
    import os
    from urllib.parse import urlparse

    from regcalc_core.errors import RegcalcInputError

    host = urlparse(remote.replace("sc://", "http://", 1)).hostname or ""
    if (host not in ("localhost", "127.0.0.1", "::1") and "://" not in settings.storage_root()
            and not os.environ.get("REGCALC_SPARK_STORAGE_ROOT")):
        raise RegcalcInputError(
            f"REGCALC_SPARK_REMOTE={remote} is a Spark Connect server on another machine, which cannot see this "
            f"machine's stage storage ({settings.storage_root()}): set REGCALC_STORAGE_ROOT to s3://bucket/prefix, "
            "or REGCALC_SPARK_STORAGE_ROOT to where the cluster mounts that directory")


def build_rule_store():
    """PostgreSQL when REGCALC_RULES_DSN is set, else the embedded DuckDB file under $REGCALC_HOME
    (refused in a multi-pod deployment: ``settings.check_shared_state``, as for the other stores)."""
    import os

    from regcalc_resources.rule_store import DuckDBRuleStore, PostgresRuleStore

    settings.check_shared_state()
    if os.environ.get("REGCALC_RULES_DSN"):
        return PostgresRuleStore(dsn=dg.EnvVar("REGCALC_RULES_DSN"))
    return DuckDBRuleStore(path=str(settings.regcalc_home() / "rules.duckdb"))


def build_stage_store():
    """S3 when REGCALC_STORAGE_ROOT is ``s3://bucket/prefix`` (dagster-aws S3Resource; an
    S3-compatible store with REGCALC_S3_ENDPOINT_URL; credentials from the AWS environment),
    else the local directory (default ``$REGCALC_HOME/storage``)."""
    import os

    from regcalc_resources.stage_store import LocalStageStore

    settings.check_shared_state()
    root = settings.storage_root()
    if not root.startswith("s3://"):
        return LocalStageStore(root=root, engine_root=settings.spark_storage_root(root))
    from dagster_aws.s3 import S3Resource

    from regcalc_resources.stage_store_s3 import S3StageStore

    bucket, _, prefix = root[len("s3://"):].partition("/")
    s3 = S3Resource(endpoint_url=os.environ.get("REGCALC_S3_ENDPOINT_URL") or None,
                    region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None)
    prefix = prefix.strip("/") or "regcalc/stages"
    return S3StageStore(s3=s3, bucket=bucket, prefix=prefix, cache_dir=str(settings.regcalc_home() / "s3-cache"),
                        engine_root=settings.spark_storage_root(f"s3://{bucket}/{prefix}"))


def build_warehouse() -> Warehouse:
    """Amazon Redshift when REGCALC_REDSHIFT_DSN is set, PostgreSQL when REGCALC_WAREHOUSE_DSN is,
    else the embedded DuckDB file. Credentials stay in the environment (dg.EnvVar)."""
    import os

    settings.check_shared_state()
    if os.environ.get("REGCALC_REDSHIFT_DSN"):
        from regcalc_resources.warehouse_redshift import RedshiftWarehouse

        return RedshiftWarehouse.from_env()
    if os.environ.get("REGCALC_WAREHOUSE_DSN"):
        from regcalc_resources.warehouse_postgres import PostgresWarehouse

        return PostgresWarehouse(dsn=dg.EnvVar("REGCALC_WAREHOUSE_DSN"))
    return DuckDBWarehouse(path=settings.warehouse_path())


def build_resources() -> dict:
    """Every resource the assets use, configured from the environment (called once, by Definitions)."""
    from regcalc_resources.openlineage import build_lineage_sink

    stages = build_stage_store()
    engine = build_engine(storage=stages)
    return {
        "engine": engine,
        "stages": stages,
        "stage_io": PartitionedParquetIOManager(store=stages, engine=engine),
        "openlineage": build_lineage_sink(),
        "landing": LandingZone(root=dg.EnvVar("REGCALC_LANDING")),
        "warehouse": build_warehouse(),
        "rules": build_rule_store(),
    }


def resolved(resource):
    """A resource with its ``dg.EnvVar`` fields read from the environment, for direct use outside
    a Dagster run (the command line); resources that cannot be initialized alone are returned as is."""
    try:
        return resource.process_config_and_initialize()
    except dg.DagsterInvariantViolationError:
        return resource
    except Exception as exc:  # noqa: BLE001 - Dagster raises CheckError for IO managers with teardown
        if "from_resource_context_cm" in str(exc):
            return resource
        raise


def cli_resource(key: str):
    """One of ``build_resources()`` resolved for the command line (only the one asked for: the
    others may need variables this command does not, such as REGCALC_LANDING for a report)."""
    return resolved(build_resources()[key])
