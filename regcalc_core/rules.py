"""Adjustment rules (adjustment-rules.md): the rule shape, what each stage may test and change,
and validation that names the rule and the offending part. Rules are data, never code."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from regcalc_core.conditions import OPERATORS, Condition
from regcalc_core.errors import RegcalcInputError

STAGES = ("deal_enrichment", "aggregation", "final_calc")
OPERATIONS = ("multiply", "add", "set")
RULE_ID = re.compile(r"^[A-Za-z0-9_-]+$")

_POSITION_FIELDS = {
    "position_id": "string", "source_system": "string", "entity_id": "string", "counterparty_id": "string",
    "product": "string", "currency": "string", "balance": "number", "quantity": "number",
    "security_id": "string", "maturity_date": "date", "insured": "boolean", "stable_relationship": "boolean",
    "operational": "boolean", "performing": "boolean", "risk_weight": "number", "encumbered_until": "date",
    "counterparty_type": "string", "security_hqla_level": "string", "issuer_type": "string",
    "business_date": "date", "days_to_maturity": "number", "amount": "number", "hqla_level": "string",
    "haircut": "number", "outflow_rate": "number", "inflow_rate": "number", "asf_factor": "number",
    "rsf_factor": "number",
}
# stage -> (fields a condition may test with their type, fields an adjustment may change)
STAGE_FIELDS = {
    "deal_enrichment": (
        _POSITION_FIELDS,
        ("amount", "haircut", "outflow_rate", "inflow_rate", "asf_factor", "rsf_factor"),
    ),
    "aggregation": (
        {"business_date": "date", "entity_id": "string", "reporting_currency": "string", "component": "string",
         "amount": "number"},
        ("amount",),
    ),
    "final_calc": (
        {"business_date": "date", "entity_id": "string", "reporting_currency": "string", "hqla": "number",
         "total_outflows": "number", "total_inflows": "number", "asf": "number", "rsf": "number"},
        ("hqla", "total_outflows", "total_inflows", "asf", "rsf"),
    ),
}
UNIT_INTERVAL_FIELDS = ("haircut", "outflow_rate", "inflow_rate", "asf_factor", "rsf_factor")


class RuleValidationError(RegcalcInputError, ValueError):
    """A rule that breaks the governance rules; the message names the rule and the offending part
    (bad input: the command line prints it as one line and exits with code 2)."""


@dataclass(frozen=True)
class Adjustment:
    field: str
    operation: str
    value: float


@dataclass(frozen=True)
class Rule:
    rule_id: str
    stage: str
    conditions: tuple[Condition, ...]
    adjustments: tuple[Adjustment, ...]
    effective_date: dt.date
    expiry_date: dt.date | None = None
    priority: int = 100
    version: int = 1
    description: str = ""
    submitted_by: str | None = None
    approval: dict | None = field(default=None, compare=False)

    def applies_on(self, business_date: dt.date) -> bool:
        """effective_date <= d <= expiry_date (null expiry: open-ended)."""
        return self.effective_date <= business_date and (self.expiry_date is None or business_date <= self.expiry_date)


def _date(value, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise RuleValidationError(f"{where}: {value!r} is not a date YYYY-MM-DD")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


def _check_value(kind: str, value, where: str):
    """The value coerced to the field's type, or a RuleValidationError naming where it is."""
    if kind == "number":
        if not _number(value):
            raise RuleValidationError(f"{where}: {value!r} is not a number")
        return float(value)
    if kind == "date":
        return _date(value, where)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise RuleValidationError(f"{where}: {value!r} is not true or false")
        return value
    if not isinstance(value, str):
        raise RuleValidationError(f"{where}: {value!r} is not a string")
    return value


def _entry(raw, where: str, keys: tuple[str, ...]) -> None:
    """A condition or adjustment must be a mapping of exactly these keys."""
    if not isinstance(raw, dict):
        raise RuleValidationError(f"{where}: must be a mapping with {', '.join(keys)}")
    unknown = set(raw) - set(keys)
    if unknown:
        raise RuleValidationError(f"{where}: unknown key(s) {sorted(unknown)}")


