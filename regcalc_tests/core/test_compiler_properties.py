"""Property tests: malformed rules are always rejected with a clear message, never a crash."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from regcalc_core.rules import OPERATIONS, OPERATORS, STAGES, RuleValidationError, parse_rule

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.dates().map(dt.date.isoformat))
values = st.one_of(scalars, st.lists(scalars, max_size=3))
fields = st.sampled_from(["product", "amount", "maturity_date", "insured", "component", "hqla", "colour", "", None])
conditions = st.fixed_dictionaries({"field": fields, "operator": st.one_of(st.sampled_from(OPERATORS), st.text(max_size=4)),
                                    "value": values})
adjustments = st.fixed_dictionaries({"field": fields.map(lambda f: f) | st.sampled_from(["haircut", "amount", "rsf_factor"]),
                                     "operation": st.one_of(st.sampled_from(OPERATIONS), st.text(max_size=4)),
                                     "value": values})
rules = st.fixed_dictionaries({
    "rule_id": st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True), st.text(max_size=12), st.integers()),
    "stage": st.one_of(st.sampled_from(STAGES), st.text(max_size=6)),
    "conditions": st.lists(conditions, max_size=3),
    "adjustments": st.lists(adjustments, max_size=3),
    "effective_date": st.one_of(st.dates().map(dt.date.isoformat), st.text(max_size=10), st.none()),
    "expiry_date": st.one_of(st.none(), st.dates().map(dt.date.isoformat), st.text(max_size=10)),
})


@settings(max_examples=400, deadline=None)
@given(rules)
def test_random_rules_are_accepted_or_rejected_with_a_message(raw):
    try:
        rule = parse_rule(raw)
    except RuleValidationError as exc:
        message = str(exc)
        assert message.startswith("rule ") and len(message) < 400
        if isinstance(raw["rule_id"], str) and message.startswith(f"rule {raw['rule_id']}:"):
            assert raw["rule_id"] in message
        return
    # accepted: it is well formed by construction
    assert rule.stage in STAGES and rule.adjustments
    assert rule.expiry_date is None or rule.expiry_date >= rule.effective_date
    for adj in rule.adjustments:
        assert not (adj.operation == "multiply" and adj.value < 0)


def _well_formed(stage: str):
    """Rules valid by construction for ``stage``: conditions with `==` on a field the stage may
    test, with a value of its type; adjustments of a field the stage may change, with a number in
    [0, 1]; an expiry on or after the effective date."""
    from regcalc_core.rules import STAGE_FIELDS

    testable, changeable = STAGE_FIELDS[stage]
    typed = {"string": st.text(min_size=1, max_size=8), "number": st.floats(0, 1e6, allow_nan=False),
             "date": st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)).map(dt.date.isoformat), "boolean": st.booleans()}
    condition = st.sampled_from(sorted(testable)).flatmap(
        lambda f: st.fixed_dictionaries({"field": st.just(f), "operator": st.just("=="), "value": typed[testable[f]]}))
    adjustment = st.fixed_dictionaries({"field": st.sampled_from(changeable), "operation": st.sampled_from(OPERATIONS),
                                        "value": st.floats(0, 1, allow_nan=False)})  # a rate may be set only in [0, 1]
    window = st.tuples(st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)), st.integers(0, 400) | st.none())
    return st.fixed_dictionaries({
        "rule_id": st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True), "stage": st.just(stage),
        "conditions": st.lists(condition, max_size=3), "adjustments": st.lists(adjustment, min_size=1, max_size=3),
        "window": window,
    }).map(lambda r: {**{k: v for k, v in r.items() if k != "window"},
                      "effective_date": r["window"][0].isoformat(),
                      "expiry_date": None if r["window"][1] is None
                      else (r["window"][0] + dt.timedelta(days=r["window"][1])).isoformat()})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(STAGES).flatmap(_well_formed))
def test_well_formed_rules_are_accepted_as_written(raw):
    """The companion of the test above, which would pass if every rule were rejected: a rule
    valid by construction is accepted, and parsed as written."""
    rule = parse_rule(raw)
    assert (rule.rule_id, rule.stage) == (raw["rule_id"], raw["stage"])
    assert [(a.field, a.operation, a.value) for a in rule.adjustments] == \
        [(a["field"], a["operation"], a["value"]) for a in raw["adjustments"]]
    assert [c.field for c in rule.conditions] == [c["field"] for c in raw["conditions"]]
    assert rule.effective_date.isoformat() == raw["effective_date"]
