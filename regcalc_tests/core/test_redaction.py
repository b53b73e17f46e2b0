"""The one redaction of secrets (regcalc_core.redaction): which values are secrets, well-formed
DSNs or not, what a redacted text, error and log line look like."""

from __future__ import annotations

import io
import logging

import pytest

from regcalc_core.redaction import (
    MASK,
    RedactedError,
    RedactingFormatter,
    contains_secret,
    dsn_secrets,
    environment_secrets,
    is_secret_name,
    redact,
    redacted_exception,
    secret_safe,
    secret_safe_call,
)


@pytest.mark.parametrize(("dsn", "secrets"), [
    ("postgresql://app:Pg-Pass-1@db.internal:5432/risk?sslmode=require", {"Pg-Pass-1"}),
    ("postgresq://user:SECRETPASS@127.0.0.1:1/db", {"SECRETPASS"}),          # misspelled scheme
    ("postgresql:/user:OneSlash9@db/x", {"OneSlash9", "/user:OneSlash9"}),  # a slash missing
    ("postgresql:user:NoSlash42@db/x", {"NoSlash42", "user:NoSlash42"}),
    ("postgresql://u:p%40ss%ZZword@h/db", {"p%40ss%ZZword", "p@ss%ZZword"}),  # raw and decoded
    ("redshift://u:Pa@ss:w0rd@h:5439/d", {"Pa", "Pa@ss:w0rd", "w0rd"}),    # an unescaped '@' and ':'
    ("host=h port=5432 user=u password='se cr\\'et' dbname=d", {"'se cr\\'et'", "se cr'et"}),
    ("postgresql://h/db?sslmode=require&password=QueryPw7", {"QueryPw7"}),
    ("BareSecretWord", {"BareSecretWord"}),                                 # no structure: all of it
    ("postgresql:///risk", set()),                                          # no password at all
    ("postgresql://postgres:@/postgres?host=/tmp/pg", set()),
])
def test_the_secrets_of_a_dsn_well_formed_or_not(dsn, secrets):
    assert dsn_secrets(dsn) == secrets


def test_secret_variables_by_name():
    secret = ["REGCALC_WAREHOUSE_DSN", "REGCALC_RULES_DSN", "REGCALC_REDSHIFT_DSN", "AWS_SECRET_ACCESS_KEY",
              "AWS_SESSION_TOKEN", "OPENLINEAGE_API_KEY", "REGCALC_DBT_PASSWORD", "PGPASSWORD"]
    plain = ["REGCALC_HOME", "AWS_ACCESS_KEY_ID", "AWS_REGION", "REGCALC_REDSHIFT_IAM_ROLE", "PATH"]
    assert [n for n in secret if not is_secret_name(n)] == []
    assert [n for n in plain if is_secret_name(n)] == []


def test_environment_secrets_longest_first_and_short_values_left_to_the_patterns():
    env = {"REGCALC_WAREHOUSE_DSN": "postgresql://u:WhPass12@h/db", "AWS_SECRET_ACCESS_KEY": "AwsKeyValue/0123456789",
           "AWS_SESSION_TOKEN": "tok", "OPENLINEAGE_URL": "https://lineage:UrlPw999@marquez.internal/api",
           "REGCALC_HOME": "/home/secret-looking-path", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}
    assert environment_secrets(env) == ("AwsKeyValue/0123456789", "UrlPw999", "WhPass12")


def test_redact_masks_environment_secrets_and_secret_shapes():
    env = {"REGCALC_WAREHOUSE_DSN": "postgresq://user:SECRETPASS@127.0.0.1:1/db", "AWS_SECRET_ACCESS_KEY": "AKSECRET0123"}
    text = ('missing "=" after "postgresq://user:SECRETPASS@127.0.0.1:1/db" in connection info string; '
            'signing with AKSECRET0123 failed')
    assert redact(text, env) == (f'missing "=" after "postgresq://user:{MASK}@127.0.0.1:1/db" in connection info '
                                 f'string; signing with {MASK} failed')
    shapes = ('Authorization: Bearer abc.def password=hunter2 {"api_key": "k 1"} X-Amz-Security-Token=FQoG '
              'AWS_SECRET_ACCESS_KEY=zz https://bob:pw@host/x')
    assert redact(shapes, {}) == (f'Authorization: Bearer {MASK} password={MASK} {{"api_key": "{MASK}"}} '
                                  f'X-Amz-Security-Token={MASK} AWS_SECRET_ACCESS_KEY={MASK} https://bob:{MASK}@host/x')
    harmless = 'password authentication failed for user "bob" at db.internal:5432'
    assert redact(harmless, {}) == harmless
    assert redact(redact(text, env), env) == redact(text, env)  # idempotent


def test_an_error_with_a_secret_is_rebuilt_without_its_chain(monkeypatch):
    monkeypatch.setenv("REGCALC_RULES_DSN", "postgresql://u:ChainedPw77@h/db")

    def failing():
        try:
            raise KeyError("lookup of ChainedPw77")
        except KeyError as inner:
            raise ValueError("bad DSN postgresql://u:ChainedPw77@h/db") from inner

    with pytest.raises(ValueError) as caught:
        secret_safe_call(failing)
    error = caught.value
    assert "ChainedPw77" not in str(error) and MASK in str(error)
    assert "caused by KeyError" in str(error)
    assert error.__cause__ is None and error.__context__ is None and error.__suppress_context__
    assert error.__traceback__ is not None  # where it failed is kept (file, line, code: no values)

    clean = ValueError("no secret here")
    assert redacted_exception(clean) is clean


def test_an_error_type_that_takes_other_arguments_becomes_a_redacted_error(monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "SessionTok3n")

    class Picky(Exception):
        def __init__(self, code, text):
            super().__init__(f"{code}: {text}")

    @secret_safe
    def failing():
        raise Picky(7, "token SessionTok3n expired")

    with pytest.raises(RedactedError, match=r"^Picky: 7: token \*\*\* expired$"):
        failing()


def test_the_redacting_formatter_masks_message_arguments_and_trace(monkeypatch):
    monkeypatch.setenv("REGCALC_REDSHIFT_DSN", "redshift://loader:RsPass55@cluster:5439/dev")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(logging.Formatter("%(levelname)s %(message)s")))
    log = logging.Logger("redaction-test")
    log.addHandler(handler)
    try:
        raise RuntimeError("connect to redshift://loader:RsPass55@cluster failed")
    except RuntimeError:
        log.error("load failed with %s", "RsPass55", exc_info=True)
    assert "RsPass55" not in stream.getvalue()
    assert stream.getvalue().startswith(f"ERROR load failed with {MASK}\nTraceback")


def test_contains_secret_is_narrower_than_redact():
    env = {"AWS_SECRET_ACCESS_KEY": "AwsKeyValue/0123456789"}
    lineage_like = '{"fields": {"token_count": {"inputFields": []}}, "name": "liquidity_metrics"}'
    assert redact(lineage_like, env) != lineage_like and not contains_secret(lineage_like, env)
    assert contains_secret('{"name": "AwsKeyValue/0123456789"}', env)
    assert contains_secret("jdbc:postgresql://u:pw@h/db", {})
