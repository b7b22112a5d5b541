"""The X-Matrix header: what we send parses back, and the RFC 9110 forms other servers send parse."""

from __future__ import annotations

import pytest
from signedjson.key import generate_signing_key, get_verify_key

from homeserver.core.signing import verify_json
from homeserver.core.x_matrix import XMatrixError, authorization_header, parse_authorization, request_json


def test_round_trip_verifies() -> None:
    key = generate_signing_key("k1")
    header = authorization_header("PUT", "/_matrix/federation/v1/send/1", "a.example:8448", "b.example", key,
                                  {"pdus": []})
    auth = parse_authorization(header)
    assert (auth.origin, auth.destination, auth.key) == ("a.example:8448", "b.example", "ed25519:k1")
    signed = request_json("PUT", "/_matrix/federation/v1/send/1", auth.origin, "b.example", {"pdus": []})
    signed["signatures"] = {auth.origin: {auth.key: auth.sig}}
    verify_json(signed, auth.origin, auth.key, get_verify_key(key))


@pytest.mark.parametrize("header, expected", [
    ('X-Matrix origin="o.example",destination="d.example",key="ed25519:1",sig="c2ln"',
     ("o.example", "d.example", "ed25519:1", "c2ln")),
    ("X-Matrix origin=o.example:8448,key=ed25519:1,sig=c2ln", ("o.example:8448", None, "ed25519:1", "c2ln")),
    ('x-matrix  ORIGIN="o" , Key="ed25519:1",\tsig="a\\"b" ', ("o", None, "ed25519:1", 'a"b')),
])
def test_parses_rfc_forms(header: str, expected: tuple) -> None:
    auth = parse_authorization(header)
    assert (auth.origin, auth.destination, auth.key, auth.sig) == expected


@pytest.mark.parametrize("header", [
    "Bearer abc", 'X-Matrix origin="o",key="ed25519:1"', 'X-Matrix origin="o" key="k" sig="s"', "X-Matrix",
    'X-Matrix origin="unterminated,key="k",sig="s"',
])
def test_refuses_malformed(header: str) -> None:
    with pytest.raises(XMatrixError):
        parse_authorization(header)
