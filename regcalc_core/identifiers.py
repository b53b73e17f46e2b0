"""Identifiers that become paths, partition keys or SQL names, and how storage encodes keys.

Rules (README, "Identifiers"): an ``entity_id`` is 1 to 64 characters of ASCII letters, digits,
``_``, ``-`` and ``.``, starting with a letter or a digit. Anything else (a space, ``,``, ``/``,
``\\``, ``|``, ``..``, a control character, a non-ASCII letter, a longer id) is refused before it
is registered as a partition; that entity's positions are quarantined for the date with
``entity_id:invalid_identifier``.

Storage never relies on an engine's own escaping of partition values: ``encode_key`` maps any
key to a directory name of ``[A-Za-z0-9_-]`` and ``%XX`` escapes only, and ``decode_key``
reverses it exactly.
"""

from __future__ import annotations

import re

from regcalc_core.errors import InvalidIdentifierError

MAX_IDENTIFIER_LENGTH = 64
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
INVALID_IDENTIFIER = "invalid_identifier"  # the quarantine reason: entity_id:invalid_identifier

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def is_valid_identifier(value) -> bool:
    return isinstance(value, str) and bool(_IDENTIFIER.fullmatch(value)) and ".." not in value


def describe(value) -> str:
    """A short, printable rendering of a possibly hostile value (for one-line messages)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}...' ({len(value)} characters)"


def check_identifier(value, what: str = "entity_id") -> str:
    """``value`` if it is a valid identifier, else an InvalidIdentifierError naming it."""
    if not is_valid_identifier(value):
        raise InvalidIdentifierError(
            f"{what} {describe(value)} is not a valid identifier: 1 to {MAX_IDENTIFIER_LENGTH} characters of "
            f"A-Z a-z 0-9 _ - . starting with a letter or digit, no '..'")
    return value


def encode_key(value: str) -> str:
    """A directory name for a partition key: every byte outside ``[A-Za-z0-9_-]`` as ``%XX``
    (UTF-8), so the name never contains ``/``, ``.``, ``..`` or a control character."""
    return "".join(ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in value)


def decode_key(name: str) -> str:
    """The key ``encode_key`` turned into ``name``."""
    out, i = bytearray(), 0
    while i < len(name):
        if name[i] == "%":
            out.append(int(name[i + 1:i + 3], 16))
            i += 3
        else:
            out += name[i].encode("ascii")
            i += 1
    return out.decode("utf-8")
