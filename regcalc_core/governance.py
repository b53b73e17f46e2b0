"""Governance vocabulary of the rule store: who acted, the hash-chained event log, and how a rule's
versions and the rules in force follow from its events (adjustment-rules.md, Governance).

The store is one append-only log of events. Each event is one action on one subject:

- ``submit``  a new version of a rule (its body), awaiting approval;
- ``retire``  a new version that ends the rule, also awaiting approval;
- ``approve`` the latest pending version of a rule, by someone other than who made it;
- ``acknowledge`` a circuit-breaker impact for one business date and entity (subject
  ``<date>/<entity>``, which no rule id can spell since rule ids have no ``/``).

Every event carries the hash of its own content and of the event before it (``prev_hash``), so
an edit, a removal, a reordering or an insertion made behind the store's back breaks the chain
at that event. The same hash is computed by the PostgreSQL store's functions in SQL
(``rule_store_sql.py``) and here in Python: fields are length-prefixed and joined, then SHA-256.

No Dagster import: the store resources, the command line and the tests share this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass

from regcalc_core.errors import RegcalcInputError

GENESIS = "0" * 64
ACTIONS = ("submit", "retire", "approve", "acknowledge")
TIMESTAMP_TEXT = "%Y-%m-%dT%H:%M:%S.%f"  # the SQL side writes the same: YYYY-MM-DD"T"HH24:MI:SS.US


class GovernanceError(RegcalcInputError, RuntimeError):
    """An action the four-eyes and versioning rules do not allow (the command line prints it as
    one line and exits with code 2)."""


class BrokenChainError(GovernanceError):
    """The stored history no longer hashes to itself: an event was edited, removed, reordered or
    inserted behind the store's back. The message names the first broken event."""


# -- identity ------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_identity(name: str | None, what: str = "user") -> str:
    """One spelling per person: Unicode NFKC, surrounding blanks removed, inner runs of blanks
    made one space, lower case (PostgreSQL role names fold the same way). Refuses an empty name
    or one with control characters, so ``"alice "`` is ``alice`` and ``""`` is nobody."""
    if name is None:
        raise GovernanceError(f"{what}: an identity is required")
    text = " ".join(unicodedata.normalize("NFKC", str(name)).split()).lower()
    if not text:
        raise GovernanceError(f"{what}: an empty identity is not a person")
    if _CONTROL.search(text):
        raise GovernanceError(f"{what}: {text!r} has control characters")
    return text


# -- the chain -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One row of the log, as stored."""

    seq: int
    rule_id: str
    version: int
    action: str
    actor: str
    actor_verified: bool
    acted_at: dt.datetime
    body: str
    prev_hash: str
    hash: str

    def describe(self) -> str:
        verified = "" if self.actor_verified else " (unverified)"
        return (f"event {self.seq} ({self.action} {self.rule_id} v{self.version} by {self.actor}{verified} "
                f"at {self.acted_at:%Y-%m-%d %H:%M:%S})")


def _field(value: str) -> str:
    return f"{len(value)}:{value}"


def event_hash(prev_hash: str, seq: int, rule_id: str, version: int, action: str, actor: str,
               actor_verified: bool, acted_at: dt.datetime, body: str) -> str:
    """SHA-256 (hex) of the previous hash and the event's content, each field length-prefixed."""
    text = "".join(_field(v) for v in (prev_hash, str(seq), rule_id, str(version), action, actor,
                                        "true" if actor_verified else "false",
                                        acted_at.strftime(TIMESTAMP_TEXT), body))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chained(last: Event | None, rule_id: str, version: int, action: str, actor: str, actor_verified: bool,
            acted_at: dt.datetime, body: str) -> Event:
    """The event that follows ``last`` (or starts the chain)."""
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    return Event(seq, rule_id, version, action, actor, actor_verified, acted_at, body, prev,
                 event_hash(prev, seq, rule_id, version, action, actor, actor_verified, acted_at, body))


def chain_break(events: list[Event]) -> str | None:
    """Why the chain (events in stored ``seq`` order) is broken, naming the first broken event;
    None when every event hashes to itself and links to the one before it."""
    prev_hash, expected_seq = GENESIS, 1
    for e in events:
        if e.seq != expected_seq:
            gap = "removed" if e.seq > expected_seq else "duplicated or reordered"
            return (f"{e.describe()}: expected sequence number {expected_seq}; "
                    f"an event before it was {gap}")
        if e.action not in ACTIONS:
            return f"{e.describe()}: unknown action {e.action!r}"
        if e.prev_hash != prev_hash:
            return f"{e.describe()}: does not link to the event before it (reordered, inserted or removed)"
        if e.hash != event_hash(e.prev_hash, e.seq, e.rule_id, e.version, e.action, e.actor, e.actor_verified,
                                e.acted_at, e.body):
            return f"{e.describe()}: its content does not match its hash (edited or inserted)"
        prev_hash, expected_seq = e.hash, expected_seq + 1
    return None


