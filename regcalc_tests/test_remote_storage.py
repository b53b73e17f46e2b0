"""Stage storage for a remote engine (Spark Connect): every path it is given is under the store's
root as the cluster names it, and nothing goes through the driver's disk.

On S3 the cluster's side is played by ``BucketEngine``: DuckDB in a directory of its own (the
"cluster's" disk) that takes and gives only ``s3a://`` URIs and moves the files through a real S3
API (moto on loopback), as Spark's S3A connector does; Spark itself cannot reach S3 here (the S3A
jars are not in the pyspark wheel). The real Spark Connect server is in
``e2e/test_spark_connect.py``, on a shared local root.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import dagster as dg
import pytest

from regcalc_resources.engine import DuckDBEngine, SparkEngine
from regcalc_resources.stage_store import LocalStageStore, UnsafeStoragePathError
from regcalc_tests.test_storage import BUCKET, KEY, manager, read, s3_store_factory, write  # noqa: F401 - fixture

DATE = "2024-06-28"


class BucketEngine(DuckDBEngine):
    """A remote engine on S3: refuses any path that is not ``s3a://<BUCKET>/...``; writes with DuckDB
    on its own disk (``cluster_dir``), then uploads every file it wrote as Spark's S3A committer
    would (``_SUCCESS`` included); reads by downloading what it is pointed at."""

    endpoint: str
    cluster_dir: str

    @property
    def remote(self) -> bool:
        return True

    def _client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def _key(self, uri: str) -> str:
        assert uri.startswith(f"s3a://{BUCKET}/"), f"a remote engine was given {uri}"
        return uri[len(f"s3a://{BUCKET}/"):]

    def _upload(self, local: str, uri: str) -> None:
        client = self._client()
        (Path(local) / "_SUCCESS").write_bytes(b"")
        for path in Path(local).rglob("*"):
            if path.is_file():
                client.upload_file(str(path), BUCKET, f"{self._key(uri)}/{path.relative_to(local)}")

    def write_partitioned(self, df, dest_dir, *args):
        local = tempfile.mkdtemp(dir=self.cluster_dir)
        super().write_partitioned(df, local, *args)
        self._upload(local, dest_dir)

    def write_empty(self, df, dest_dir):
        local = tempfile.mkdtemp(dir=self.cluster_dir)
        super().write_empty(df, local)
        self._upload(local, dest_dir)

    def write_table(self, df, dest_dir):
        local = tempfile.mkdtemp(dir=self.cluster_dir)
        super().write_table(df, local)
        self._upload(local, dest_dir)

    def read_parquet(self, paths):
        local = tempfile.mkdtemp(dir=self.cluster_dir)
        client = self._client()
        for n, uri in enumerate(paths):
            assert uri.endswith(".parquet"), f"the S3 store names a partition's files, not {uri}"
            client.download_file(BUCKET, self._key(uri), f"{local}/{n}.parquet")
        return super().read_parquet([local])


def frame(engine, rows: list[tuple[str, float]]):
    return engine.session().createDataFrame([(dt.date(2024, 6, 28), e, a) for e, a in rows],
                                            "business_date date, entity_id string, amount double")


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_remote_engine_writes_and_reads_the_bucket_never_the_drivers_disk(s3_store_factory, moto_endpoint, tmp_path):
    import boto3

    cluster = tmp_path / "cluster"
    cluster.mkdir()
    store = s3_store_factory()
    engine = BucketEngine(endpoint=moto_endpoint, cluster_dir=str(cluster))
    io = manager(store, engine)
    write(io, frame(engine, [("LE_A", 1.0)]))
    write(io, frame(engine, [("LE_A", 2.0)]))
    assert read(io) == [2.0]
    assert store.stored_rows("stage", DATE, ["LE_A", "LE_B"]) == {"LE_A": 1, "LE_B": None}
    assert store.stored_schema("stage", DATE, "LE_A").names == ["business_date", "entity_id", "amount"]

    # a partition the stage wrote no rows for: the zero-row file is copied in the bucket
    key_b = dg.MultiPartitionKey({"date": DATE, "entity": "LE_B"})
    io.handle_output(dg.build_output_context(asset_key=dg.AssetKey("stage"), partition_key=key_b), frame(engine, []))
    assert store.stored_rows("stage", DATE, ["LE_B"]) == {"LE_B": 0}
    assert io.load_input(dg.build_input_context(asset_key=dg.AssetKey("stage"), partition_key=key_b)).collect() == []

    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=store.prefix + "/")["Contents"]]
    assert not [k for k in keys if "/.staging/" in k], "the staged writes are removed once published"
    assert all(k.endswith("/_CURRENT") or "/.versions/v-" in k for k in keys), keys
    assert len([k for k in keys if k.endswith(".parquet")]) == 2, "one live version per partition, no _SUCCESS"
    assert files_under(Path(store.cache_dir)) == [], "the driver's disk is never used"


def test_a_remote_engine_reads_a_landing_file_from_the_bucket_once_per_version(s3_store_factory, moto_endpoint, tmp_path):
    import boto3

    store = s3_store_factory()
    delivered = tmp_path / "landing" / "positions.csv"
    delivered.parent.mkdir()
    delivered.write_text("position_id\nP1\n")
    uri = store.share_file(str(delivered))
    assert uri.startswith(f"s3a://{BUCKET}/{store.prefix}/.shared/") and uri.endswith("/positions.csv")
    assert store.share_file(str(delivered)) == uri, "the same version is shared once"
    delivered.write_text("position_id\nP1\nP2\n")  # re-delivered: a new version replaces the old one
    newer = store.share_file(str(delivered))
    assert newer != uri
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=f"{store.prefix}/.shared/")["Contents"]]
    assert keys == [newer[len(f"s3a://{BUCKET}/"):]]
    assert client.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read() == b"position_id\nP1\nP2\n"


def test_what_a_crashed_remote_write_left_in_the_bucket_is_collected(s3_store_factory, moto_endpoint):
    import boto3

    store = s3_store_factory()
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    leftover = f"{store.prefix}/stage/.staging/run-killed/_part_date={DATE}/_part_entity=0/part-0.parquet"
    client.put_object(Bucket=BUCKET, Key=leftover, Body=b"x")
    store.collect_garbage("stage")  # too young: a write in progress
    assert client.list_objects_v2(Bucket=BUCKET, Prefix=leftover)["KeyCount"] == 1
    store.collect_garbage("stage", min_age_seconds=-60)
    assert client.list_objects_v2(Bucket=BUCKET, Prefix=leftover)["KeyCount"] == 0


def test_a_local_root_is_named_as_the_cluster_mounts_it(tmp_path):
    """The driver's path of the root and the cluster's differ (a shared volume mounted elsewhere):
    staging, stored versions and shared files are all given under the cluster's name; nothing
    outside the root is ever named."""
    real = tmp_path / "volume"
    real.mkdir()
    (tmp_path / "driver-mount").symlink_to(real)
    store = LocalStageStore(root=str(tmp_path / "driver-mount"), engine_root="file:///mnt/regcalc")
    engine = DuckDBEngine()
    io = manager(store, engine)
    write(io, frame(engine, [("LE_A", 1.0)]))
    [path] = store.engine_paths("stage", [(DATE, "LE_A")])
    version = os.path.realpath(tmp_path / "driver-mount" / "stage" / f"business_date={DATE}" / "entity_id=LE_A")
    assert path == "file:///mnt/regcalc/stage/.versions/" + os.path.basename(version)
    staging = store.staging("stage", remote=True)
    assert staging.uri == "file:///mnt/regcalc/stage/.versions/" + staging.path.name
    delivered = tmp_path / "positions.parquet"
    delivered.write_bytes(b"PAR1")
    shared = store.share_file(str(delivered))
    assert shared.startswith("file:///mnt/regcalc/.shared/") and shared.endswith("/positions.parquet")
    assert (real / shared[len("file:///mnt/regcalc/"):]).read_bytes() == b"PAR1"
    with pytest.raises(UnsafeStoragePathError, match="sees only the stage store"):
        store.engine_uri(tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match="not materialized yet"):
        store.engine_paths("stage", [(DATE, "LE_B")])


def test_the_cluster_names_the_root_s3a_or_as_configured(monkeypatch, tmp_path):
    from regcalc_resources.settings import spark_storage_root

    monkeypatch.delenv("REGCALC_SPARK_STORAGE_ROOT", raising=False)
    assert spark_storage_root("s3://bank-stages/regcalc/") == "s3a://bank-stages/regcalc"
    assert spark_storage_root(str(tmp_path / "shared")) == f"file://{tmp_path}/shared"
    monkeypatch.setenv("REGCALC_SPARK_STORAGE_ROOT", "s3://bank-stages/regcalc")  # e.g. EMR's own connector
    assert spark_storage_root("s3://bank-stages/regcalc") == "s3://bank-stages/regcalc"


def test_a_remote_session_gets_only_runtime_settings_and_needs_the_store(tmp_path):
    remote = SparkEngine(spark_conf={"spark.remote": "sc://127.0.0.1:15002"})
    assert remote.remote and not SparkEngine().remote and not DuckDBEngine().remote
    conf = remote._conf()
    assert not {"spark.master", "spark.driver.memory", "spark.ui.enabled", "spark.app.name"} & set(conf)
    assert conf["spark.sql.session.timeZone"] == "UTC" and conf["spark.remote"] == "sc://127.0.0.1:15002"
    with pytest.raises(RuntimeError, match="only through the stage store's root"):
        remote._shared(str(tmp_path / "positions.parquet"))


def test_a_connect_server_elsewhere_needs_a_root_it_can_see(monkeypatch, tmp_path):
    from regcalc_core.errors import RegcalcInputError
    from regcalc_resources import build_engine

    monkeypatch.setenv("REGCALC_ENGINE", "spark")
    monkeypatch.setenv("REGCALC_HOME", str(tmp_path))
    monkeypatch.delenv("REGCALC_STORAGE_ROOT", raising=False)
    monkeypatch.delenv("REGCALC_SPARK_STORAGE_ROOT", raising=False)
    monkeypatch.setenv("REGCALC_SPARK_REMOTE", "sc://spark-connect.spark.svc:15002")
    with pytest.raises(RegcalcInputError, match="cannot see this machine's stage storage"):
        build_engine()
    monkeypatch.setenv("REGCALC_STORAGE_ROOT", "s3://bank-stages/regcalc")
    assert build_engine().remote
    monkeypatch.delenv("REGCALC_STORAGE_ROOT")
    monkeypatch.setenv("REGCALC_SPARK_REMOTE", "sc://127.0.0.1:15002")  # this machine: it sees the same paths
    assert build_engine().remote
