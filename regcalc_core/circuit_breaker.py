"""Circuit breaker for large adjustment impacts: the per-entity limits (versioned configuration,
``thresholds/impact_thresholds_v1.yaml``), an entity's impact (its base and adjusted LCR and NSFR
and the rules that changed it), whether it crosses its limits, and whether an approver's
acknowledgment covers it.

An acknowledgment covers the impact it saw: the same rule versions and the same base and adjusted
figures (to a relative 1e-9, so that a recomputation on another engine still matches). When the
rules change (a new version, another rule) or the figures do (a re-delivery), the impact is a new
one, and crossing again it must be acknowledged again.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from regcalc_core.errors import RegcalcInputError

THRESHOLDS_VARIABLE = "REGCALC_IMPACT_THRESHOLDS"
DEFAULT_THRESHOLDS = "impact_thresholds_v1"
RATIOS = ("lcr", "nsfr")
FIGURES = ("lcr_base", "lcr", "nsfr_base", "nsfr")


class ThresholdsError(RegcalcInputError):
    """The thresholds file is missing or malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Limit:
    """The largest change of each ratio, in percentage points, that publishes without an
    acknowledgment (None: no limit)."""

    lcr_points: float | None
    nsfr_points: float | None
    reason: str | None = None

    def points(self, ratio: str) -> float | None:
        return getattr(self, f"{ratio}_points")

    def as_dict(self) -> dict:
        return {"lcr_points": self.lcr_points, "nsfr_points": self.nsfr_points}


@dataclass(frozen=True)
class Thresholds:
    name: str
    version: int
    sha256: str
    path: str
    default: Limit
    entities: dict = field(default_factory=dict)  # entity_id -> Limit

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version} (sha256 {self.sha256[:12]})"

    def for_entity(self, entity_id: str) -> Limit:
        return self.entities.get(entity_id, self.default)