def _condition(rule_id: str, stage: str, i: int, raw) -> Condition:
    where = f"rule {rule_id}: condition {i + 1}"
    _entry(raw, where, ("field", "operator", "value"))
    name, op = raw.get("field"), raw.get("operator")
    testable = STAGE_FIELDS[stage][0]
    if name not in testable:
        raise RuleValidationError(f"{where}: field {name!r} cannot be tested at stage {stage}")
    if op not in OPERATORS:
        raise RuleValidationError(f"{where}: unknown operator {op!r} (one of {', '.join(OPERATORS)})")
    kind, where = testable[name], f"{where} ({name} {op})"
    if op in ("is_null", "not_null"):
        if raw.get("value") is not None:
            raise RuleValidationError(f"{where}: takes no value")
        return Condition(name, op)
    if "value" not in raw or raw["value"] is None:
        raise RuleValidationError(f"{where}: needs a value")
    value = raw["value"]
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise RuleValidationError(f"{where}: needs a non-empty list")
        return Condition(name, op, tuple(_check_value(kind, v, where) for v in value))
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleValidationError(f"{where}: needs [low, high]")
        low, high = (_check_value(kind, v, where) for v in value)
        if kind == "boolean" or low > high:
            raise RuleValidationError(f"{where}: needs low <= high on a number or date field")
        return Condition(name, op, (low, high))
    if op in (">", ">=", "<", "<=") and kind in ("boolean",):
        raise RuleValidationError(f"{where}: cannot order a boolean field")
    return Condition(name, op, _check_value(kind, value, where))


def _adjustment(rule_id: str, stage: str, i: int, raw) -> Adjustment:
    where = f"rule {rule_id}: adjustment {i + 1}"
    _entry(raw, where, ("field", "operation", "value"))
    name, op, value = raw.get("field"), raw.get("operation"), raw.get("value")
    if name not in STAGE_FIELDS[stage][1]:
        raise RuleValidationError(f"{where}: field {name!r} cannot be changed at stage {stage}")
    if op not in OPERATIONS:
        raise RuleValidationError(f"{where}: unknown operation {op!r} (one of {', '.join(OPERATIONS)})")
    where = f"{where} ({name} {op})"
    if not _number(value):
        raise RuleValidationError(f"{where}: value {value!r} is not a number")
    if op == "multiply" and value < 0:
        raise RuleValidationError(f"{where}: negative multiplier {value}")
    if op == "set" and name in UNIT_INTERVAL_FIELDS and not 0 <= value <= 1:
        raise RuleValidationError(f"{where}: sets a rate outside [0, 1]: {value}")
    if op == "set" and name not in UNIT_INTERVAL_FIELDS and value < 0:
        raise RuleValidationError(f"{where}: sets a negative amount: {value}")
    return Adjustment(name, op, float(value))


def parse_rule(raw: dict) -> Rule:
    """A validated Rule from its YAML/JSON form, or RuleValidationError naming the rule and the part."""
    if not isinstance(raw, dict):
        raise RuleValidationError(f"a rule must be a mapping, got {type(raw).__name__}")
    rule_id = raw.get("rule_id")
    if not isinstance(rule_id, str) or not RULE_ID.fullmatch(rule_id):
        raise RuleValidationError(f"rule {rule_id!r}: rule_id must be letters, digits, '_' and '-'")
    known = {"rule_id", "version", "stage", "description", "priority", "conditions", "adjustments",
             "effective_date", "expiry_date", "submitted_by", "approval"}
    unknown = set(raw) - known
    if unknown:
        raise RuleValidationError(f"rule {rule_id}: unknown key(s) {sorted(unknown)}")
    stage = raw.get("stage")
    if stage not in STAGES:
        raise RuleValidationError(f"rule {rule_id}: unknown stage {stage!r} (one of {', '.join(STAGES)})")
    priority = raw.get("priority", 100)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise RuleValidationError(f"rule {rule_id}: priority {priority!r} is not an integer")
    conditions = raw.get("conditions") or []
    adjustments = raw.get("adjustments")
    if not isinstance(conditions, list):
        raise RuleValidationError(f"rule {rule_id}: conditions must be a list")
    if not isinstance(adjustments, list) or not adjustments:
        raise RuleValidationError(f"rule {rule_id}: adjustments must be a non-empty list")
    if "effective_date" not in raw or raw["effective_date"] is None:
        raise RuleValidationError(f"rule {rule_id}: effective_date is required")
    effective = _date(raw["effective_date"], f"rule {rule_id}: effective_date")
    expiry = raw.get("expiry_date")
    expiry = None if expiry is None else _date(expiry, f"rule {rule_id}: expiry_date")
    if expiry is not None and expiry < effective:
        raise RuleValidationError(f"rule {rule_id}: expiry_date {expiry} is before effective_date {effective}")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise RuleValidationError(f"rule {rule_id}: description must be text")
    version = raw.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RuleValidationError(f"rule {rule_id}: version {version!r} is not a positive integer")
    return Rule(
        rule_id=rule_id,
        stage=stage,
        conditions=tuple(_condition(rule_id, stage, i, c) for i, c in enumerate(conditions)),
        adjustments=tuple(_adjustment(rule_id, stage, i, a) for i, a in enumerate(adjustments)),
        effective_date=effective,
        expiry_date=expiry,
        priority=priority,
        version=version,
        description=description,
        submitted_by=raw.get("submitted_by"),
        approval=raw.get("approval"),
    )