def verified(events: list[Event], where: str) -> list[Event]:
    """The events, or BrokenChainError naming the first broken one."""
    problem = chain_break(events)
    if problem:
        raise BrokenChainError(f"rule store {where}: history broken at {problem}; "
                               "`regcalc rules verify` names it; nothing was read")
    return events


# -- versions and the rules in force ---------------------------------------------------------
@dataclass(frozen=True)
class RuleVersion:
    """One version of a rule: a submission or a retirement, and its approval if any."""

    rule_id: str
    version: int
    status: str  # submitted | approved | retirement pending | retired
    submitted_by: str
    submitted_at: dt.datetime
    approved_by: str | None
    approved_at: dt.datetime | None
    body: dict
    unverified_maker: bool = False  # the maker was named (--as-user-unverified), not authenticated
    unverified_approver: bool = False

    @property
    def is_retirement(self) -> bool:
        return self.status in ("retirement pending", "retired")

    @property
    def pending(self) -> bool:
        return self.status in ("submitted", "retirement pending")


def fold_versions(rule_id: str, events: list[Event], as_of: dt.datetime | None = None) -> list[RuleVersion]:
    """A rule's versions from its events (any order), counting only events up to ``as_of``."""
    by_version: dict[int, dict] = {}
    for e in sorted(events, key=lambda e: e.seq):
        if e.rule_id != rule_id or e.action == "acknowledge" or (as_of is not None and e.acted_at > as_of):
            continue
        v = by_version.setdefault(e.version, {})
        v[e.action] = e
    out = []
    for version, v in sorted(by_version.items()):
        made = v.get("submit") or v.get("retire")
        if made is None:  # an approval without its version (cut off by as_of): nothing yet
            continue
        approved = v.get("approve")
        retirement = made.action == "retire"
        status = ("retired" if approved else "retirement pending") if retirement else (
            "approved" if approved else "submitted")
        out.append(RuleVersion(rule_id, version, status, made.actor, made.acted_at,
                               approved.actor if approved else None, approved.acted_at if approved else None,
                               json.loads(made.body), not made.actor_verified,
                               approved is not None and not approved.actor_verified))
    return out


def in_force(versions: list[RuleVersion]) -> RuleVersion | None:
    """The version in force after these versions: the latest approved one, unless an approved
    retirement came after it. Pending versions change nothing, so a resubmission after a
    retirement does not revive an older approved version, and a pending retirement leaves the
    rule in force."""
    current = None
    for v in versions:
        if v.status == "approved":
            current = v
        elif v.status == "retired":
            current = None
    return current


def approval_refusal(rule_id: str, versions: list[RuleVersion], actor: str) -> str | None:
    """Why ``actor`` may not approve the rule's latest version (None: they may)."""
    if not versions:
        return f"rule {rule_id}: no such rule"
    latest = versions[-1]
    if not latest.pending:
        return f"rule {rule_id}: version {latest.version} is {latest.status}, not awaiting approval"
    if latest.submitted_by == actor:
        made = "retired" if latest.is_retirement else "submitted"
        return f"rule {rule_id}: {actor} {made} version {latest.version} and cannot approve it"
    return None


def retirement_refusal(rule_id: str, versions: list[RuleVersion]) -> str | None:
    """Why the rule cannot be retired now (None: it can)."""
    if not versions:
        return f"rule {rule_id}: no such rule"
    latest = versions[-1]
    if latest.status == "retired":
        return f"rule {rule_id}: already retired"
    if latest.status == "retirement pending":
        return f"rule {rule_id}: a retirement (version {latest.version}) already awaits approval"
    return None


def acknowledgment_subject(business_date: str, entity_id: str) -> str:
    return f"{business_date}/{entity_id}"


@dataclass(frozen=True)
class Acknowledgment:
    """A circuit-breaker impact acknowledged by an approver for one business date and entity."""

    business_date: str
    entity_id: str
    actor: str
    acted_at: dt.datetime
    rule_ids: tuple[str, ...]
    body: dict
    actor_verified: bool = True


def acknowledgments_of(events: list[Event]) -> list[Acknowledgment]:
    out = []
    for e in events:
        if e.action != "acknowledge":
            continue
        body = json.loads(e.body)
        business_date, _, entity_id = e.rule_id.partition("/")
        out.append(Acknowledgment(business_date, entity_id, e.actor, e.acted_at,
                                  tuple(body.get("rule_ids", ())), body.get("impact", {}), e.actor_verified))
    return out


def acknowledgment_refusal(events: list[Event], rule_ids: list[str], actor: str) -> str | None:
    """An impact is acknowledged by someone who made none of the rules behind it."""
    makers = {e.rule_id: e.actor for e in events if e.action in ("submit", "retire") and e.rule_id in set(rule_ids)
              and e.actor == actor}
    if makers:
        return (f"{actor} made a version of rule {sorted(makers)[0]} and cannot acknowledge its impact; "
                "another approver must")
    return None


def canonical_body(body: dict) -> str:
    return json.dumps(body, default=str, sort_keys=True)
