"""Signing JSON: the spec's test vectors, interoperability with signedjson, tamper detection."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from signedjson.key import decode_signing_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json as signedjson_sign
from signedjson.sign import verify_signed_json

from homeserver.core.hashes import sign_event, verify_event_signature
from homeserver.core.room_versions import ROOM_VERSIONS, V1
from homeserver.core.signing import SignatureError, ed25519_key_ids, sign_json, verify_json

KEY = decode_signing_key_base64("ed25519", "1", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
VERIFY = get_verify_key(KEY)


def test_spec_vector_empty_object() -> None:
    assert sign_json({}, "domain", KEY) == {
        "signatures": {"domain": {"ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"}}
    }


def test_spec_vector_object_with_data() -> None:
    assert sign_json({"one": 1, "two": "Two"}, "domain", KEY) == {
        "one": 1,
        "two": "Two",
        "signatures": {"domain": {"ed25519:1": "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},
    }


def test_spec_vector_minimal_event() -> None:
    event = {
        "room_id": "!x:domain", "sender": "@a:domain", "origin": "domain", "origin_server_ts": 1000000,
        "signatures": {}, "hashes": {}, "type": "X", "content": {}, "prev_events": [], "auth_events": [],
        "depth": 3, "unsigned": {"age_ts": 1000000},
    }
    signed = sign_event(event, V1, "domain", KEY)
    assert signed["hashes"] == {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"}
    assert signed["signatures"] == {"domain": {"ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}}
    assert signed["unsigned"] == {"age_ts": 1000000}
    verify_event_signature(signed, V1, "domain", "ed25519:1", VERIFY)


def test_spec_vector_event_with_redactable_content() -> None:
    event = {
        "content": {"body": "Here is the message content"}, "event_id": "$0:domain", "origin": "domain",
        "origin_server_ts": 1000000, "type": "m.room.message", "room_id": "!r:domain", "sender": "@u:domain",
        "signatures": {}, "unsigned": {"age_ts": 1000000},
    }
    signed = sign_event(event, V1, "domain", KEY)
    assert signed["hashes"] == {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"}
    assert signed["signatures"] == {"domain": {"ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"}}
    # The signature covers the redacted form: changing the body keeps it valid.
    verify_event_signature({**signed, "content": {"body": "changed"}}, V1, "domain", "ed25519:1", VERIFY)


def test_interoperates_with_signedjson_both_ways() -> None:
    doc = {"a": [1, 2], "b": {"c": "é"}, "unsigned": {"x": 1}}
    ours = sign_json(doc, "example.org", KEY)
    verify_signed_json(copy.deepcopy(ours), "example.org", VERIFY)
    theirs = signedjson_sign(copy.deepcopy(doc), "example.org", KEY)
    verify_json(theirs, "example.org", "ed25519:1", VERIFY)
    assert ours["signatures"] == theirs["signatures"]


def test_multiple_signatures_and_unsigned_ignored() -> None:
    other = generate_signing_key("a_xyz")
    doc = sign_json(sign_json({"x": 1}, "one.org", KEY), "two.org", other)
    assert set(doc["signatures"]) == {"one.org", "two.org"}
    doc["unsigned"] = {"added": "later"}
    verify_json(doc, "one.org", "ed25519:1", VERIFY)
    verify_json(doc, "two.org", "ed25519:a_xyz", get_verify_key(other))
    assert ed25519_key_ids(doc, "two.org") == ["ed25519:a_xyz"]
    assert ed25519_key_ids(doc, "three.org") == []


@pytest.mark.parametrize(
    "doc",
    [
        {"x": 1},
        {"x": 1, "signatures": {}},
        {"x": 1, "signatures": {"example.org": {}}},
        {"x": 1, "signatures": {"example.org": {"ed25519:1": "not base64!"}}},
        {"x": 1, "signatures": {"example.org": {"ed25519:1": "AAAA"}}},
        {"x": 1, "signatures": "nope"},
    ],
)
def test_missing_or_bad_signatures(doc: dict) -> None:
    with pytest.raises(SignatureError):
        verify_json(doc, "example.org", "ed25519:1", VERIFY)


_values = st.one_of(st.integers(-1000, 1000), st.text(max_size=5), st.booleans(), st.none())


@settings(max_examples=200, deadline=None)
@given(doc=st.dictionaries(st.text(min_size=1, max_size=5), _values, min_size=1, max_size=6), data=st.data())
def test_any_change_of_a_signed_field_invalidates(doc: dict, data: st.DataObject) -> None:
    doc = {k: v for k, v in doc.items() if k not in ("signatures", "unsigned")}
    if not doc:
        return
    signed = sign_json(doc, "example.org", KEY)
    key = data.draw(st.sampled_from(sorted(doc)))
    new_value = data.draw(_values.filter(lambda v: v != doc[key] or type(v) is not type(doc[key])))
    tampered = {**signed, key: new_value}
    with pytest.raises(SignatureError):
        verify_json(tampered, "example.org", "ed25519:1", VERIFY)


@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_event_signature_per_version(version: str) -> None:
    v = ROOM_VERSIONS[version]
    pdu = {
        "type": "m.room.message", "sender": "@a:example.org", "room_id": "!r:example.org",
        "content": {"body": "x"}, "depth": 1, "origin_server_ts": 5, "prev_events": [], "auth_events": [],
    }
    if version in ("1", "2"):
        pdu["event_id"] = "$e:example.org"
    signed = sign_event(pdu, v, "example.org", KEY)
    verify_event_signature(signed, v, "example.org", "ed25519:1", VERIFY)
    with pytest.raises(SignatureError):
        verify_event_signature({**signed, "depth": 2}, v, "example.org", "ed25519:1", VERIFY)
