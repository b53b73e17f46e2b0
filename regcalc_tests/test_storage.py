"""Stage storage: a partition is replaced atomically; a failed write leaves the previous version."""

from __future__ import annotations

import os
import time

import dagster as dg
import pytest

from regcalc_resources.engine import DuckDBEngine
from regcalc_resources.openlineage import NoLineageEventSink
from regcalc_resources.storage import PartitionedParquetIOManager

KEY = dg.MultiPartitionKey({"date": "2024-06-28", "entity": "LE_A"})


class ExplodingEngine(DuckDBEngine):
    """Writes the staged files, then dies before any partition is swapped in."""

    def write_partitioned(self, df, dest_dir, *args):
        super().write_partitioned(df, dest_dir, *args)
        raise OSError("disk gone mid-write")


def frame(engine, amount: float):
    import datetime as dt

    return engine.session().createDataFrame(
        [(dt.date(2024, 6, 28), "LE_A", amount)], "business_date date, entity_id string, amount double"
    )


def write(manager, df):
    ctx = dg.build_output_context(asset_key=dg.AssetKey("stage"), partition_key=KEY)
    manager.handle_output(ctx, df)


def read(manager):
    ctx = dg.build_input_context(asset_key=dg.AssetKey("stage"), partition_key=KEY)
    return [r["amount"] for r in manager.load_input(ctx).collect()]


def test_rewrite_replaces_and_failed_write_keeps_previous(tmp_path):
    engine = DuckDBEngine()
    good = PartitionedParquetIOManager(root=str(tmp_path), engine=engine, lineage_events=NoLineageEventSink())
    write(good, frame(engine, 1.0))
    write(good, frame(engine, 2.0))
    assert read(good) == [2.0]
    link = tmp_path / "stage" / "business_date=2024-06-28" / "entity_id=LE_A"
    assert link.is_symlink()
    versions = list((tmp_path / "stage" / ".versions").iterdir())
    assert len(versions) == 1, "the replaced version is removed"

    broken = PartitionedParquetIOManager(root=str(tmp_path), engine=ExplodingEngine(), lineage_events=NoLineageEventSink())
    with pytest.raises(OSError, match="mid-write"):
        write(broken, frame(engine, 3.0))
    assert read(good) == [2.0], "readers still see the previous version, whole"

    # the leftover staging directory is collected once it is old enough
    leftovers = [p for p in (tmp_path / "stage" / ".versions").iterdir() if p.name.startswith("run-")]
    assert leftovers
    old = time.time() - 7 * 3600
    for p in leftovers:
        os.utime(p, (old, old))
    write(good, frame(engine, 4.0))
    assert read(good) == [4.0]
    assert not [p for p in (tmp_path / "stage" / ".versions").iterdir() if p.name.startswith("run-")]
