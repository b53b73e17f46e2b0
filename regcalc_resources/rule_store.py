"""The governed rule store (adjustment-rules.md, Governance): append-only, hash-chained, four eyes,
as-of queries. The vocabulary (events, the chain, versions, who may approve) is
``regcalc_core.governance``; this module says where the events live and who the actor is.

- **Embedded DuckDB file** (``$REGCALC_HOME/rules.duckdb``): the actor is the operating-system
  account. A caller may name another user, and the event records that name as *unverified*: a
  single-user file cannot enforce four eyes, and the history says so. The chain makes an edit of
  the file visible; the checks are made here, in Python.
- **PostgreSQL** (``REGCALC_RULES_DSN``, set up by ``regcalc rules init-db``): the actor is the
  role the connection authenticated as (``session_user``). Every action is a SECURITY DEFINER
  function that makes its own checks and computes the chain in SQL; the application roles have no
  INSERT, UPDATE or DELETE on the table. A different ``user`` is refused.

Every read of the rules verifies the whole chain first and refuses a broken one
(``BrokenChainError``), so an EOD never runs on a history that was rewritten behind the store's
back.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from contextlib import contextmanager
from importlib import resources

import dagster as dg

from regcalc_core.governance import (Acknowledgment, BrokenChainError, Event, GovernanceError, RuleVersion,
                                     acknowledgment_refusal, acknowledgment_subject, acknowledgments_of,
                                     approval_refusal, canonical_body, chain_break, chained, fold_versions,
                                     in_force, normalize_identity, retirement_refusal, verified)
from regcalc_core.rules import Rule, RuleValidationError, parse_rule

__all__ = ["RuleStore", "DuckDBRuleStore", "PostgresRuleStore", "GovernanceError", "BrokenChainError",
           "RuleVersion", "Acknowledgment", "postgres_setup_sql"]

COLUMNS = "seq, rule_id, version, action, actor, actor_verified, acted_at, body, prev_hash, hash"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _events(rows) -> list[Event]:
    return [Event(*row) for row in rows]


def _parsed(raw_rules: list[dict]) -> list[tuple[Rule, dict]]:
    """Every rule of a file validated (all or nothing), with the body that is stored."""
    parsed = []
    for raw in raw_rules:
        body = {k: v for k, v in raw.items() if k not in ("version", "approval", "submitted_by")}
        parsed.append((parse_rule(body), body))
    ids = [r.rule_id for r, _ in parsed]
    if len(ids) != len(set(ids)):
        raise RuleValidationError(f"rule {sorted({i for i in ids if ids.count(i) > 1})[0]}: appears twice in the file")
    return parsed


class RuleStore(dg.ConfigurableResource):
    """The store's interface; subclasses say where the events live and who is acting."""

    # -- identity --------------------------------------------------------------------------
    def identity(self) -> str:  # pragma: no cover - interface
        """The authenticated identity of whoever uses this store."""
        raise NotImplementedError

    def _actor(self, user: str | None) -> tuple[str, bool]:
        """(actor, verified): the authenticated identity, or a named user recorded as unverified
        where the store allows it."""
        me = normalize_identity(self.identity(), "authenticated identity")
        if user is None:
            return me, True
        named = normalize_identity(user)
        return (named, True) if named == me else self._unverified(named, me)

    def _unverified(self, named: str, me: str) -> tuple[str, bool]:  # pragma: no cover - interface
        raise NotImplementedError

    # -- storage (subclasses) ----------------------------------------------------------------
    def _read(self) -> list[Event]:  # pragma: no cover - interface
        """Every event in stored ``seq`` order, unchecked."""
        raise NotImplementedError

    def where(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    # -- actions ---------------------------------------------------------------------------
    def submit(self, raw_rules: list[dict], user: str | None = None) -> list[Rule]:
        """Validate every rule of a file, then store each as the next version of its rule, all or
        nothing (one transaction)."""
        parsed = _parsed(raw_rules)
        actor, was_verified = self._actor(user)
        versions = self._submit([(rule.rule_id, canonical_body(body)) for rule, body in parsed], actor, was_verified)
        return [parse_rule({**body, "version": versions[rule.rule_id], "submitted_by": actor}) for rule, body in parsed]

    def approve(self, rule_id: str, user: str | None = None) -> RuleVersion:
        """Approve the latest pending version (a submission or a retirement); never by its maker."""
        actor, was_verified = self._actor(user)
        self._approve(rule_id, actor, was_verified)
        return self.history(rule_id)[-1]

    def retire(self, rule_id: str, user: str | None = None) -> RuleVersion:
        """Ask to retire a rule: a new version that ends it once someone else approves it; until
        then the rule stays in force."""
        actor, was_verified = self._actor(user)
        self._retire(rule_id, actor, was_verified)
        return self.history(rule_id)[-1]

    def acknowledge(self, business_date: str, entity_id: str, rule_ids: list[str], body: dict,
                    user: str | None = None) -> Acknowledgment:
        """Record that an approver, who made none of ``rule_ids``, accepts the impact ``body`` of
        those rules on one business date and entity (the circuit breaker then lets it publish)."""
        actor, was_verified = self._actor(user)
        subject = acknowledgment_subject(business_date, entity_id)
        content = canonical_body({"business_date": business_date, "entity_id": entity_id,
                                  "rule_ids": sorted(rule_ids), "impact": body})
        self._acknowledge(subject, sorted(rule_ids), content, actor, was_verified)
        return self.acknowledgments(business_date, entity_id)[-1]

    # -- queries ---------------------------------------------------------------------------
    def events(self) -> list[Event]:
        """Every event, the chain verified first (BrokenChainError names the first broken one)."""
        return verified(self._read(), self.where())

    def verify(self) -> tuple[int, str | None, str | None]:
        """(events, head hash, problem): the chain recomputed; ``problem`` names the first broken
        event, None when the history is intact."""
        events = self._read()
        return len(events), events[-1].hash if events else None, chain_break(events)

    def history(self, rule_id: str) -> list[RuleVersion]:
        """Every version of a rule, from the stored events as they are (not verified, so that a
        broken history can still be examined)."""
        return fold_versions(rule_id, [e for e in self._read() if e.rule_id == rule_id])

    def rule_ids(self) -> list[str]:
        return sorted({e.rule_id for e in self.events() if e.action != "acknowledge"})

    def _by_rule(self) -> dict[str, list[Event]]:
        by_rule: dict[str, list[Event]] = {}
        for e in self.events():
            if e.action != "acknowledge":
                by_rule.setdefault(e.rule_id, []).append(e)
        return by_rule

    def all_versions(self) -> list[RuleVersion]:
        """Every version of every rule with its status, by rule and version."""
        by_rule = self._by_rule()
        return [v for rule_id in sorted(by_rule) for v in fold_versions(rule_id, by_rule[rule_id])]

    def approved_rules(self, as_of: dt.datetime | None = None) -> list[Rule]:
        """The rules in force at ``as_of`` (default now, naive UTC like the stored moments), from a
        verified chain: per rule, its latest approved version unless an approved retirement came
        after it (``governance.in_force``)."""
        by_rule = self._by_rule()
        rules = []
        for rule_id in sorted(by_rule):
            v = in_force(fold_versions(rule_id, by_rule[rule_id], as_of))
            if v is not None:
                rules.append(parse_rule({**v.body, "version": v.version, "submitted_by": v.submitted_by,
                                         "approval": {"user": v.approved_by, "timestamp": v.approved_at.isoformat()}}))
        return rules

    def acknowledgments(self, business_date: str | None = None, entity_id: str | None = None) -> list[Acknowledgment]:
        """The acknowledged impacts, oldest first, optionally for one date and/or entity."""
        return [a for a in acknowledgments_of(self.events())
                if (business_date is None or a.business_date == business_date)
                and (entity_id is None or a.entity_id == entity_id)]


class DuckDBRuleStore(RuleStore):
    """Embedded store: a DuckDB file under $REGCALC_HOME. The actor is the OS account; a named
    user is recorded as unverified. The checks and the chain are computed here."""

    path: str

    def identity(self) -> str:
        return getpass.getuser()

    def _unverified(self, named: str, me: str) -> tuple[str, bool]:
        return named, False

    def where(self) -> str:
        return self.path

    @contextmanager
    def _tx(self):
        from regcalc_resources.duckdb_files import connect

        con = connect(self.path)  # waits while another process holds the file ($REGCALC_LOCK_TIMEOUT)
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute("""CREATE TABLE IF NOT EXISTS rule_events (
                seq BIGINT PRIMARY KEY, rule_id VARCHAR NOT NULL, version INTEGER NOT NULL,
                action VARCHAR NOT NULL, actor VARCHAR NOT NULL, actor_verified BOOLEAN NOT NULL,
                acted_at TIMESTAMP NOT NULL, body VARCHAR NOT NULL, prev_hash VARCHAR NOT NULL,
                hash VARCHAR NOT NULL)""")
            columns = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                                 "WHERE table_name = 'rule_events' ORDER BY ordinal_position").fetchall()]
            if "hash" not in columns:
                raise GovernanceError(f"rule store {self.path} predates the hash-chained history; move it aside "
                                      "and submit the rules again")
            yield con
            con.execute("COMMIT")
        except Exception:
            try:
                con.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - nothing to roll back
                pass
            raise
        finally:
            con.close()

    def _read_in(self, con) -> list[Event]:
        return _events(con.execute(f"SELECT {COLUMNS} FROM rule_events ORDER BY seq").fetchall())

    def _read(self) -> list[Event]:
        with self._tx() as con:
            return self._read_in(con)

    def _append(self, con, events: list[Event], new: list[tuple], batch: int = 500) -> None:
        """Chain ``new`` (rule_id, version, action, actor, verified, body) after the verified
        ``events`` and insert them in multi-row batches."""
        at, last, rows = _now(), events[-1] if events else None, []
        for rule_id, version, action, actor, was_verified, body in new:
            last = chained(last, rule_id, version, action, actor, was_verified, at, body)
            rows.append(last)
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            con.execute(f"INSERT INTO rule_events ({COLUMNS}) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
                        [p for e in chunk for p in (e.seq, e.rule_id, e.version, e.action, e.actor, e.actor_verified,
                                                     e.acted_at, e.body, e.prev_hash, e.hash)])

    @contextmanager
    def _checked(self):
        """(connection, verified events) inside one transaction: nothing is appended to a broken chain."""
        with self._tx() as con:
            yield con, verified(self._read_in(con), self.path)

    def _submit(self, items, actor, was_verified) -> dict[str, int]:
        with self._checked() as (con, events):
            latest: dict[str, int] = {}
            for e in events:
                latest[e.rule_id] = max(latest.get(e.rule_id, 0), e.version)
            versions = {rule_id: latest.get(rule_id, 0) + 1 for rule_id, _ in items}
            self._append(con, events, [(rule_id, versions[rule_id], "submit", actor, was_verified, body)
                                       for rule_id, body in items])
            return versions

    def _after_latest(self, rule_id, actor, was_verified, action: str, refusal, step: int) -> None:
        """Append ``action`` for the rule's latest version plus ``step``, unless ``refusal`` of its
        versions says why not."""
        with self._checked() as (con, events):
            versions = fold_versions(rule_id, events)
            why = refusal(versions)
            if why:
                raise GovernanceError(why)
            latest = versions[-1]
            self._append(con, events, [(rule_id, latest.version + step, action, actor, was_verified,
                                        canonical_body(latest.body))])

    def _approve(self, rule_id, actor, was_verified) -> None:
        self._after_latest(rule_id, actor, was_verified, "approve",
                           lambda versions: approval_refusal(rule_id, versions, actor), 0)

    def _retire(self, rule_id, actor, was_verified) -> None:
        self._after_latest(rule_id, actor, was_verified, "retire",
                           lambda versions: retirement_refusal(rule_id, versions), 1)

    def _acknowledge(self, subject, rule_ids, content, actor, was_verified) -> None:
        with self._checked() as (con, events):
            refusal = acknowledgment_refusal(events, rule_ids, actor)
            if refusal:
                raise GovernanceError(refusal)
            version = 1 + sum(1 for e in events if e.rule_id == subject)
            self._append(con, events, [(subject, version, "acknowledge", actor, was_verified, content)])


