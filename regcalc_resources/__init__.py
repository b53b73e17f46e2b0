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


def build_engine() -> ComputeEngine:
    """REGCALC_ENGINE=duckdb (default) or spark; REGCALC_SPARK_REMOTE selects Spark Connect."""
    import os

    if settings.engine_name() == "spark":
        conf = {}
        if os.environ.get("REGCALC_SPARK_REMOTE"):
            conf["spark.remote"] = os.environ["REGCALC_SPARK_REMOTE"]
        if os.environ.get("REGCALC_SPARK_MASTER"):
            conf["spark.master"] = os.environ["REGCALC_SPARK_MASTER"]
        return SparkEngine(spark_conf=conf)
    return DuckDBEngine(memory_limit=settings.duckdb_memory_limit(),
                        spill_dir=str(settings.regcalc_home() / "duckdb-spill"))


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
        return LocalStageStore(root=root)
    from dagster_aws.s3 import S3Resource

    from regcalc_resources.stage_store_s3 import S3StageStore

    bucket, _, prefix = root[len("s3://"):].partition("/")
    s3 = S3Resource(endpoint_url=os.environ.get("REGCALC_S3_ENDPOINT_URL") or None,
                    region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None)
    return S3StageStore(s3=s3, bucket=bucket, prefix=prefix or "regcalc/stages",
                        cache_dir=str(settings.regcalc_home() / "s3-cache"))


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

    engine = build_engine()
    stages = build_stage_store()
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
