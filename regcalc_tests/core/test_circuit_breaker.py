"""The circuit breaker's limits and impacts (regcalc_core.circuit_breaker), on hand-worked figures."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from regcalc_core import circuit_breaker as cb

SHIPPED = """name: impact_thresholds
version: 3
sources: [{document: somewhere, text: "a sentence"}]
default: {lcr_points: 10, nsfr_points: 5}
entities:
  LE_WIND_DOWN: {lcr_points: 25, reason: "in wind-down"}
  LE_FREE: {lcr_points: null, nsfr_points: null, reason: "no limit, by board decision"}
"""


def test_the_shipped_file_is_the_default_and_cites_its_sources(monkeypatch):
    monkeypatch.delenv(cb.THRESHOLDS_VARIABLE, raising=False)
    limits = cb.load_thresholds()
    assert limits.path.endswith("regcalc_core/thresholds/impact_thresholds_v1.yaml")
    assert (limits.name, limits.version) == ("impact_thresholds", 1)
    assert limits.default == cb.Limit(10.0, 5.0) and limits.entities == {}
    assert limits.label.startswith("impact_thresholds@v1 (sha256 ")
    import yaml

    sources = yaml.safe_load(open(limits.path).read())["sources"]
    assert any("circuit breakers for large impacts" in s["text"] for s in sources)
    assert any("10 percentage points" in s["text"] and "5 points" in s["text"] for s in sources)


def test_a_file_named_by_the_environment_is_used(tmp_path, monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text(SHIPPED)
    monkeypatch.setenv(cb.THRESHOLDS_VARIABLE, str(path))
    limits = cb.load_thresholds()
    assert limits.version == 3 and limits.path == str(path)
    assert limits.for_entity("LE_OTHER") == cb.Limit(10.0, 5.0)
    assert limits.for_entity("LE_WIND_DOWN") == cb.Limit(25.0, 5.0, "in wind-down")  # NSFR: the default's
    assert limits.for_entity("LE_FREE").lcr_points is None


@pytest.mark.parametrize("entities, message", [
    ("LE_X: {lcr_points: 15}", "entity LE_X: an entity's own limits need their reason"),
    ("LE_X: {lcr_points: -1, reason: r}", "non-negative number"),
    ("LE_X: {lcr_pts: 1, reason: r}", "unknown key 'lcr_pts'"),
    ("LE_X: {lcr_points: '10', reason: r}", "non-negative number"),
])
def test_a_bad_override_names_the_file_and_the_entity(tmp_path, entities, message):
    text = SHIPPED.split("entities:")[0] + "entities:\n  " + entities + "\n"
    with pytest.raises(cb.ThresholdsError, match=message) as err:
        cb.parse_thresholds(text, "t.yaml")
    assert "thresholds file t.yaml" in str(err.value)


def test_a_file_without_sources_or_default_is_refused(tmp_path):
    with pytest.raises(cb.ThresholdsError, match="sources is missing"):
        cb.parse_thresholds("name: x\nversion: 1\ndefault: {lcr_points: 1, nsfr_points: 1}\n", "t.yaml")
    with pytest.raises(cb.ThresholdsError, match="nsfr_points is missing"):
        cb.parse_thresholds("name: x\nversion: 1\nsources: [a]\ndefault: {lcr_points: 1}\n", "t.yaml")
    with pytest.raises(cb.ThresholdsError, match="cannot be read"):
        cb.load_thresholds(str(tmp_path / "missing.yaml"))


def impact(lcr_base, lcr, nsfr_base=1.0, nsfr=1.0):
    return cb.Impact("2024-06-28", "LE_A", lcr_base, lcr, nsfr_base, nsfr)


LIMIT = cb.Limit(10.0, 5.0)


@pytest.mark.parametrize("figures, crossed", [
    ((1.20, 1.35), ["lcr"]),            # +15 points
    ((1.20, 1.05), ["lcr"]),            # -15 points: the change is absolute
    ((1.20, 1.29), []),                 # +9 points
    ((1.20, 1.30), []),                 # exactly 10 points is within (float noise included)
    ((1.20, 1.20, 1.00, 1.06), ["nsfr"]),  # +6 NSFR points
    ((1.20, 1.31, 1.00, 0.94), ["lcr", "nsfr"]),
    ((None, 1.20), ["lcr"]),            # the rules made the ratio defined
    ((1.20, None), ["lcr"]),            # ... or undefined
    ((None, None), []),
])
def test_crossing_is_an_absolute_change_above_the_limit(figures, crossed):
    assert impact(*figures).crossed(LIMIT) == crossed


def test_no_limit_is_never_crossed_and_points_are_percentage_points():
    assert impact(1.0, 9.0).crossed(cb.Limit(None, 5.0)) == []
    assert impact(7.001712328767123, 6.851712328767123).change_points("lcr") == pytest.approx(-15.0)


def test_impacts_pair_the_bases_of_each_entity():
    rows = [{"business_date": dt.date(2024, 6, 28), "entity_id": "LE_B", "basis": "base", "lcr": 2.0, "nsfr": None},
            {"business_date": dt.date(2024, 6, 28), "entity_id": "LE_B", "basis": "adjusted", "lcr": 1.5, "nsfr": 1.1}]
    assert cb.impacts(rows) == {"LE_B": cb.Impact("2024-06-28", "LE_B", 2.0, 1.5, None, 1.1)}


def test_rules_by_entity_lists_each_rule_version_once_in_stage_order():
    rows = [{"entity_id": "E", "stage": "final_calc", "rule_id": "A", "version": 2, "changes": 1},
            {"entity_id": "E", "stage": "deal_enrichment", "rule_id": "Z", "version": 1, "changes": 7},
            {"entity_id": "F", "stage": "aggregation", "rule_id": "B", "version": 1, "changes": 1}]
    out = cb.rules_by_entity(rows)
    assert [r["rule"] for r in out["E"]] == ["Z@v1", "A@v2"] and out["E"][0]["changes"] == 7
    assert out["F"] == [{"rule": "B@v1", "rule_id": "B", "version": 1, "stage": "aggregation", "changes": 1}]


def ack(record, entity="LE_A"):
    return SimpleNamespace(business_date="2024-06-28", entity_id=entity, body=record)


def test_an_acknowledgment_covers_only_the_impact_it_saw():
    rules = [{"rule": "R@v1", "rule_id": "R", "version": 1, "stage": "final_calc", "changes": 1}]
    seen = impact(7.0, 6.85)
    thresholds = cb.parse_thresholds(SHIPPED, "t.yaml")
    record = cb.impact_record(seen, LIMIT, rules, thresholds)
    assert record["crossed"] == ["lcr"] and record["lcr_change_points"] == pytest.approx(-15.0)
    assert cb.covers(record, seen, rules)
    assert cb.covers(record, impact(7.0 * (1 + 1e-12), 6.85), rules), "another engine's last bits"
    new_version = [dict(rules[0], rule="R@v2", version=2)]
    assert not cb.covers(record, seen, new_version), "a new version of the rule is a new impact"
    assert not cb.covers(record, seen, rules + [{"rule": "S@v1"}]), "another rule too"
    assert not cb.covers(record, impact(7.0, 6.80), rules), "other figures (a re-delivery) too"
    assert cb.covering([ack(record, "LE_OTHER"), ack(record)], seen, rules).entity_id == "LE_A"
    assert cb.covering([ack(record, "LE_OTHER")], seen, rules) is None


def test_the_description_names_figures_limits_and_rules():
    rules = [{"rule": "R@v1", "rule_id": "R", "version": 1, "stage": "final_calc", "changes": 1}]
    record = cb.impact_record(impact(7.001712328767123, 6.851712328767123), LIMIT, rules,
                              cb.parse_thresholds(SHIPPED, "t.yaml"))
    assert cb.describe(record) == ("LCR 700.17% -> 685.17% (-15.00 points, limit 10); "
                                   "NSFR 100.00% -> 100.00% (+0.00 points, limit 5); rules: R@v1 (final_calc, 1 change)")
    assert cb.describe(record, with_rules=False) == ("LCR 700.17% -> 685.17% (-15.00 points, limit 10); "
                                                     "NSFR 100.00% -> 100.00% (+0.00 points, limit 5)")
