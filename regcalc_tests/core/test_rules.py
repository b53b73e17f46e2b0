"""Rule validation (adjustment-rules.md, Governance): each failure names the rule and the part."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from regcalc_core.rules import RuleValidationError, parse_rule

GOOD = {
    "rule_id": "ADJ_2024_001",
    "stage": "deal_enrichment",
    "description": "Haircut overlay on long-dated bonds and loans",
    "conditions": [
        {"field": "product", "operator": "in", "value": ["SECURITY", "LOAN"]},
        {"field": "maturity_date", "operator": ">", "value": "2025-01-01"},
    ],
    "adjustments": [
        {"field": "rsf_factor", "operation": "multiply", "value": 0.95},
        {"field": "haircut", "operation": "add", "value": 0.05},
    ],
    "effective_date": "2024-01-15",
    "expiry_date": "2024-12-31",
}


def test_the_spec_example_parses():
    rule = parse_rule(GOOD)
    assert rule.priority == 100 and rule.version == 1
    assert rule.conditions[1].value == dt.date(2025, 1, 1)
    assert rule.applies_on(dt.date(2024, 1, 15)) and rule.applies_on(dt.date(2024, 12, 31))
    assert not rule.applies_on(dt.date(2024, 1, 14)) and not rule.applies_on(dt.date(2025, 1, 1))


def test_golden_rules_parse(golden):
    rules = [parse_rule(r) for r in yaml.safe_load(Path(golden / "rules.yaml").read_text())]
    assert [r.stage for r in rules] == ["deal_enrichment", "aggregation", "final_calc"]
    assert rules[1].expiry_date is None


def mutate(path, value):
    raw = copy.deepcopy(GOOD)
    target = raw
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("stage",), "deal", "unknown stage 'deal'"),
        (("conditions", 0, "field"), "colour", "field 'colour' cannot be tested at stage deal_enrichment"),
        (("conditions", 0, "operator"), "like", "unknown operator 'like'"),
        (("adjustments", 0, "operation"), "divide", "unknown operation 'divide'"),
        (("adjustments", 0, "field"), "product", "field 'product' cannot be changed at stage deal_enrichment"),
        (("conditions", 1, "value"), 5, "5 is not a date"),
        (("conditions", 0, "value"), "SECURITY", "needs a non-empty list"),
        (("adjustments", 0, "value"), "0.95", "is not a number"),
        (("adjustments", 0, "value"), -0.5, "negative multiplier"),
        (("adjustments", 1), {"field": "haircut", "operation": "set", "value": 1.5}, "sets a rate outside [0, 1]"),
        (("expiry_date",), "2024-01-01", "is before effective_date"),
        (("rule_id",), "ADJ 2024;DROP", "rule_id must be letters"),
        (("effective_date",), KeyError, "effective_date is required"),
        (("adjustments",), [], "adjustments must be a non-empty list"),
    ],
)
def test_invalid_rules_are_rejected_naming_rule_and_part(path, value, message):
    with pytest.raises(RuleValidationError) as err:
        parse_rule(mutate(path, value))
    assert message in str(err.value)
    if path != ("rule_id",):
        assert "ADJ_2024_001" in str(err.value)


def test_stage_field_rules():
    agg = {"rule_id": "A1", "stage": "aggregation", "effective_date": "2024-06-01",
           "conditions": [{"field": "product", "operator": "==", "value": "LOAN"}],
           "adjustments": [{"field": "amount", "operation": "multiply", "value": 1.1}]}
    with pytest.raises(RuleValidationError, match="field 'product' cannot be tested at stage aggregation"):
        parse_rule(agg)
    final = {"rule_id": "F1", "stage": "final_calc", "effective_date": "2024-06-01",
             "adjustments": [{"field": "lcr", "operation": "set", "value": 1.0}]}
    with pytest.raises(RuleValidationError, match="field 'lcr' cannot be changed at stage final_calc"):
        parse_rule(final)
