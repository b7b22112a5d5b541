"""Canonical JSON (appendices: Canonical JSON), on every hashing and signing path.

orjson with sorted keys and its 53-bit integer limit produces exactly the
bytes the spec defines (and the `canonicaljson` package produces): sorted
keys, no insignificant whitespace, UTF-8 without needless escapes, the short
escapes for control characters. `tests/core/test_canonical_json.py` proves
that byte for byte against `canonicaljson` over generated documents.

orjson accepts floats, which canonical JSON forbids, so the value is walked
for them (exact type checks first: a 1 KB event takes a few microseconds).
Room versions 1-5 did not enforce these rules, so events of those rooms are
encoded leniently, exactly as Synapse encodes them.
"""

from __future__ import annotations

from typing import Any

import canonicaljson
import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


class CanonicalJsonError(ValueError):
    """The value cannot be encoded as canonical JSON (a float, a big integer, a non-string key...)."""


def _contains_float(value: Any) -> bool:
    """Iterative walk: exact type checks for plain JSON types, isinstance only for the rest."""
    kind = type(value)
    if kind is dict:
        stack: list[Any] = [value.values()]
    elif kind is list or kind is tuple:
        stack = [value]
    else:
        return _unusual_contains_float(value)
    pop, push = stack.pop, stack.append
    while stack:
        for item in pop():
            kind = type(item)
            if kind is str or kind is int or kind is bool or item is None:
                continue
            if kind is dict:
                push(item.values())
            elif kind is list or kind is tuple:
                push(item)
            elif _unusual_contains_float(item):
                return True
    return False


def _unusual_contains_float(value: Any) -> bool:
    """Floats, and containers that subclass dict, list or tuple."""
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return _contains_float(dict(value))
    if isinstance(value, (list, tuple)):
        return _contains_float(list(value))
    return False


def encode_canonical_json(value: Any) -> bytes:
    """Strict canonical JSON: raises `CanonicalJsonError` for floats and integers beyond ±(2^53-1)."""
    try:
        out = orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise CanonicalJsonError(str(exc)) from None
    if _contains_float(value):
        raise CanonicalJsonError("floats are not allowed in canonical JSON")
    return out


def encode_canonical_json_prechecked(value: Any) -> bytes:
    """For values already encoded once with `encode_canonical_json` (so known float-free)."""
    return orjson.dumps(value, option=_OPTIONS)


def encode_canonical_json_lenient(value: Any) -> bytes:
    """Canonical JSON as room versions 1-5 need it: floats and big integers kept, as Synapse does."""
    try:
        return encode_canonical_json(value)
    except CanonicalJsonError:
        return canonicaljson.encode_canonical_json(value)
