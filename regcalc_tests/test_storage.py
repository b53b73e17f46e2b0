"""Stage storage on the local disk and on S3 (a real moto server on loopback, boto3 over HTTP): a
partition is replaced atomically; a failed write leaves the previous version whole."""

from __future__ import annotations

import json
import os
import time

import dagster as dg
import pytest

from regcalc_resources.engine import DuckDBEngine
from regcalc_resources.stage_store import LocalStageStore
from regcalc_resources.stage_store_s3 import S3StageStore
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
    return PartitionedParquetIOManager(store=store, engine=engine or DuckDBEngine())


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


# entity keys DuckDB would percent-encode in a partitioned write (regression: the store looked
# for the raw name, found nothing and published an empty partition for every stage)
AWKWARD = ["LE,US", "LE US", "L\u00c9_FR", "LE/US", "../../../../VICTIM", "LE%2CUS", "LE.UK"]


def frames_of(engine, amounts: dict[str, float]):
    import datetime as dt

    rows = [(dt.date(2024, 6, 28), e, a) for e, a in amounts.items()]
    return engine.session().createDataFrame(rows, "business_date date, entity_id string, amount double")


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_awkward_entity_keys_round_trip_through_the_stores_own_encoding(tmp_path, kind, s3_store_factory):
    """Every key lands in its own partition under the store's encoding, is read back whole and is
    listed under its own name; nothing lands outside the root."""
    engine = DuckDBEngine()
    store = LocalStageStore(root=str(tmp_path / "root")) if kind == "local" else s3_store_factory()
    io = manager(store, engine)
    amounts = {e: float(i + 1) for i, e in enumerate(AWKWARD)}
    keys = [dg.MultiPartitionKey({"date": "2024-06-28", "entity": e}) for e in AWKWARD]
    for key, entity in zip(keys, AWKWARD):
        io.handle_output(dg.build_output_context(asset_key=dg.AssetKey("stage"), partition_key=key),
                         frames_of(engine, {entity: amounts[entity]}))
    assert store.partitions("stage") == sorted(("2024-06-28", e) for e in AWKWARD)
    for key, entity in zip(keys, AWKWARD):
        got = io.load_input(dg.build_input_context(asset_key=dg.AssetKey("stage"), partition_key=key)).collect()
        assert [(r["entity_id"], r["amount"]) for r in got] == [(entity, amounts[entity])]
    if kind == "local":
        assert not (tmp_path / "VICTIM").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["root"]


def test_rows_outside_the_runs_partitions_fail_the_write_and_publish_nothing(tmp_path):
    engine = DuckDBEngine()
    store = LocalStageStore(root=str(tmp_path))
    io = manager(store, engine)
    with pytest.raises(RuntimeError, match=r"rows outside the run's partitions \(2024-06-28\|entity outside the run\)"):
        write(io, frames_of(engine, {"LE_A": 1.0, "LE_B": 2.0}))
    assert store.partitions("stage") == []


def test_store_refuses_links_it_did_not_make_and_paths_outside_its_root(tmp_path):
    """A crafted entity or a planted symlink never makes the store delete or replace anything
    outside its root (regression: the publish step's cleanup rmtree'd a victim directory)."""
    from regcalc_resources.stage_store import UnsafeStoragePathError

    engine = DuckDBEngine()
    root = tmp_path / "home" / "storage"
    store = LocalStageStore(root=str(root))
    io = manager(store, engine)
    victim_dir, victim_file = tmp_path / "VICTIM_LINK_TARGET", tmp_path / "victim_file.txt"
    victim_dir.mkdir()
    (victim_dir / "keep.txt").write_text("precious")
    victim_file.write_text("precious")
    planted = root / "stage" / "business_date=2024-06-28" / "entity_id=LE_A"
    planted.parent.mkdir(parents=True)
    planted.symlink_to(victim_dir)
    with pytest.raises(UnsafeStoragePathError, match="points outside the stage store"):
        write(io, frame(engine, 1.0))
    with pytest.raises(UnsafeStoragePathError, match="points outside the stage store"):
        store.read_dir("stage", "2024-06-28", "LE_A")
    assert (victim_dir / "keep.txt").read_text() == "precious" and planted.is_symlink()
    # traversal in the key stays inside the root (the store's own encoding)
    for entity in ("../../../../../../victim_file.txt", "../../../../../../VICTIM_LINK_TARGET"):
        key = dg.MultiPartitionKey({"date": "2024-06-28", "entity": entity})
        io.handle_output(dg.build_output_context(asset_key=dg.AssetKey("stage"), partition_key=key),
                         frames_of(engine, {entity: 1.0}))
    assert victim_file.read_text() == "precious" and not victim_file.is_symlink()
    assert (victim_dir / "keep.txt").read_text() == "precious"
    with pytest.raises(ValueError, match="not a business date"):
        store.read_dir("stage", "../../etc", "LE_A")
