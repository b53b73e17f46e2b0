"""The governed rule store (adjustment-rules.md, Governance): append-only, four eyes, as-of queries.

Every action is a row of ``rule_events`` (submit, approve, retire) carrying who, when, the rule
version and its body; nothing is updated or deleted, so the full history stays queryable and
the approved rule set at any past moment can be rebuilt. The same SQL runs on the embedded
DuckDB file (``$REGCALC_HOME/rules.duckdb``) and on PostgreSQL in production.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg

from regcalc_core.rules import Rule, RuleValidationError, parse_rule
from regcalc_core.errors import RegcalcInputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_events (
    rule_id    VARCHAR   NOT NULL,
    version    INTEGER   NOT NULL,
    action     VARCHAR   NOT NULL,
    actor      VARCHAR   NOT NULL,
    acted_at   TIMESTAMP NOT NULL,
    body       VARCHAR   NOT NULL,
    PRIMARY KEY (rule_id, version, action)
)
"""


class GovernanceError(RegcalcInputError, RuntimeError):
    """An action the four-eyes and versioning rules do not allow (the command line prints it as
    one line and exits with code 2)."""


@dataclass(frozen=True)
class RuleVersion:
    rule_id: str
    version: int
    status: str  # submitted | approved | retired
    submitted_by: str
    submitted_at: dt.datetime
    approved_by: str | None
    approved_at: dt.datetime | None
    body: dict


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class RuleStore(dg.ConfigurableResource):
    """Interface over a DB-API connection; subclasses say how to connect and the parameter style."""

    def _connect(self):  # pragma: no cover - interface
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql

    @contextmanager
    def _tx(self):
        con = self._connect()
        try:
            cur = con.cursor()
            cur.execute(SCHEMA)
            yield cur
            con.commit()
        except Exception:
            con.rollback()
            raise
        finally:
            con.close()

    def _events(self, cur, rule_id: str | None = None) -> list[tuple]:
        sql = "SELECT rule_id, version, action, actor, acted_at, body FROM rule_events"
        params: list = []
        if rule_id is not None:
            sql += " WHERE rule_id = ?"
            params.append(rule_id)
        cur.execute(self._sql(sql + " ORDER BY rule_id, version, acted_at"), params)
        return cur.fetchall()

    def _append(self, cur, rule_id, version, action, actor, body, at=None):
        self._append_many(cur, [(rule_id, version, action, actor, body)], at)

    def _append_many(self, cur, events: list[tuple], at=None, batch: int = 500):
        """Insert events (rule_id, version, action, actor, body), all at one moment, as multi-row
        INSERTs of up to ``batch`` rows (one statement per batch, not one per event)."""
        at = at or _now()
        for start in range(0, len(events), batch):
            chunk = events[start:start + batch]
            rows = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
            params = [p for rule_id, version, action, actor, body in chunk
                      for p in (rule_id, version, action, actor, at, json.dumps(body, default=str, sort_keys=True))]
            cur.execute(self._sql(f"INSERT INTO rule_events (rule_id, version, action, actor, acted_at, body) VALUES {rows}"),
                        params)

    def _latest_versions(self, cur) -> dict[str, int]:
        """Every rule's latest version number, read in one query."""
        cur.execute(self._sql("SELECT rule_id, max(version) FROM rule_events GROUP BY rule_id"))
        return {rule_id: version for rule_id, version in cur.fetchall()}

    # -- actions -------------------------------------------------------------------------
    def submit(self, raw_rules: list[dict], user: str) -> list[Rule]:
        """Validate every rule of a file, then store each as a new version; all or nothing (one
        transaction: the latest versions read once, the events inserted in batches)."""
        if not user:
            raise GovernanceError("a submission needs a user")
        parsed = []
        for raw in raw_rules:
            body = {k: v for k, v in raw.items() if k not in ("version", "approval", "submitted_by")}
            parsed.append((parse_rule(body), body))
        ids = [r.rule_id for r, _ in parsed]
        if len(ids) != len(set(ids)):
            raise RuleValidationError(f"rule {sorted({i for i in ids if ids.count(i) > 1})[0]}: appears twice in the file")
        with self._tx() as cur:
            latest = self._latest_versions(cur)
            stored = [dataclasses.replace(rule, version=latest.get(rule.rule_id, 0) + 1, submitted_by=user)
                      for rule, _ in parsed]
            self._append_many(cur, [(rule.rule_id, rule.version, "submit", user, body)
                                    for rule, (_, body) in zip(stored, parsed)])
        return stored

    def approve(self, rule_id: str, user: str) -> RuleVersion:
        """Approve the latest version; refused for its own submitter or if not awaiting approval."""
        with self._tx() as cur:
            versions = self._versions(cur, rule_id)
            if not versions:
                raise GovernanceError(f"rule {rule_id}: no such rule")
            latest = versions[-1]
            if latest.status != "submitted":
                raise GovernanceError(f"rule {rule_id}: version {latest.version} is {latest.status}, not awaiting approval")
            if latest.submitted_by == user:
                raise GovernanceError(f"rule {rule_id}: {user} submitted version {latest.version} and cannot approve it")
            self._append(cur, rule_id, latest.version, "approve", user, latest.body)
            return self._versions(cur, rule_id)[-1]

    def retire(self, rule_id: str, user: str) -> RuleVersion:
        """Retire a rule: a new version that ends it from now on."""
        with self._tx() as cur:
            versions = self._versions(cur, rule_id)
            if not versions:
                raise GovernanceError(f"rule {rule_id}: no such rule")
            if versions[-1].status == "retired":
                raise GovernanceError(f"rule {rule_id}: already retired")
            self._append(cur, rule_id, versions[-1].version + 1, "retire", user, versions[-1].body)
            return self._versions(cur, rule_id)[-1]

    # -- queries -------------------------------------------------------------------------
    def _versions(self, cur, rule_id: str, as_of: dt.datetime | None = None) -> list[RuleVersion]:
        return _fold_versions(rule_id, self._events(cur, rule_id), as_of)

    def history(self, rule_id: str) -> list[RuleVersion]:
        with self._tx() as cur:
            return self._versions(cur, rule_id)

    def rule_ids(self) -> list[str]:
        with self._tx() as cur:
            return sorted({e[0] for e in self._events(cur)})

    def _events_by_rule(self) -> dict[str, list[tuple]]:
        """Every event, grouped by rule id (one query)."""
        by_rule: dict[str, list[tuple]] = {}
        with self._tx() as cur:
            for event in self._events(cur):
                by_rule.setdefault(event[0], []).append(event)
        return by_rule

    def all_versions(self) -> list[RuleVersion]:
        """Every version of every rule with its status, by rule and version (one query)."""
        by_rule = self._events_by_rule()
        return [v for rule_id in sorted(by_rule) for v in _fold_versions(rule_id, by_rule[rule_id])]

    def approved_rules(self, as_of: dt.datetime | None = None) -> list[Rule]:
        """The rules in force at ``as_of`` (default now, naive UTC like the stored moments): per
        rule, its latest approved version, unless a later retirement happened by then. The
        events are read in one query."""
        by_rule = self._events_by_rule()
        rules = []
        for rule_id in sorted(by_rule):
            versions = _fold_versions(rule_id, by_rule[rule_id], as_of)
            if not versions or versions[-1].status == "retired":
                continue
            approved = [v for v in versions if v.status == "approved"]
            if approved:
                v = approved[-1]
                rules.append(parse_rule({**v.body, "version": v.version, "submitted_by": v.submitted_by,
                                         "approval": {"user": v.approved_by, "timestamp": v.approved_at.isoformat()}}))
        return rules


