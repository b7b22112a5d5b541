"""Content hashes, reference hashes, event ids per room version, v12 room ids."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unpaddedbase64 import encode_base64

from homeserver.core.canonical_json import encode_canonical_json
from homeserver.core.events import Event
from homeserver.core.hashes import (
    add_content_hash,
    check_content_hash,
    compute_event_id,
    content_hash,
    reference_hash,
    room_id_from_create_event_id,
)
from homeserver.core.room_versions import ROOM_VERSIONS, V3, V4, V10, V12
from tests.core.rooms import Room

BASE = {
    "type": "m.room.message", "sender": "@a:example.org", "room_id": "!r:example.org",
    "content": {"body": "hello"}, "depth": 4, "origin_server_ts": 77, "prev_events": [], "auth_events": [],
    "hashes": {"sha256": "ignored"}, "signatures": {"example.org": {"ed25519:1": "sig"}},
    "unsigned": {"age_ts": 1},
}


def test_content_hash_excludes_unsigned_signatures_and_hashes() -> None:
    expected = hashlib.sha256(
        encode_canonical_json({k: v for k, v in BASE.items() if k not in ("unsigned", "signatures", "hashes")})
    ).digest()
    assert content_hash(BASE, V10) == expected
    hashed = add_content_hash(BASE, V10)
    assert hashed["hashes"] == {"sha256": encode_base64(expected)}
    assert check_content_hash(hashed, V10)
    assert not check_content_hash({**hashed, "content": {"body": "changed"}}, V10)
    assert not check_content_hash({**hashed, "hashes": {"sha256": "!!"}}, V10)
    assert not check_content_hash({k: v for k, v in hashed.items() if k != "hashes"}, V10)


def test_reference_hash_is_over_the_redacted_event() -> None:
    changed_body = {**BASE, "content": {"body": "other"}, "signatures": {}, "unsigned": {"x": 2}}
    assert reference_hash(BASE, V10) == reference_hash(changed_body, V10)
    assert reference_hash(BASE, V10) != reference_hash({**BASE, "depth": 5}, V10)


def test_event_id_alphabets() -> None:
    digest = reference_hash(BASE, V3)
    std = encode_base64(digest)
    assert compute_event_id(BASE, V3) == "$" + std
    assert compute_event_id(BASE, V4) == "$" + std.replace("+", "-").replace("/", "_")
    for _ in range(50):  # some digest must contain + or /, which v4+ ids never do
        assert re.fullmatch(r"\$[A-Za-z0-9_\-]{43}", compute_event_id(BASE, V4))
        BASE["depth"] += 1


def test_v1_ids_are_carried_in_the_event() -> None:
    v1 = ROOM_VERSIONS["1"]
    assert compute_event_id({**BASE, "event_id": "$abc:example.org"}, v1) == "$abc:example.org"
    with pytest.raises(ValueError):
        compute_event_id(BASE, v1)


def test_v12_room_id_is_the_create_event_id() -> None:
    room = Room(V12)
    create = room.create
    assert "room_id" not in create.pdu
    assert create.room_id == room_id_from_create_event_id(create.event_id) == "!" + create.event_id[1:]
    assert re.fullmatch(r"![A-Za-z0-9_\-]{43}", create.room_id)
    message = room.add("m.room.member", "@alice:example.org", {"membership": "join"}, "@alice:example.org")
    assert message.room_id == create.room_id


@settings(max_examples=200, deadline=None)
@given(st.permutations(sorted(BASE)), st.sampled_from(list(ROOM_VERSIONS)[2:]))
def test_event_id_stable_under_key_reordering(order: list[str], version: str) -> None:
    reordered = {k: BASE[k] for k in order}
    v = ROOM_VERSIONS[version]
    assert compute_event_id(reordered, v) == compute_event_id(BASE, v)
    assert Event(reordered, v).event_id == Event(BASE, v).event_id
