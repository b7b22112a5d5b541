"""Receiving a PDU: format, signatures of every required server, content hash."""

from __future__ import annotations

import pytest
from signedjson.key import generate_signing_key, get_verify_key

from homeserver.core.event_format import FormatError
from homeserver.core.hashes import sign_event
from homeserver.core.pdu_checks import check_remote_pdu
from homeserver.core.room_versions import ROOM_VERSIONS
from homeserver.core.signing import SignatureError, sign_json
from tests.core.rooms import ALICE, KEY, Room

KEYS = {("example.org", "ed25519:1"): get_verify_key(KEY)}


def lookup(server: str, key_id: str):  # noqa: ANN201
    return KEYS.get((server, key_id))


@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_good_pdu(version: str) -> None:
    room = Room(ROOM_VERSIONS[version]).standard_setup()
    for event in room.events:
        checked = check_remote_pdu(event.pdu, event.room_version, lookup)
        assert checked.content_hash_ok
        assert checked.event.event_id == event.event_id
        assert checked.event.pdu is event.pdu


@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_tampered_content_keeps_the_redacted_form(version: str) -> None:
    room = Room(ROOM_VERSIONS[version]).standard_setup()
    message = room.add("m.room.message", ALICE, {"body": "original"})
    tampered = {**message.pdu, "content": {"body": "forged"}}
    checked = check_remote_pdu(tampered, message.room_version, lookup)
    assert not checked.content_hash_ok
    assert checked.event.content == {}
    assert checked.event.event_id == message.event_id


@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_bad_or_missing_signatures(version: str) -> None:
    v = ROOM_VERSIONS[version]
    room = Room(v).standard_setup()
    message = room.add("m.room.message", ALICE, {"body": "x"})
    with pytest.raises(SignatureError, match="does not verify"):
        check_remote_pdu({**message.pdu, "depth": message.depth + 1}, v, lookup)
    with pytest.raises(SignatureError, match="not signed by example.org"):
        check_remote_pdu({**message.pdu, "signatures": {}}, v, lookup)
    stranger = generate_signing_key("a_1")
    forged = sign_event({k: x for k, x in message.pdu.items() if k != "signatures"}, v, "example.org", stranger)
    with pytest.raises(SignatureError, match="no known key"):
        check_remote_pdu(forged, v, lookup)
    with pytest.raises(FormatError):
        check_remote_pdu({**message.pdu, "depth": "deep"}, v, lookup)


def test_restricted_join_needs_the_authorising_server() -> None:
    v = ROOM_VERSIONS["10"]
    room = Room(v).standard_setup(join_rule="restricted")
    join = room.event("m.room.member", "@bob:example.org",
                      {"membership": "join", "join_authorised_via_users_server": "@carol:other.org"},
                      "@bob:example.org")
    with pytest.raises(SignatureError, match="not signed by other.org"):
        check_remote_pdu(join.pdu, v, lookup)
    other_key = generate_signing_key("o")
    KEYS[("other.org", "ed25519:o")] = get_verify_key(other_key)
    try:
        from homeserver.core.redaction import redact

        extra = sign_json(redact(join.pdu, v), "other.org", other_key)["signatures"]["other.org"]
        cosigned = {**join.pdu, "signatures": {**join.pdu["signatures"], "other.org": extra}}
        assert check_remote_pdu(cosigned, v, lookup).content_hash_ok
    finally:
        del KEYS[("other.org", "ed25519:o")]
