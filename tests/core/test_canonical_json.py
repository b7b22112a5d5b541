"""Canonical JSON: the spec's examples, and byte-identity with `canonicaljson` over generated documents."""

from __future__ import annotations

import json

import canonicaljson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.core.canonical_json import (
    CanonicalJsonError,
    encode_canonical_json,
    encode_canonical_json_lenient,
)

SPEC_EXAMPLES = [
    ("{}", b"{}"),
    ('{"one": 1, "two": "Two"}', b'{"one":1,"two":"Two"}'),
    ('{"b": "2", "a": "1"}', b'{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', b'{"a":"1","b":"2"}'),
    (
        '{"auth": {"success": true, "mxid": "@john.doe:example.com", "profile": {"display_name": "John Doe",'
        ' "three_pids": [{"medium": "email", "address": "john.doe@example.org"},'
        ' {"medium": "msisdn", "address": "123456789"}]}}}',
        b'{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":'
        b'[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},'
        b'"success":true}}',
    ),
    ('{"a": "日本語"}', '{"a":"日本語"}'.encode()),
    ('{"本": 2, "日": 1}', '{"日":1,"本":2}'.encode()),
    ('{"a": "\\u65E5"}', '{"a":"日"}'.encode()),
    ('{"a": null}', b'{"a":null}'),
    ('{"a": -0}', b'{"a":0}'),
]


@pytest.mark.parametrize(("source", "expected"), SPEC_EXAMPLES)
def test_spec_examples(source: str, expected: bytes) -> None:
    assert encode_canonical_json(json.loads(source)) == expected


def test_spec_exponent_example_is_a_float_and_refused() -> None:
    """The spec's `"b": 1e10` parses as a float in Python; canonical JSON allows no floats."""
    with pytest.raises(CanonicalJsonError):
        encode_canonical_json(json.loads('{"b": 1e10}'))
    assert encode_canonical_json({"b": 10000000000}) == b'{"b":10000000000}'


def test_escapes_are_the_shortest() -> None:
    value = {"s": '\x00\x01\x08\t\n\x0b\x0c\r\x1f "\\ / \x7f é \u2028 😀'}
    expected = '{"s":"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \\"\\\\ / \x7f é \u2028 😀"}'.encode()
    assert encode_canonical_json(value) == expected


@pytest.mark.parametrize(
    "value",
    [1.5, {"a": 1.0}, {"a": [1, 2.5]}, {"a": float("nan")}, {"a": float("inf")}, 2**53, {"a": -(2**53)},
     {"a": 2**64}, {1: "non-string key"}, {"a": object()}],
)
def test_refuses_what_canonical_json_forbids(value: object) -> None:
    with pytest.raises(CanonicalJsonError):
        encode_canonical_json(value)


def test_integer_bounds_are_inclusive() -> None:
    assert encode_canonical_json([2**53 - 1, -(2**53) + 1]) == b"[9007199254740991,-9007199254740991]"


def test_lenient_encoding_matches_synapse_for_old_rooms() -> None:
    value = {"depth": 2**60, "x": 1.5}
    assert encode_canonical_json_lenient(value) == canonicaljson.encode_canonical_json(value)


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), _text)
documents = st.recursive(
    _leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(_text, inner, max_size=5)),
    max_leaves=40,
)


@settings(max_examples=1000, deadline=None)
@given(documents)
def test_byte_identical_to_canonicaljson(value: object) -> None:
    assert encode_canonical_json(value) == canonicaljson.encode_canonical_json(value)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_round_trip(value: object) -> None:
    encoded = encode_canonical_json(value)
    assert encode_canonical_json(json.loads(encoded)) == encoded
    assert json.loads(encoded) == value
