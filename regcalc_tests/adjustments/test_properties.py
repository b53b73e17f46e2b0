"""Property tests: malformed rules are always rejected with a clear message, never a crash."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from regcalc_assets.adjustments.model import OPERATIONS, OPERATORS, STAGES, RuleValidationError, parse_rule

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