def postgres_setup_sql() -> str:
    """The SQL that sets up the PostgreSQL store (roles, table, views, functions, grants)."""
    return resources.files("regcalc_resources").joinpath("rule_store_postgres.sql").read_text()


class PostgresRuleStore(RuleStore):
    """Production store on PostgreSQL (REGCALC_RULES_DSN), set up by ``regcalc rules init-db``.
    Every action is one of the store's SECURITY DEFINER functions, which check four eyes and
    chain the event in the database under the authenticated role (``session_user``)."""

    dsn: str

    def where(self) -> str:
        return "REGCALC_RULES_DSN"  # never the DSN itself: it may hold a password

    @contextmanager
    def _cursor(self):
        import psycopg

        from regcalc_resources.connections import connect_postgres

        con = connect_postgres(self.dsn, "REGCALC_RULES_DSN")  # an error never carries the password
        try:
            with con:
                yield con.cursor()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            raise GovernanceError(f"rule store {self.where()} is not set up: run `regcalc rules init-db --apply` "
                                  "as its owner") from None
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.NoDataFound, psycopg.errors.DataException) as exc:
            raise GovernanceError(exc.diag.message_primary or str(exc)) from None
        finally:
            con.close()

    def identity(self) -> str:
        with self._cursor() as cur:
            cur.execute("SELECT session_user")
            return cur.fetchone()[0]

    def _unverified(self, named: str, me: str) -> tuple[str, bool]:
        raise GovernanceError(f"the PostgreSQL rule store acts as the role you logged in as ({me}); "
                              f"acting as {named} is refused")

    @staticmethod
    def _read_in(cur) -> list[Event]:
        cur.execute(f"SELECT {COLUMNS} FROM regcalc_rules.events ORDER BY seq")
        return _events(cur.fetchall())

    def _read(self) -> list[Event]:
        with self._cursor() as cur:
            return self._read_in(cur)

    def _call(self, sql: str, params: list) -> list[tuple]:
        """One of the store's functions, after verifying the chain it will extend (in the same
        transaction; the function takes the table's lock)."""
        with self._cursor() as cur:
            verified(self._read_in(cur), self.where())
            cur.execute(sql, params)
            return cur.fetchall()

    def _submit(self, items, actor, was_verified) -> dict[str, int]:
        return dict(self._call("SELECT submitted_rule_id, submitted_version FROM regcalc_rules.submit_rules(%s::jsonb)",
                               [json.dumps([{"rule_id": rule_id, "body": body} for rule_id, body in items])]))

    def _approve(self, rule_id, actor, was_verified) -> None:
        self._call("SELECT regcalc_rules.approve_rule(%s)", [rule_id])

    def _retire(self, rule_id, actor, was_verified) -> None:
        self._call("SELECT regcalc_rules.retire_rule(%s)", [rule_id])

    def _acknowledge(self, subject, rule_ids, content, actor, was_verified) -> None:
        self._call("SELECT regcalc_rules.acknowledge_impact(%s, %s, %s)", [subject, rule_ids, content])

    def init_db(self) -> None:
        """Apply the set-up SQL through this DSN (a superuser's or the database owner's)."""
        with self._cursor() as cur:
            cur.execute(postgres_setup_sql())
