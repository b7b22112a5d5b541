"""PDU format checks per room version."""

from __future__ import annotations

import pytest

from homeserver.core.event_format import FormatError, check_pdu_format, is_valid_event_id, is_valid_room_id
from homeserver.core.events import Event
from homeserver.core.room_versions import ROOM_VERSIONS
from tests.core.rooms import ALICE, Room


def good_pdu(version: str) -> dict:
    room = Room(ROOM_VERSIONS[version]).standard_setup()
    return dict(room.add("m.room.message", ALICE, {"body": "x"}).pdu)


@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_a_built_event_passes(version: str) -> None:
    room = Room(ROOM_VERSIONS[version]).standard_setup()
    for event in room.events:
        encoded = check_pdu_format(event.pdu, event.room_version)
        assert encoded == event.raw


BAD = {
    "missing type": lambda p: p.pop("type"),
    "type not a string": lambda p: p.update(type=5),
    "sender not a user id": lambda p: p.update(sender="alice"),
    "missing room_id": lambda p: p.pop("room_id"),
    "room_id wrong grammar": lambda p: p.update(room_id="room"),
    "content not an object": lambda p: p.update(content=[]),
    "depth negative": lambda p: p.update(depth=-1),
    "depth too big": lambda p: p.update(depth=2**63),
    "depth a bool": lambda p: p.update(depth=True),
    "depth a string": lambda p: p.update(depth="1"),
    "no hashes": lambda p: p.pop("hashes"),
    "hash not a string": lambda p: p.update(hashes={"sha256": 1}),
    "signatures malformed": lambda p: p.update(signatures={"x": "y"}),
    "unsigned not an object": lambda p: p.update(unsigned=[]),
    "origin_server_ts a string": lambda p: p.update(origin_server_ts="1"),
    "too many prev_events": lambda p: p.update(prev_events=p["prev_events"] * 21),
    "too many auth_events": lambda p: p.update(auth_events=(p["auth_events"] * 11)[:11]),
    "auth_events not a list": lambda p: p.update(auth_events={}),
    "bad event id reference": lambda p: p.update(prev_events=[["nope", {}]] if isinstance(p["prev_events"][0], list) else ["nope"]),
    "state_key not a string": lambda p: p.update(state_key=1),
    "type too long": lambda p: p.update(type="t" * 256),
    "state_key too long": lambda p: p.update(state_key="s" * 256),
    "too large": lambda p: p["content"].update(body="x" * 65536),
}


@pytest.mark.parametrize("why", sorted(BAD))
@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_malformed_pdus_are_refused(version: str, why: str) -> None:
    pdu = good_pdu(version)
    pdu["content"] = dict(pdu["content"])
    BAD[why](pdu)
    with pytest.raises(FormatError):
        check_pdu_format(pdu, ROOM_VERSIONS[version])


@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_floats_and_big_integers_only_from_v6(version: str) -> None:
    v = ROOM_VERSIONS[version]
    for content in ({"n": 1.5}, {"n": 2**53}):
        pdu = {**good_pdu(version), "content": content}
        if v.strict_canonical_json:
            with pytest.raises(FormatError, match="canonical JSON"):
                check_pdu_format(pdu, v)
        else:
            check_pdu_format(pdu, v)


@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_multibyte_state_key_limit_counts_bytes_from_v11(version: str) -> None:
    v = ROOM_VERSIONS[version]
    pdu = {**good_pdu(version), "state_key": "é" * 200}
    if v.strict_event_byte_limits:
        with pytest.raises(FormatError):
            check_pdu_format(pdu, v)
    else:
        check_pdu_format(pdu, v)


def test_v12_create_event_needs_no_room_id_and_others_need_a_hashed_one() -> None:
    v12 = ROOM_VERSIONS["12"]
    room = Room(v12)
    check_pdu_format(room.create.pdu, v12)
    message = good_pdu("12")
    with pytest.raises(FormatError):
        check_pdu_format({**message, "room_id": "!room:example.org"}, v12)


def test_id_grammars() -> None:
    v1, v3, v4 = ROOM_VERSIONS["1"], ROOM_VERSIONS["3"], ROOM_VERSIONS["4"]
    assert is_valid_event_id("$abc:example.org", v1)
    assert not is_valid_event_id("$abc", v1)
    assert is_valid_event_id("$" + "A+/" * 14 + "a", v3)
    assert not is_valid_event_id("$" + "A+/" * 14 + "a", v4)
    assert is_valid_event_id("$" + "A-_" * 14 + "a", v4)
    assert not is_valid_event_id("$" + "A" * 42, v4)
    assert is_valid_room_id("!r:example.org:8448", v4)
    assert not is_valid_room_id("!r", v4)
    assert not is_valid_room_id("!" + "A" * 43, v4)
    assert is_valid_room_id("!" + "A" * 43, ROOM_VERSIONS["12"])


def test_events_keep_their_bytes() -> None:
    room = Room(ROOM_VERSIONS["11"]).standard_setup()
    original = room.events[-1]
    raw = b' {"note": "the original bytes are served as received"} '.strip()
    from_bytes = Event.from_json(original.raw, original.room_version)
    assert from_bytes.raw is not None and from_bytes.event_id == original.event_id
    assert from_bytes.prev_event_ids == original.prev_event_ids
    assert from_bytes.state_tuple == ("m.room.join_rules", "")
    event = Event.from_json(raw, original.room_version)
    assert event.raw is raw
    with pytest.raises(ValueError):
        Event.from_json(b"[1]", original.room_version)
