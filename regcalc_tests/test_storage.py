"""Stage storage on the local disk and on S3 (a real moto server on loopback, boto3 over HTTP): a
partition is replaced atomically; a failed write leaves the previous version whole."""

from __future__ import annotations

import json
import os
import time

import dagster as dg
import pytest

from regcalc_resources.engine import DuckDBEngine
from regcalc_resources.openlineage import NoLineageEventSink
from regcalc_resources.stage_store import LocalStageStore, S3StageStore
from regcalc_resources.storage import PartitionedParquetIOManager

KEY = dg.MultiPartitionKey({"date": "2024-06-28", "entity": "LE_A"})
BUCKET = "regcalc-stages"


class ExplodingEngine(DuckDBEngine):
    """Writes the staged files, then dies before any partition is swapped in."""

    def write_partitioned(self, df, dest_dir, *args):
        super().write_partitioned(df, dest_dir, *args)
        raise OSError("disk gone mid-write")


class FailingSecondUpload(S3StageStore):
    """Uploads the first file of a version, then loses the network."""

    def _client(self):
        client = super()._client()
        real = client.upload_file
        calls = []

        def upload(*args, **kwargs):
            calls.append(args)
            if len(calls) > 1:
                raise ConnectionError("network gone mid-upload")
            return real(*args, **kwargs)

        client.upload_file = upload
        return client


@pytest.fixture()
def s3_store_factory(moto_endpoint, tmp_path, monkeypatch):
    import boto3
    from dagster_aws.s3 import S3Resource

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)

    def make(cls=S3StageStore, cache="cache"):
        return cls(s3=S3Resource(endpoint_url=moto_endpoint, region_name="us-east-1"), bucket=BUCKET,
                   prefix=f"t/{tmp_path.name}", cache_dir=str(tmp_path / cache))

    return make


def frame(engine, amount: float):
    import datetime as dt

    return engine.session().createDataFrame(
        [(dt.date(2024, 6, 28), "LE_A", amount)], "business_date date, entity_id string, amount double"
    )


def manager(store, engine=None):
    return PartitionedParquetIOManager(store=store, engine=engine or DuckDBEngine(), lineage_events=NoLineageEventSink())


def write(io, df):
    io.handle_output(dg.build_output_context(asset_key=dg.AssetKey("stage"), partition_key=KEY), df)


def read(io):
    ctx = dg.build_input_context(asset_key=dg.AssetKey("stage"), partition_key=KEY)
    return [r["amount"] for r in io.load_input(ctx).collect()]


def test_local_rewrite_replaces_and_failed_write_keeps_previous(tmp_path):
    engine = DuckDBEngine()
    store = LocalStageStore(root=str(tmp_path))
    good = manager(store, engine)
    write(good, frame(engine, 1.0))
    write(good, frame(engine, 2.0))
    assert read(good) == [2.0]
    link = tmp_path / "stage" / "business_date=2024-06-28" / "entity_id=LE_A"
    assert link.is_symlink()
    versions = list((tmp_path / "stage" / ".versions").iterdir())
    assert len(versions) == 1, "the replaced version is removed"

    with pytest.raises(OSError, match="mid-write"):
        write(manager(store, ExplodingEngine()), frame(engine, 3.0))
    assert read(good) == [2.0], "readers still see the previous version, whole"
    assert len(list((tmp_path / "stage" / ".versions").iterdir())) == 1, "the failed write's staging is removed"

    # what a killed process leaves behind is collected once it is old enough
    leftover = tmp_path / "stage" / ".versions" / "run-killed"
    leftover.mkdir()
    old = time.time() - 7 * 3600
    os.utime(leftover, (old, old))
    write(good, frame(engine, 4.0))
    assert read(good) == [4.0] and not leftover.exists()


def test_s3_partition_swaps_atomically_and_a_failed_upload_keeps_the_previous(s3_store_factory, moto_endpoint):
    import boto3

    engine = DuckDBEngine()
    store = s3_store_factory()
    io = manager(store, engine)
    write(io, frame(engine, 1.0))
    write(io, frame(engine, 2.0))
    assert read(io) == [2.0]
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=store.prefix)["Contents"]]
    pointer_key = f"{store.prefix}/stage/business_date=2024-06-28/entity_id=LE_A/_CURRENT"
    pointer = json.loads(client.get_object(Bucket=BUCKET, Key=pointer_key)["Body"].read())
    data_keys = sorted(k for k in keys if k.endswith(".parquet"))
    assert data_keys == sorted(f["key"] for f in pointer["files"]), "the replaced version's objects are deleted"
    assert all(f"/.versions/{pointer['version']}/" in k for k in data_keys)
    assert store.partitions("stage") == [("2024-06-28", "LE_A")]

    # two files to upload (the engine writes one per partition; add a second to the staged version)
    class TwoFileEngine(DuckDBEngine):
        def write_partitioned(self, df, dest_dir, *args):
            super().write_partitioned(df, dest_dir, *args)
            for part in __import__("pathlib").Path(dest_dir).glob("*/*"):
                (part / "extra.parquet").write_bytes(next(part.glob("*.parquet")).read_bytes())

    broken = manager(s3_store_factory(FailingSecondUpload, cache="cache2"), TwoFileEngine())
    with pytest.raises(ConnectionError, match="mid-upload"):
        write(broken, frame(engine, 3.0))
    fresh_reader = manager(s3_store_factory(cache="cache3"), engine)
    assert read(fresh_reader) == [2.0], "a new reader still gets the previous version, whole"
    assert json.loads(client.get_object(Bucket=BUCKET, Key=pointer_key)["Body"].read())["version"] == pointer["version"]
