"""The lineage checks on a real run: a stage transformation that drops or duplicates a position
key makes the blocking key check fail with a message naming that stage."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_a_stage_that_drops_or_duplicates_a_key_fails_the_lineage_check_naming_it(golden, regcalc_home, monkeypatch):
    from regcalc_assets import sequence
    from regcalc_assets.definitions import build_definitions
    from regcalc_assets.enrichment import assets as enrichment_assets
    from regcalc_assets.enrichment.logic import enrich_positions
    from regcalc_core.lineage import traced
    from regcalc_assets.partitions import ENTITY_PARTITIONS, date_range_tags
    from regcalc_core.dataframes import functions_for
    from regcalc_cli.instance import get_instance

    monkeypatch.setenv("REGCALC_ENGINE", "duckdb")
    monkeypatch.setenv("REGCALC_LANDING", str(golden / "landing"))

    @traced("enrichment")
    def enrichment_losing_a_deposit(df, *args):
        F, _ = functions_for(df)
        return enrich_positions(df, *args).where(F.col("position_id") != F.lit("UK-0009"))

    deal = sequence.deal_enrichment

    @traced("deal_enrichment")
    def adjustment_doubling_a_bond(df, *args, **kwargs):
        F, _ = functions_for(df)
        out = deal(df, *args, **kwargs)
        return out.unionByName(out.where(F.col("position_id") == F.lit("UK-0003")))

    monkeypatch.setattr(enrichment_assets, "enrich_positions", enrichment_losing_a_deposit)
    monkeypatch.setattr(sequence, "deal_enrichment", adjustment_doubling_a_bond)
    instance = get_instance()
    instance.add_dynamic_partitions(ENTITY_PARTITIONS, ["LE_UK", "LE_US"])
    job = build_definitions().resolve_job_def("eod_job")
    result = job.execute_in_process(instance=instance, raise_on_error=False,
                                    tags=date_range_tags("2024-06-28", "LE_UK", "LE_UK"))

    [keys] = [e for e in result.get_asset_check_evaluations() if e.check_name == "keys_survive_every_stage"]
    assert not keys.passed
    messages = {stage: value.value for stage, value in keys.metadata.items()}
    assert messages["validation"] == "stage 'validation': all 25 keys preserved"
    assert messages["enrichment"].startswith("lineage check failed at stage 'enrichment': 1 key(s) dropped, 0 duplicated")
    assert "DEPOSITS/UK-0009 (source_row 9) dropped" in messages["enrichment"]
    assert messages["deal_enrichment"].startswith("lineage check failed at stage 'deal_enrichment': 0 key(s) dropped, 1 duplicated")
    assert "UK-0003" in messages["deal_enrichment"] and "x2" in messages["deal_enrichment"]
    # blocking: the warehouse does not get lineage that failed its check
    assert not result.asset_materializations_for_node("warehouse_lineage")