def _fold_versions(rule_id: str, events: list[tuple], as_of: dt.datetime | None = None) -> list[RuleVersion]:
    """A rule's versions (and the status of each) from its events in (version, acted_at) order,
    counting only the events up to ``as_of`` when it is given."""
    by_version: dict[int, dict] = {}
    for _, version, action, actor, at, body in events:
        if as_of is not None and at > as_of:
            continue
        v = by_version.setdefault(version, {"body": json.loads(body)})
        v[action] = (actor, at)
    out = []
    for version, v in sorted(by_version.items()):
        if "retire" in v:
            status, (by, at) = "retired", v["retire"]
            out.append(RuleVersion(rule_id, version, status, by, at, None, None, v["body"]))
            continue
        by, at = v["submit"]
        approved = v.get("approve")
        out.append(RuleVersion(rule_id, version, "approved" if approved else "submitted", by, at,
                               approved[0] if approved else None, approved[1] if approved else None, v["body"]))
    return out


class DuckDBRuleStore(RuleStore):
    """Embedded store: a DuckDB file under $REGCALC_HOME."""

    path: str

    def _connect(self):
        from regcalc_resources.duckdb_files import connect

        con = connect(self.path)  # waits while another process holds the file ($REGCALC_LOCK_TIMEOUT)
        con.execute("BEGIN TRANSACTION")
        return _DuckDBTx(con)


class _DuckDBTx:
    """DB-API face of a DuckDB connection inside one explicit transaction."""

    def __init__(self, con):
        self._con = con

    def cursor(self):
        return self._con

    def commit(self):
        self._con.execute("COMMIT")

    def rollback(self):
        try:
            self._con.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - nothing to roll back
            pass

    def close(self):
        self._con.close()


class PostgresRuleStore(RuleStore):
    """Production store on PostgreSQL; the DSN comes from the environment (REGCALC_RULES_DSN)."""

    dsn: str

    def _connect(self):
        import psycopg

        return psycopg.connect(self.dsn)

    def _sql(self, sql: str) -> str:
        from regcalc_resources.warehouse_postgres import to_pyformat

        return to_pyformat(sql)
