"""Each liquidity_metrics partition carries its own entity's figures as numeric metadata, in a
ranged run too (one run for every entity of a date), so that the Dagster UI plots them over time."""

from __future__ import annotations

import json

import pytest

from regcalc_assets.metrics.logic import partition_figures
from regcalc_tests.helpers import regcalc

DATE = "2024-06-24"


def test_partition_figures_by_hand():
    rows = [
        {"entity_id": "B", "basis": "adjusted", "lcr": 1.5, "nsfr": None, "hqla": 30.0, "net_outflows": 20.0, "asf": 5.0,
         "rsf": 0.0, "positions_accepted": 7, "positions_quarantined": 1},
        {"entity_id": "B", "basis": "base", "lcr": 2.0, "nsfr": None, "hqla": 40.0, "net_outflows": 20.0, "asf": 5.0,
         "rsf": 0.0, "positions_accepted": 7, "positions_quarantined": 1},
        {"entity_id": "A", "basis": "adjusted", "lcr": None, "nsfr": 1.25, "hqla": 0.0, "net_outflows": 0.0, "asf": 5.0,
         "rsf": 4.0, "positions_accepted": 2, "positions_quarantined": 0},
        {"entity_id": "A", "basis": "base", "lcr": None, "nsfr": 1.0, "hqla": 0.0, "net_outflows": 0.0, "asf": 4.0,
         "rsf": 4.0, "positions_accepted": 2, "positions_quarantined": 0},
    ]
    figures = partition_figures(rows)
    assert figures["B"]["lcr"] == 1.5 and figures["B"]["lcr_base"] == 2.0 and figures["B"]["lcr_variance"] == -0.5
    assert "nsfr" not in figures["B"] and "nsfr_variance" not in figures["B"]  # a null ratio is not plotted as 0
    assert figures["A"]["nsfr"] == 1.25 and figures["A"]["nsfr_variance"] == 0.25 and "lcr" not in figures["A"]
    assert figures["B"]["positions_accepted"] == 7 and isinstance(figures["B"]["positions_quarantined"], int)


@pytest.mark.slow
def test_each_partition_of_a_ranged_run_has_its_own_figures(tmp_path, in_home):
    import dagster as dg

    home, landing = tmp_path / "home", tmp_path / "landing"
    regcalc("generate", "--landing", str(landing), "--start-date", DATE, "--days", "1", "--entities", "2",
            "--positions", "300", home=home)
    regcalc("eod", "--date", DATE, "--landing", str(landing), home=home)
    adjusted = {r["entity_id"]: r for r in json.loads(regcalc("report", "--date", DATE, "--format", "json", home=home).stdout)}
    base = {r["entity_id"]: r for r in json.loads(regcalc("report", "--date", DATE, "--format", "json", "--base",
                                                          home=home).stdout)}
    assert sorted(adjusted) == ["LE_001", "LE_002"]
    assert adjusted["LE_001"]["lcr"] != adjusted["LE_002"]["lcr"]  # the test can tell them apart

    in_home(home)
    from regcalc_cli.instance import get_instance

    instance = get_instance()
    def latest(entity):  # the partition's latest materialization
        records = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("liquidity_metrics"), asset_partitions=[f"{DATE}|{entity}"]), limit=1).records
        assert len(records) == 1
        return records[0].event_log_entry

    try:
        events = {e: latest(e) for e in adjusted}
        run = instance.get_run_by_id(next(iter(events.values())).run_id)
    finally:
        instance.dispose()
    assert len({event.run_id for event in events.values()}) == 1  # both partitions in one ranged run
    assert run.tags["dagster/asset_partition_range_start"] != run.tags["dagster/asset_partition_range_end"]
    for entity, event in events.items():
        meta = event.asset_materialization.metadata
        assert event.asset_materialization.partition == f"{DATE}|{entity}"
        for name, expected in (("lcr", adjusted[entity]["lcr"]), ("nsfr", adjusted[entity]["nsfr"]),
                               ("lcr_base", base[entity]["lcr"]), ("nsfr_base", base[entity]["nsfr"]),
                               ("hqla", adjusted[entity]["hqla"]), ("net_outflows", adjusted[entity]["net_outflows"])):
            assert isinstance(meta[name], dg.FloatMetadataValue), name
            assert meta[name].value == pytest.approx(expected, rel=1e-12), (entity, name)
        assert meta["positions_accepted"].value == adjusted[entity]["positions_accepted"]
        assert meta["positions_quarantined"].value == adjusted[entity]["positions_quarantined"]
        assert entity in meta["figures"].value and all(other not in meta["figures"].value for other in adjusted if other != entity)
