"""RedshiftWarehouse against a real Amazon Redshift cluster (or Serverless workgroup).

Skipped unless these are set:

    export REGCALC_REDSHIFT_DSN='redshift://USER:PASSWORD@CLUSTER.ID.REGION.redshift.amazonaws.com:5439/DB?sslmode=verify-full'
    export REGCALC_REDSHIFT_IAM_ROLE='arn:aws:iam::ACCOUNT:role/ROLE'     # attached to the cluster, may read the bucket
    export REGCALC_REDSHIFT_STAGING_BUCKET='a-bucket-in-the-cluster-region'
    # AWS credentials that may write the bucket: the default chain (AWS_PROFILE, AWS_ACCESS_KEY_ID..., IRSA)
    .venv/bin/python -m pytest -q regcalc_tests/publication/test_redshift_cluster.py

The database user needs CREATE on the database (the test works in a scratch schema
``regcalc_it_<random>``, dropped at the end) and the staged files go under
``regcalc/it/<random>/`` in the bucket, deleted at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pyarrow as pa
import pytest

REQUIRED = ("REGCALC_REDSHIFT_DSN", "REGCALC_REDSHIFT_IAM_ROLE", "REGCALC_REDSHIFT_STAGING_BUCKET")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(os.environ.get(v) for v in REQUIRED),
                       reason="needs a Redshift cluster: set " + ", ".join(REQUIRED)),
]

D = dt.date(2024, 6, 28)


@pytest.fixture(scope="module")
def cluster():
    """(warehouse factory, schema): a scratch schema and staging prefix, removed afterwards."""
    from regcalc_resources.warehouse_redshift import RedshiftWarehouse, execute_load

    configured = RedshiftWarehouse.from_env().process_config_and_initialize()  # the production path
    tag = uuid.uuid4().hex[:10]
    schema, prefix = f"regcalc_it_{tag}", f"regcalc/it/{tag}"

    def warehouse(**overrides) -> RedshiftWarehouse:
        return RedshiftWarehouse(dsn=configured.dsn, iam_role=configured.iam_role,
                                 staging_bucket=configured.staging_bucket, staging_prefix=prefix,
                                 s3_endpoint_url=configured.s3_endpoint_url, s3_region=configured.s3_region,
                                 search_path=schema, **overrides)

    admin = RedshiftWarehouse(dsn=configured.dsn, iam_role=configured.iam_role, staging_bucket=configured.staging_bucket)
    con = admin._connect()
    try:
        execute_load(con, [f"CREATE SCHEMA {schema}"])
        yield warehouse, schema
    finally:
        try:
            execute_load(con, [f"DROP SCHEMA {schema} CASCADE"])
        finally:
            con.close()
            s3 = admin._s3()
            listed = s3.list_objects_v2(Bucket=admin.staging_bucket, Prefix=prefix + "/").get("Contents", [])
            for obj in listed:
                s3.delete_object(Bucket=admin.staging_bucket, Key=obj["Key"])


def _metrics(rows: list[tuple]) -> pa.Table:
    entity, basis, hqla, version = zip(*rows)
    return pa.table({"business_date": pa.array([D] * len(rows), pa.date32()), "entity_id": list(entity),
                     "basis": list(basis), "hqla": pa.array(hqla, pa.float64()),
                     "positions_accepted": pa.array([10] * len(rows), pa.int64()),
                     "final_rules_version": list(version)})


def _read(warehouse) -> list[tuple]:
    rows = warehouse.query("SELECT entity_id, basis, hqla, final_rules_version, run_id FROM liquidity_metrics "
                           "WHERE business_date = CAST(? AS DATE) ORDER BY entity_id, basis", [D.isoformat()])
    return [(r["entity_id"], r["basis"], r["hqla"], r["final_rules_version"], r["run_id"]) for r in rows]


def test_two_partitions_through_both_paths(cluster):
    warehouse, _ = cluster
    partitions = [(D, "LE_IT_A"), (D, "LE_IT_B")]
    tricky = "x'); DROP TABLE liquidity_metrics; -- C:\\dir\\"
    first = _metrics([("LE_IT_A", "base", 100.0, "v1"), ("LE_IT_A", "adjusted", 1 / 3, tricky),
                      ("LE_IT_B", "base", 2.5, "v1")])

    direct = warehouse().load("liquidity_metrics", first, partitions, "run-direct")
    assert direct.method == "redshift direct insert"
    expected = [("LE_IT_A", "adjusted", 1 / 3, tricky, "run-direct"), ("LE_IT_A", "base", 100.0, "v1", "run-direct"),
                ("LE_IT_B", "base", 2.5, "v1", "run-direct")]
    assert _read(warehouse()) == expected

    # the same partitions through the staged COPY (threshold 1): replaced, not appended
    second = _metrics([("LE_IT_A", "base", 101.0, "v2"), ("LE_IT_B", "base", 3.5, "v2"), ("LE_IT_B", "adjusted", 3.0, tricky)])
    staged = warehouse(direct_threshold=1).load("liquidity_metrics", second, partitions, "run-staged")
    assert staged.method == "redshift staged copy"
    assert _read(warehouse()) == [("LE_IT_A", "base", 101.0, "v2", "run-staged"),
                                  ("LE_IT_B", "adjusted", 3.0, tricky, "run-staged"),
                                  ("LE_IT_B", "base", 3.5, "v2", "run-staged")]

    # one partition again, directly: the other keeps the staged rows
    third = _metrics([("LE_IT_A", "base", 102.0, "v3")])
    assert warehouse().load("liquidity_metrics", third, [(D, "LE_IT_A")], "run-3").method == "redshift direct insert"
    assert _read(warehouse()) == [("LE_IT_A", "base", 102.0, "v3", "run-3"),
                                  ("LE_IT_B", "adjusted", 3.0, tricky, "run-staged"),
                                  ("LE_IT_B", "base", 3.5, "v2", "run-staged")]
    loaded = warehouse().query("SELECT count(*) AS n FROM liquidity_metrics WHERE loaded_at IS NULL")
    assert loaded == [{"n": 0}]
