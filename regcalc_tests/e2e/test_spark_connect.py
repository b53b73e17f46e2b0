"""The golden EOD on Spark through Spark Connect: a local server from the pyspark wheel on loopback
(the ``spark_connect`` fixture), reached at ``sc://127.0.0.1:<port>`` as a cluster would be.

The server cannot see the driver's directory (its home, its landing zone, its mount of the shared
storage root: an empty read-only mount covers it in the server's own mount namespace), and it sees
the storage root under another name than the driver does (``REGCALC_SPARK_STORAGE_ROOT``), as a
cluster mounting a shared volume, or naming a bucket ``s3a://``, would. So the EOD reaches the
golden figures only if every path the engine is given is under the shared root, as the cluster
names it. The EOD runs as ``regcalc eod`` in a subprocess: a pyspark process holds either a
Connect or a classic session, and the other tests of this worker use classic Spark.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from regcalc_tests.e2e.test_golden_pipeline import DATE, assert_matches, expected_rows
from regcalc_tests.helpers import assert_traced_to_the_cent, traced_totals

pytestmark = [pytest.mark.slow, pytest.mark.spark]
STAGES = ["landed_positions", "entity_profiles", "validated_positions", "quarantined_positions", "enriched_positions",
          "adjusted_positions", "component_breakdown", "liquidity_components", "liquidity_metrics", "adjustment_trail",
          "lineage"]


def engine_files(root) -> list[str]:
    """Files under ``root`` that only an engine writes: Parquet, Spark's ``_SUCCESS`` and checksums."""
    return sorted(os.path.relpath(os.path.join(folder, name), root) for folder, _, names in os.walk(root)
                  for name in names if name.endswith((".parquet", ".crc")) or name == "_SUCCESS" or name.startswith("part-"))


def connect_python(url: str, code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python with a Spark Connect session ``spark`` on ``url``."""
    prelude = f"from pyspark.sql import SparkSession\nspark = SparkSession.builder.remote({url!r}).getOrCreate()\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_the_connect_server_cannot_see_the_driver_directory(spark_connect):
    """What makes the EOD below a proof: a file in the driver's directory does not exist for the
    server, the same file in the shared root does."""
    if not spark_connect.isolated:
        pytest.skip("this machine allows no private mount namespace: the EOD test checks the files written only")
    for where in (spark_connect.driver, spark_connect.shared):
        (where / "probe.txt").write_text("seen\n")
    out = connect_python(spark_connect.url, f"""
        print(spark.read.text({'file://' + str(spark_connect.shared / 'probe.txt')!r}).collect()[0][0])
        try:
            spark.read.text({'file://' + str(spark_connect.driver / 'probe.txt')!r}).collect()
            print("driver file seen")
        except Exception as exc:
            print("driver file missing:", type(exc).__name__, str(exc).splitlines()[0][:200])
        """)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "seen", out.stdout
    assert lines[1].startswith("driver file missing:") and "PATH_NOT_FOUND" in lines[1], out.stdout


def test_golden_eod_through_spark_connect_uses_only_the_shared_storage_root(golden, spark_connect, monkeypatch):
    driver, shared = spark_connect.driver / "golden", spark_connect.shared / "golden-storage"
    home, landing = driver / "home", driver / "landing"
    shared.mkdir()
    shutil.copytree(golden / "landing", landing)
    (driver / "storage").symlink_to(shared, target_is_directory=True)  # the driver's mount of the shared root
    env = {"REGCALC_HOME": str(home), "REGCALC_STORAGE_ROOT": str(driver / "storage"),
           "REGCALC_SPARK_STORAGE_ROOT": "file://" + str(shared), "REGCALC_ENGINE": "spark",
           "REGCALC_SPARK_REMOTE": spark_connect.url, "REGCALC_STAR": "off", "REGCALC_LANDING": str(landing)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("DAGSTER_HOME", "REGCALC_WAREHOUSE_PATH", "REGCALC_WAREHOUSE_DSN", "REGCALC_RULES_DSN",
                 "SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED"):
        monkeypatch.delenv(name, raising=False)

    from regcalc_cli.report import fetch_report
    from regcalc_resources import build_warehouse

    before = set(engine_files(driver))
    out = subprocess.run([sys.executable, "-m", "regcalc_cli.main", "eod", "--date", DATE, "--landing", str(landing)],
                         capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]

    # the golden figures, as test_golden_base_figures checks them on the engines in process
    warehouse = build_warehouse()
    assert_matches(fetch_report(warehouse, DATE, "base"), expected_rows(golden))
    assert_matches(fetch_report(warehouse, DATE), expected_rows(golden))  # no rules: adjusted = base
    assert_traced_to_the_cent(traced_totals(warehouse.query, DATE),
                              {(e, b): r for e, r in expected_rows(golden).items() for b in ("base", "adjusted")})

    # the driver's own directory got no file from the engine (only the landing copy it had before)
    assert set(engine_files(driver)) == before
    # everything the engine read and wrote is in the shared root: the landing files it was given ...
    delivered = sorted(p.name for p in (landing / f"business_date={DATE}").iterdir())
    assert sorted(p.name for p in (shared / ".shared").glob("*/*/*")) == delivered
    # ... and every stage partition, each a link to the version the engine wrote, nothing left staged
    for stage in STAGES:
        for entity in ("LE_UK", "LE_US"):
            partition = shared / stage / f"business_date={DATE}" / f"entity_id={entity}"
            assert partition.is_symlink() and list(partition.glob("*.parquet")), (stage, entity)
        assert not list((shared / stage / ".versions").glob("run-*")), stage
    assert list((shared / "unassigned_positions" / f"business_date={DATE}").glob("*.parquet"))
