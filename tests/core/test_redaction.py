"""Redaction per room version: what survives, and idempotence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.core.redaction import redact
from homeserver.core.room_versions import ROOM_VERSIONS

TOP = {
    "event_id": "$e", "type": "m.room.message", "room_id": "!r:x", "sender": "@a:x", "state_key": "",
    "content": {}, "hashes": {"sha256": "h"}, "signatures": {}, "depth": 1, "prev_events": [],
    "auth_events": [], "origin_server_ts": 1, "origin": "x", "membership": "join", "prev_state": [],
    "unsigned": {"age": 1}, "redacts": "$r", "foo": "bar",
}
COMMON = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures", "depth",
          "prev_events", "auth_events", "origin_server_ts"}


@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_top_level_keys(version: str) -> None:
    v = ROOM_VERSIONS[version]
    kept = set(redact(TOP, v))
    assert kept == (COMMON if v.updated_redaction_rules else COMMON | {"origin", "membership", "prev_state"})


CONTENT_CASES = [
    # (type, content, {version: kept content})
    ("m.room.member", {"membership": "join", "displayname": "A", "join_authorised_via_users_server": "@b:x",
                       "third_party_invite": {"signed": {"mxid": "@a:x"}, "display_name": "d"}},
     {"1": {"membership": "join"}, "8": {"membership": "join"},
      "9": {"membership": "join", "join_authorised_via_users_server": "@b:x"},
      "11": {"membership": "join", "join_authorised_via_users_server": "@b:x",
             "third_party_invite": {"signed": {"mxid": "@a:x"}}}}),
    ("m.room.create", {"creator": "@a:x", "room_version": "1", "m.federate": False},
     {"1": {"creator": "@a:x"}, "10": {"creator": "@a:x"},
      "11": {"creator": "@a:x", "room_version": "1", "m.federate": False}}),
    ("m.room.join_rules", {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}], "x": 1},
     {"1": {"join_rule": "restricted"}, "8": {"join_rule": "restricted", "allow": [{"type": "m.room_membership"}]}}),
    ("m.room.power_levels", {"ban": 1, "events": {}, "events_default": 2, "kick": 3, "redact": 4,
                             "state_default": 5, "users": {}, "users_default": 6, "invite": 7, "notifications": {}},
     {"1": {"ban": 1, "events": {}, "events_default": 2, "kick": 3, "redact": 4, "state_default": 5,
            "users": {}, "users_default": 6},
      "11": {"ban": 1, "events": {}, "events_default": 2, "kick": 3, "redact": 4, "state_default": 5,
             "users": {}, "users_default": 6, "invite": 7}}),
    ("m.room.aliases", {"aliases": ["#a:x"]}, {"1": {"aliases": ["#a:x"]}, "6": {}}),
    ("m.room.history_visibility", {"history_visibility": "shared", "x": 1}, {"1": {"history_visibility": "shared"}}),
    ("m.room.redaction", {"redacts": "$x", "reason": "spam"}, {"1": {}, "11": {"redacts": "$x"}}),
    ("m.room.message", {"body": "secret", "msgtype": "m.text"}, {"1": {}}),
]


def _expected_for(version: str, table: dict[str, dict]) -> dict:
    applicable = [int(v) for v in table if int(v) <= int(version)]
    return table[str(max(applicable))]


@pytest.mark.parametrize(("event_type", "content", "table"), CONTENT_CASES)
@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_content_keys(version: str, event_type: str, content: dict, table: dict) -> None:
    redacted = redact({**TOP, "type": event_type, "content": content}, ROOM_VERSIONS[version])
    assert redacted["content"] == _expected_for(version, table)


def test_v12_create_event_loses_room_id_and_does_not_mutate() -> None:
    pdu = {**TOP, "type": "m.room.create", "content": {"room_version": "12"}}
    before = dict(pdu)
    assert "room_id" not in redact(pdu, ROOM_VERSIONS["12"])
    assert "room_id" in redact(pdu, ROOM_VERSIONS["11"])
    assert pdu == before


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from(list(ROOM_VERSIONS)),
    event_type=st.sampled_from([c[0] for c in CONTENT_CASES] + ["x.custom"]),
    content=st.dictionaries(st.sampled_from(["membership", "allow", "users", "redacts", "third_party_invite",
                                             "body", "creator", "aliases"]), _json),
    extra=st.dictionaries(st.text(max_size=8), _json, max_size=3),
)
def test_redaction_is_idempotent(version: str, event_type: str, content: dict, extra: dict) -> None:
    v = ROOM_VERSIONS[version]
    once = redact({**extra, **TOP, "type": event_type, "content": content}, v)
    assert redact(once, v) == once
