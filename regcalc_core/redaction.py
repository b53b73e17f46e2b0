"""Secrets kept out of every message: the one redaction that errors, logs, the command line and
the lineage events go through.

What counts as a secret is read from the environment at the moment of redaction (never at import):

* the password of every ``REGCALC_*_DSN`` (and of any other variable holding a URL with a
  password), well-formed or not: a libpq / ``redshift://`` URL's user-info password (raw and
  percent-decoded; a password containing an unescaped ``@`` or ``:`` included), a ``password=``
  / ``pwd=`` key of a ``key=value`` string or of a URL's query; a DSN variable with neither (a
  malformed one, e.g. a bare word) is a secret as a whole;
* the whole value of every variable whose name says it is one (``AWS_SECRET_ACCESS_KEY``,
  ``AWS_SESSION_TOKEN``, ``OPENLINEAGE_API_KEY``, ``REGCALC_DBT_PASSWORD``, ``PGPASSWORD``: any
  name with PASSWORD, PASSWD, SECRET, TOKEN, API_KEY, CREDENTIAL or PRIVATE_KEY in it).

``redact`` replaces each such value (the ones of at least ``MIN_LITERAL`` characters: a shorter
one would match ordinary words) with ``MASK``, then masks what has the shape of a secret whatever
its value: the password of a URL's user info, and the value after ``password=``, ``token:``,
``api_key=``, ``Authorization: Bearer`` and the like.

``secret_safe`` wraps a function that can fail with a secret in its error (a connection from a
DSN): the error is re-raised with its message redacted and without the chained errors that held
the secret. ``redacted_exception`` is the same for an error already caught. ``RedactingFormatter``
masks whatever a log handler writes (the Dagster console logger of ``regcalc_assets.loggers``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import unquote

MASK = "***"
MIN_LITERAL = 4
"""Secret values shorter than this are masked only where they have the shape of a secret."""

_SECRET_NAME = re.compile(r"^REGCALC_\w*_DSN$|PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|CREDENTIAL|PRIVATE_KEY",
                          re.IGNORECASE)
_DSN_NAME = re.compile(r"_DSN$|_URL$|_URI$", re.IGNORECASE)
_URL_WITH_USERINFO = re.compile(r"://[^\s/]*@")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_KEY_VALUE_PASSWORD = re.compile(
    r"(?i)(?:^|[\s?&;])(?:password|passwd|pwd)\s*=\s*('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;]+)")

# shapes of a secret, whatever its value
_PATTERNS = (
    # scheme://user:PASSWORD@ (the scheme may be misspelled, the slashes missing)
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*:/*[^\s/@:'\"]*:)([^\s@'\"]+)(@)"), rf"\g<1>{MASK}\g<3>"),
    # Authorization: Bearer VALUE
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token)?\s*)([^\s\"',}]+)"),
     rf"\g<1>{MASK}"),
    # password=VALUE, "api_key": "VALUE", X-Amz-Security-Token=VALUE, AWS_SECRET_ACCESS_KEY=VALUE ...
    (re.compile(r"(?i)([\w.-]*(?:password|passwd|\bpwd|secret|token|api_?key|apikey)[\w.-]*[\"']?\s*[=:]\s*)"
                r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\")}]+)"),
     lambda m: m.group(1) + (m.group(2)[0] + MASK + m.group(2)[0] if m.group(2)[:1] in "'\"" else MASK)),
)

T = TypeVar("T")


def is_secret_name(name: str) -> bool:
    """Whether an environment variable holds a secret (a DSN, a password, a key, a token)."""
    return bool(_SECRET_NAME.search(name))


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def dsn_secrets(dsn: str) -> set[str]:
    """The secret parts of a connection string, well-formed or not: every candidate password (raw
    and percent-decoded); the whole string when it has no recognizable structure (neither an
    ``@`` nor a ``key=value``), since a malformed DSN may then be a bare secret."""
    text = dsn.strip()
    found: set[str] = set()
    for match in _KEY_VALUE_PASSWORD.finditer(text):
        found |= {match.group(1), _unquoted(match.group(1))}
    for at in (i for i, c in enumerate(text) if c == "@"):  # each '@' may end the user info
        head = text[:at]
        head = head.rsplit("//", 1)[1] if "//" in head else head
        head = head.split()[-1] if head.split() else ""
        if ":" in head:
            found |= {head.split(":", 1)[1], head.rsplit(":", 1)[1]}
            if "//" not in text[:at] and _SCHEME.match(head):  # scheme:user:password@ (slashes missing)
                found.add(_SCHEME.sub("", head, count=1).partition(":")[2])
    if not found and "@" not in text and "=" not in text and "://" not in text:
        found.add(text)
    found |= {unquote(s) for s in found}
    return {s for s in found if s}


def environment_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every secret value of the environment (``os.environ`` unless given), longest first, as
    ``redact`` replaces them."""
    env = os.environ if environ is None else environ
    relevant = tuple(sorted((k, v) for k, v in env.items()
                            if v and (is_secret_name(k) or ("@" in v and _URL_WITH_USERINFO.search(v)))))
    return _secrets_of(relevant)


