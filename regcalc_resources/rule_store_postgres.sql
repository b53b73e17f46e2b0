-- regcalc rule store on PostgreSQL: roles, append-only hash-chained log, SECURITY DEFINER actions.
--
-- Printed by `regcalc rules init-db`, applied by `regcalc rules init-db --apply` as a superuser
-- (or a role with CREATEROLE that owns the database). Safe to apply again: every statement
-- creates what is missing or replaces a function with the same body.
--
-- Who may do what (enforced here, by the database):
--   regcalc_rules_owner  NOLOGIN; owns the schema, the table and the functions. Nobody logs in as it.
--   regcalc_analyst      NOLOGIN group: EXECUTE submit_rules and retire_rule; SELECT the views.
--   regcalc_approver     NOLOGIN group: EXECUTE approve_rule and acknowledge_impact; SELECT the views.
--   regcalc_reader       NOLOGIN group for the pipeline's own login: SELECT the views only.
-- People are LOGIN roles granted one or both groups (GRANT regcalc_analyst TO alice). No group
-- has INSERT, UPDATE or DELETE on the table; the acting user is session_user, the role the
-- connection authenticated as, whatever the caller passes.

DO $roles$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['regcalc_rules_owner', 'regcalc_analyst', 'regcalc_approver', 'regcalc_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
        END IF;
    END LOOP;
END
$roles$;

CREATE SCHEMA IF NOT EXISTS regcalc_rules AUTHORIZATION regcalc_rules_owner;
REVOKE ALL ON SCHEMA regcalc_rules FROM PUBLIC;
GRANT USAGE ON SCHEMA regcalc_rules TO regcalc_analyst, regcalc_approver, regcalc_reader;

SET ROLE regcalc_rules_owner;

CREATE TABLE IF NOT EXISTS regcalc_rules.rule_events (
    seq            BIGINT    PRIMARY KEY,
    rule_id        TEXT      NOT NULL,
    version        INTEGER   NOT NULL,
    action         TEXT      NOT NULL CHECK (action IN ('submit', 'retire', 'approve', 'acknowledge')),
    actor          TEXT      NOT NULL CHECK (actor <> ''),
    actor_verified BOOLEAN   NOT NULL,
    acted_at       TIMESTAMP NOT NULL,
    body           TEXT      NOT NULL,
    prev_hash      TEXT      NOT NULL,
    hash           TEXT      NOT NULL
);
CREATE INDEX IF NOT EXISTS rule_events_rule ON regcalc_rules.rule_events (rule_id, version);
REVOKE ALL ON regcalc_rules.rule_events FROM PUBLIC;

-- append-only even for the owner: an UPDATE, DELETE or TRUNCATE is an error (a superuser can
-- still bypass triggers; the hash chain then shows the edit to `regcalc rules verify`)
CREATE OR REPLACE FUNCTION regcalc_rules.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'regcalc rule store is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS rule_events_append_only ON regcalc_rules.rule_events;
CREATE TRIGGER rule_events_append_only BEFORE UPDATE OR DELETE ON regcalc_rules.rule_events
    FOR EACH ROW EXECUTE FUNCTION regcalc_rules.refuse_change();
DROP TRIGGER IF EXISTS rule_events_no_truncate ON regcalc_rules.rule_events;
CREATE TRIGGER rule_events_no_truncate BEFORE TRUNCATE ON regcalc_rules.rule_events
    FOR EACH STATEMENT EXECUTE FUNCTION regcalc_rules.refuse_change();

CREATE OR REPLACE VIEW regcalc_rules.events AS
    SELECT seq, rule_id, version, action, actor, actor_verified, acted_at, body, prev_hash, hash
    FROM regcalc_rules.rule_events;
REVOKE ALL ON regcalc_rules.events FROM PUBLIC;
GRANT SELECT ON regcalc_rules.events TO regcalc_analyst, regcalc_approver, regcalc_reader;

-- the hash: SHA-256 of the length-prefixed fields (regcalc_core/governance.py computes the same)
CREATE OR REPLACE FUNCTION regcalc_rules.event_hash(prev_hash text, seq bigint, rule_id text, version integer,
        action text, actor text, actor_verified boolean, acted_at timestamp, body text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(
        length(prev_hash) || ':' || prev_hash
        || length(seq::text) || ':' || seq::text
        || length(rule_id) || ':' || rule_id
        || length(version::text) || ':' || version::text
        || length(action) || ':' || action
        || length(actor) || ':' || actor
        || CASE WHEN actor_verified THEN '4:true' ELSE '5:false' END
        || '26:' || to_char(acted_at, 'YYYY-MM-DD"T"HH24:MI:SS.US')
        || length(body) || ':' || body, 'UTF8')), 'hex')