def _points(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ThresholdsError(f"{where}: a limit is a non-negative number of percentage points or null, not {value!r}")
    return float(value)


def _limit(entry, where: str, default: Limit | None = None) -> Limit:
    if not isinstance(entry, dict):
        raise ThresholdsError(f"{where}: expected a mapping with lcr_points and nsfr_points")
    unknown = sorted(set(entry) - {"lcr_points", "nsfr_points", "reason"})
    if unknown:
        raise ThresholdsError(f"{where}: unknown key {unknown[0]!r} (lcr_points, nsfr_points, reason)")
    if default is None:
        missing = [k for k in ("lcr_points", "nsfr_points") if k not in entry]
        if missing:
            raise ThresholdsError(f"{where}: {missing[0]} is missing")
        return Limit(_points(entry["lcr_points"], where), _points(entry["nsfr_points"], where))
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ThresholdsError(f"{where}: an entity's own limits need their reason")
    return Limit(_points(entry.get("lcr_points", default.lcr_points), where),
                 _points(entry.get("nsfr_points", default.nsfr_points), where), reason.strip())


def thresholds_path() -> str:
    """``$REGCALC_IMPACT_THRESHOLDS`` (a site's own versioned file), else the shipped default."""
    named = os.environ.get(THRESHOLDS_VARIABLE)
    if named:
        return named
    return str(resources.files("regcalc_core").joinpath("thresholds", f"{DEFAULT_THRESHOLDS}.yaml"))


def parse_thresholds(text: str, path: str) -> Thresholds:
    """The thresholds of a file's text (``path`` names it in errors and in the label)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ThresholdsError(f"thresholds file {path}: not YAML ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise ThresholdsError(f"thresholds file {path}: expected a mapping")
    for key in ("name", "version", "sources", "default"):
        if key not in doc:
            raise ThresholdsError(f"thresholds file {path}: {key} is missing")
    if not isinstance(doc["version"], int) or isinstance(doc["version"], bool) or doc["version"] < 1:
        raise ThresholdsError(f"thresholds file {path}: version must be a positive integer")
    if not isinstance(doc["sources"], list) or not doc["sources"]:
        raise ThresholdsError(f"thresholds file {path}: sources must cite where the limits come from")
    default = _limit(doc["default"], f"thresholds file {path}, default")
    entities = doc.get("entities") or {}
    if not isinstance(entities, dict):
        raise ThresholdsError(f"thresholds file {path}: entities must map an entity_id to its limits")
    own = {str(e): _limit(v, f"thresholds file {path}, entity {e}", default) for e, v in entities.items()}
    return Thresholds(str(doc["name"]), doc["version"], hashlib.sha256(text.encode()).hexdigest(), path, default, own)


def load_thresholds(path: str | None = None) -> Thresholds:
    """The thresholds in force: ``path``, or ``thresholds_path()``."""
    path = path or thresholds_path()
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ThresholdsError(f"thresholds file {path}: cannot be read ({exc.strerror or type(exc).__name__}); "
                              f"check {THRESHOLDS_VARIABLE}") from None
    return parse_thresholds(text, path)


@dataclass(frozen=True)
class Impact:
    """One entity's base and adjusted ratios on a business date."""

    business_date: str
    entity_id: str
    lcr_base: float | None
    lcr: float | None
    nsfr_base: float | None
    nsfr: float | None

    def change_points(self, ratio: str) -> float | None:
        """adjusted - base, in percentage points (None when either is undefined)."""
        base, adjusted = getattr(self, f"{ratio}_base"), getattr(self, ratio)
        return None if base is None or adjusted is None else (adjusted - base) * 100.0

    def crossed(self, limit: Limit) -> list[str]:
        """The ratios (``"lcr"``, ``"nsfr"``) whose change exceeds the limit."""
        out = []
        for ratio in RATIOS:
            points = limit.points(ratio)
            if points is None:
                continue
            base, adjusted = getattr(self, f"{ratio}_base"), getattr(self, ratio)
            if (base is None) != (adjusted is None):  # the rules made the ratio (un)defined
                out.append(ratio)
            elif base is not None and abs(self.change_points(ratio)) > points + 1e-9:
                out.append(ratio)
        return out


def impacts(rows: list[dict]) -> dict[str, Impact]:
    """{entity_id: Impact} from one business date's metrics rows (a ``basis`` of base and adjusted)."""
    by_entity: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_entity.setdefault(row["entity_id"], {})[row["basis"]] = row
    out = {}
    for entity, bases in sorted(by_entity.items()):
        base, adjusted = bases.get("base", {}), bases.get("adjusted", {})
        date = str((adjusted or base)["business_date"])

        def ratio(row, name):
            value = row.get(name)
            return None if value is None else float(value)

        out[entity] = Impact(date, entity, ratio(base, "lcr"), ratio(adjusted, "lcr"), ratio(base, "nsfr"),
                             ratio(adjusted, "nsfr"))
    return out


def rules_by_entity(changes: list[dict]) -> dict[str, list[dict]]:
    """{entity_id: the rules that changed its figures}, from rows of (entity_id, stage, rule_id,
    version, changes): each rule version once, ``{"rule": "ID@vN", "rule_id", "version", "stage",
    "changes"}``, in stage order then by rule."""
    order = {"deal_enrichment": 0, "aggregation": 1, "final_calc": 2}
    out: dict[str, list[dict]] = {}
    for r in sorted(changes, key=lambda r: (r["entity_id"], order.get(r["stage"], 9), r["rule_id"], r["version"])):
        out.setdefault(r["entity_id"], []).append({"rule": f"{r['rule_id']}@v{r['version']}", "rule_id": r["rule_id"],
                                                   "version": int(r["version"]), "stage": r["stage"],
                                                   "changes": int(r["changes"])})
    return out


def impact_record(impact: Impact, limit: Limit, rules: list[dict], thresholds: Thresholds) -> dict:
    """What the check shows and an acknowledgment records: the figures, their change in points,
    the limits and which were crossed, the rules behind it and the thresholds file applied."""
    return {
        "business_date": impact.business_date,
        "entity_id": impact.entity_id,
        **{name: getattr(impact, name) for name in FIGURES},
        "lcr_change_points": impact.change_points("lcr"),
        "nsfr_change_points": impact.change_points("nsfr"),
        "limits": limit.as_dict(),
        "crossed": impact.crossed(limit),
        "rules": [dict(r) for r in rules],
        "thresholds": thresholds.label,
    }


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def covers(acknowledged: dict, impact: Impact, rules: list[dict]) -> bool:
    """Whether an acknowledged impact record is this impact: the same rule versions and the same
    base and adjusted figures."""
    seen = sorted(r["rule"] if isinstance(r, dict) else str(r) for r in acknowledged.get("rules", []))
    if seen != sorted(r["rule"] for r in rules):
        return False
    return all(name in acknowledged and _same(acknowledged[name], getattr(impact, name)) for name in FIGURES)


def covering(acknowledgments: list, impact: Impact, rules: list[dict]):
    """The latest acknowledgment (``.body`` is its impact record) that covers this impact, or None."""
    for ack in reversed(acknowledgments):
        if ack.entity_id == impact.entity_id and ack.business_date == impact.business_date and covers(ack.body, impact, rules):
            return ack
    return None


def _pct(value: float | None) -> str:
    return "undefined" if value is None else f"{value * 100:.2f}%"


def _change(record: dict, ratio: str) -> str:
    points, limit = record[f"{ratio}_change_points"], record["limits"][f"{ratio}_points"]
    text = f"{ratio.upper()} {_pct(record[f'{ratio}_base'])} -> {_pct(record[ratio])}"
    text += "" if points is None else f" ({points:+.2f} points"
    text += (" " if points is None else ", ") + ("no limit" if limit is None else f"limit {limit:g}")
    return text + ("" if points is None else ")")


def describe(record: dict, with_rules: bool = True) -> str:
    """One paragraph for the UI: the figures against their limits and (``with_rules``) the rules
    behind them."""
    text = f"{_change(record, 'lcr')}; {_change(record, 'nsfr')}"
    if not with_rules:
        return text
    rules = ", ".join(f"{r['rule']} ({r['stage']}, {r['changes']} change{'s' if r['changes'] != 1 else ''})"
                      for r in record["rules"]) or "none"
    return f"{text}; rules: {rules}"