@functools.lru_cache(maxsize=16)
def _secrets_of(items: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    found: set[str] = set()
    for name, value in items:
        if _DSN_NAME.search(name) or "://" in value or not is_secret_name(name):
            found |= dsn_secrets(value)
        else:
            found.add(value.strip())
    return tuple(sorted((s for s in found if len(s) >= MIN_LITERAL), key=lambda s: (-len(s), s)))


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret of the environment, and everything shaped like a secret,
    replaced by ``MASK``."""
    if not text:
        return text
    for secret in environment_secrets(environ):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def contains_secret(text: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``text`` holds a secret of the environment or a URL with a password. Narrower than
    ``redact`` (which also masks ``token: x`` and the like): for structured text such as an
    OpenLineage event, whose keys and names may contain such words without holding a secret."""
    if any(secret in text for secret in environment_secrets(environ)):
        return True
    pattern, replacement = _PATTERNS[0]  # scheme://user:PASSWORD@
    return pattern.sub(replacement, text) != text


def _chain(exc: BaseException) -> list[BaseException]:
    """The error and the ones chained to it (cause, or context unless suppressed), outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and not any(current is s for s in seen):
        seen.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return seen


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - an error whose str() fails has no message to leak
        return ""


class RedactedError(RuntimeError):
    """An error whose message held a secret and whose type cannot be rebuilt from a message: the
    message names the original type."""


def redacted_exception(exc: BaseException, environ: Mapping[str, str] | None = None) -> BaseException:
    """``exc`` itself when neither its message nor a chained error's holds a secret; otherwise a
    new error of the same type (else a ``RedactedError``) with the redacted messages of the chain
    and no chained errors, carrying the original traceback (file, line and code: no values)."""
    chain = _chain(exc)
    messages = [_message(e) for e in chain]
    redacted = [redact(m, environ) for m in messages]
    if redacted == messages:
        return exc
    text = redacted[0] or type(exc).__name__
    causes = [f"{type(e).__name__}: {m}" for e, m in zip(chain[1:], redacted[1:]) if m]
    if causes:
        text += " (caused by " + "; ".join(causes) + ")"
    try:
        clean = type(exc)(text)
        if _message(clean) != text:
            raise TypeError("the message is not the error's text")
    except Exception:  # noqa: BLE001 - a type that takes other arguments
        clean = RedactedError(f"{type(exc).__name__}: {text}")
    clean.__cause__, clean.__context__, clean.__suppress_context__ = None, None, True
    return clean.with_traceback(exc.__traceback__)


def secret_safe_call(fn: Callable[..., T], args: tuple = (), kwargs: Mapping | None = None,
                     environ: Mapping[str, str] | None = None) -> T:
    """``fn(*args, **kwargs)``, whose error never carries a secret of ``environ`` (default
    ``os.environ``; pass it with the DSN in hand when that is not from the environment): the
    ``redacted_exception`` is raised outside the handler, so no context chains back to the
    original error."""
    try:
        return fn(*args, **(kwargs or {}))
    except Exception as exc:  # noqa: BLE001 - re-raised, redacted
        failure = redacted_exception(exc, environ)
        if failure is exc:
            raise
    raise failure


def secret_safe(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` whose errors never carry a secret of the environment (``secret_safe_call``)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return secret_safe_call(fn, args, kwargs)

    return wrapper


class RedactingFormatter(logging.Formatter):
    """A formatter whose every line (message, arguments, traceback) has its secrets masked;
    ``inner`` (default: the standard formatter) formats the record first."""

    def __init__(self, inner: logging.Formatter | None = None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))