$$;

-- the acting identity: the authenticated role, normalised as the Python side does
CREATE OR REPLACE FUNCTION regcalc_rules.actor() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT lower(btrim(session_user::text))
$$;

-- appends one event after the last one; callers hold the table lock
CREATE OR REPLACE FUNCTION regcalc_rules.append_event(p_rule_id text, p_version integer, p_action text,
        p_body text, p_at timestamp) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_seq  bigint;
    v_prev text;
    v_actor text := regcalc_rules.actor();
BEGIN
    SELECT e.seq + 1, e.hash INTO v_seq, v_prev FROM regcalc_rules.rule_events e ORDER BY e.seq DESC LIMIT 1;
    IF v_seq IS NULL THEN
        v_seq := 1;
        v_prev := repeat('0', 64);
    END IF;
    INSERT INTO regcalc_rules.rule_events
        VALUES (v_seq, p_rule_id, p_version, p_action, v_actor, true, p_at, p_body, v_prev,
                regcalc_rules.event_hash(v_prev, v_seq, p_rule_id, p_version, p_action, v_actor, true, p_at, p_body));
    RETURN v_seq;
END
$$;

-- submit: p_rules is a JSON array of {"rule_id": ..., "body": "<the rule as canonical JSON text>"},
-- validated by the caller; each becomes the next version of its rule. Returns (rule_id, version).
CREATE OR REPLACE FUNCTION regcalc_rules.submit_rules(p_rules jsonb)
    RETURNS TABLE (submitted_rule_id text, submitted_version integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_rule jsonb;
    v_at   timestamp := clock_timestamp() AT TIME ZONE 'UTC';
BEGIN
    LOCK TABLE regcalc_rules.rule_events IN SHARE ROW EXCLUSIVE MODE;
    FOR v_rule IN SELECT * FROM jsonb_array_elements(p_rules) LOOP
        submitted_rule_id := v_rule ->> 'rule_id';
        IF submitted_rule_id IS NULL OR submitted_rule_id !~ '^[A-Za-z0-9_-]+$' THEN
            RAISE EXCEPTION 'rule %: rule_id must be letters, digits, ''_'' and ''-''', submitted_rule_id
                USING ERRCODE = 'data_exception';
        END IF;
        SELECT coalesce(max(e.version), 0) + 1 INTO submitted_version
            FROM regcalc_rules.rule_events e WHERE e.rule_id = submitted_rule_id;
        PERFORM regcalc_rules.append_event(submitted_rule_id, submitted_version, 'submit', v_rule ->> 'body', v_at);
        RETURN NEXT;
    END LOOP;
END
$$;

-- the latest version of a rule: (version, action that made it, its maker, its body, approved?)
CREATE OR REPLACE FUNCTION regcalc_rules.latest_version(p_rule_id text,
        OUT version integer, OUT made_by text, OUT made_as text, OUT body text, OUT approved boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT e.version, e.actor, e.action, e.body,
           EXISTS (SELECT FROM regcalc_rules.rule_events a
                   WHERE a.rule_id = e.rule_id AND a.version = e.version AND a.action = 'approve')
    FROM regcalc_rules.rule_events e
    WHERE e.rule_id = p_rule_id AND e.action IN ('submit', 'retire')
    ORDER BY e.version DESC LIMIT 1
$$;

-- the table locked for this transaction, then the rule's latest version; an unknown rule is an error
CREATE OR REPLACE FUNCTION regcalc_rules.lock_latest_version(p_rule_id text,
        OUT version integer, OUT made_by text, OUT made_as text, OUT body text, OUT approved boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    LOCK TABLE regcalc_rules.rule_events IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO version, made_by, made_as, body, approved FROM regcalc_rules.latest_version(p_rule_id);
    IF version IS NULL THEN
        RAISE EXCEPTION 'rule %: no such rule', p_rule_id USING ERRCODE = 'no_data_found';
    END IF;
END
$$;

-- approve the latest pending version (a submission or a retirement), never by its maker
CREATE OR REPLACE FUNCTION regcalc_rules.approve_rule(p_rule_id text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_latest record;
    v_actor  text := regcalc_rules.actor();
BEGIN
    SELECT * INTO v_latest FROM regcalc_rules.lock_latest_version(p_rule_id);
    IF v_latest.approved THEN
        RAISE EXCEPTION 'rule %: version % is %, not awaiting approval', p_rule_id, v_latest.version,
            CASE WHEN v_latest.made_as = 'retire' THEN 'retired' ELSE 'approved' END
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_latest.made_by = v_actor THEN
        RAISE EXCEPTION 'rule %: % % version % and cannot approve it', p_rule_id, v_actor,
            CASE WHEN v_latest.made_as = 'retire' THEN 'retired' ELSE 'submitted' END, v_latest.version
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM regcalc_rules.append_event(p_rule_id, v_latest.version, 'approve', v_latest.body,
                                       clock_timestamp() AT TIME ZONE 'UTC');
    RETURN v_latest.version;
END
$$;

-- ask to retire a rule: a new version that ends it once another person approves it
CREATE OR REPLACE FUNCTION regcalc_rules.retire_rule(p_rule_id text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_latest record;
BEGIN
    SELECT * INTO v_latest FROM regcalc_rules.lock_latest_version(p_rule_id);
    IF v_latest.made_as = 'retire' THEN
        IF v_latest.approved THEN
            RAISE EXCEPTION 'rule %: already retired', p_rule_id USING ERRCODE = 'insufficient_privilege';
        END IF;
        RAISE EXCEPTION 'rule %: a retirement (version %) already awaits approval', p_rule_id, v_latest.version
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM regcalc_rules.append_event(p_rule_id, v_latest.version + 1, 'retire', v_latest.body,
                                       clock_timestamp() AT TIME ZONE 'UTC');
    RETURN v_latest.version + 1;
END
$$;

-- acknowledge a circuit-breaker impact (subject '<date>/<entity>'), never by a maker of its rules
CREATE OR REPLACE FUNCTION regcalc_rules.acknowledge_impact(p_subject text, p_rule_ids text[], p_body text)
    RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_actor   text := regcalc_rules.actor();
    v_rule    text;
    v_version integer;
BEGIN
    LOCK TABLE regcalc_rules.rule_events IN SHARE ROW EXCLUSIVE MODE;
    IF p_subject !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}/[A-Za-z0-9_.-]+$' THEN
        RAISE EXCEPTION 'acknowledgment subject % is not <date>/<entity>', p_subject USING ERRCODE = 'data_exception';
    END IF;
    SELECT min(e.rule_id) INTO v_rule FROM regcalc_rules.rule_events e
        WHERE e.rule_id = ANY (p_rule_ids) AND e.action IN ('submit', 'retire') AND e.actor = v_actor;
    IF v_rule IS NOT NULL THEN
        RAISE EXCEPTION '% made a version of rule % and cannot acknowledge its impact; another approver must',
            v_actor, v_rule USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT coalesce(max(e.version), 0) + 1 INTO v_version FROM regcalc_rules.rule_events e
        WHERE e.rule_id = p_subject;
    PERFORM regcalc_rules.append_event(p_subject, v_version, 'acknowledge', p_body,
                                       clock_timestamp() AT TIME ZONE 'UTC');
    RETURN v_version;
END
$$;

REVOKE ALL ON FUNCTION regcalc_rules.append_event(text, integer, text, text, timestamp) FROM PUBLIC;
REVOKE ALL ON FUNCTION regcalc_rules.latest_version(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION regcalc_rules.lock_latest_version(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION regcalc_rules.submit_rules(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION regcalc_rules.approve_rule(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION regcalc_rules.retire_rule(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION regcalc_rules.acknowledge_impact(text, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION regcalc_rules.submit_rules(jsonb) TO regcalc_analyst;
GRANT EXECUTE ON FUNCTION regcalc_rules.retire_rule(text) TO regcalc_analyst;
GRANT EXECUTE ON FUNCTION regcalc_rules.approve_rule(text) TO regcalc_approver;
GRANT EXECUTE ON FUNCTION regcalc_rules.acknowledge_impact(text, text[], text) TO regcalc_approver;

RESET ROLE;
