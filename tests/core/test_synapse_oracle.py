"""Differential tests against Synapse (installed from PyPI with the test extras) as an oracle.

For every room version, Synapse must compute the same event ids, content
hashes and redactions as we do, and reach the same verdict on every case of
the authorization-rule table.
"""

from __future__ import annotations

import copy
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homeserver.core.auth_rules import AuthError, check_auth_rules
from homeserver.core.hashes import content_hash
from homeserver.core.redaction import redact
from homeserver.core.room_versions import ROOM_VERSIONS
from tests.core.rooms import ALICE, BOB, Room
from tests.core.test_auth_rules import CASES

synapse_versions = pytest.importorskip("synapse.api.room_versions")
from synapse.api.errors import SynapseError  # noqa: E402
from synapse.crypto.event_signing import compute_content_hash, redact_event_dict  # noqa: E402
from synapse.event_auth import check_state_dependent_auth_rules  # noqa: E402
from synapse.events import make_event_from_dict  # noqa: E402

SYNAPSE_VERSIONS = synapse_versions.KNOWN_ROOM_VERSIONS


def synapse_event(event):  # noqa: ANN001, ANN201 - Synapse's own types
    return make_event_from_dict(copy.deepcopy(event.pdu), SYNAPSE_VERSIONS[event.room_version.identifier])


@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_same_event_ids_and_content_hashes(version: str) -> None:
    room = Room(ROOM_VERSIONS[version]).standard_setup()
    room.member(BOB, "join")
    room.add("m.room.message", BOB, {"body": "héllo", "msgtype": "m.text"})
    for event in room.events:
        theirs = synapse_event(event)
        assert theirs.event_id == event.event_id
        assert theirs.room_id == event.room_id
        assert compute_content_hash(copy.deepcopy(event.pdu), hashlib.sha256)[1] == content_hash(event.pdu, event.room_version)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_same_auth_verdicts(name: str, version: str) -> None:
    build, _allowed_in = CASES[name]
    room, candidate = build(ROOM_VERSIONS[version])
    try:
        check_auth_rules(candidate, dict(room.state))
        ours = True
    except AuthError:
        ours = False
    try:
        check_state_dependent_auth_rules(synapse_event(candidate), [synapse_event(e) for e in room.state.values()])
        theirs = True
    except (SynapseError, KeyError):  # Synapse meets malformed content with a KeyError
        theirs = False
    assert ours == theirs


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=8))
_json = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)
_special_keys = st.sampled_from(
    ["membership", "join_authorised_via_users_server", "third_party_invite", "creator", "join_rule", "allow",
     "ban", "events", "invite", "redacts", "aliases", "history_visibility", "users", "body", "signed"]
)
_event_types = st.sampled_from(
    ["m.room.member", "m.room.create", "m.room.join_rules", "m.room.power_levels", "m.room.aliases",
     "m.room.history_visibility", "m.room.redaction", "m.room.message"]
)


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from(list(ROOM_VERSIONS)),
    event_type=_event_types,
    content=st.dictionaries(_special_keys, _json, max_size=6),
    extra=st.dictionaries(st.sampled_from(["origin", "membership", "prev_state", "age_ts", "redacts", "foo"]),
                          _json, max_size=3),
)
def test_same_redaction(version: str, event_type: str, content: dict, extra: dict) -> None:
    pdu = {
        "type": event_type, "sender": ALICE, "room_id": "!r:example.org", "content": content,
        "depth": 1, "origin_server_ts": 1, "prev_events": [], "auth_events": [], "hashes": {"sha256": "x"},
        "signatures": {}, "state_key": "", **extra, "unsigned": {"age_ts": 1},
    }
    theirs = redact_event_dict(SYNAPSE_VERSIONS[version], copy.deepcopy(pdu))
    theirs.pop("unsigned", None)
    assert redact(pdu, ROOM_VERSIONS[version]) == theirs
