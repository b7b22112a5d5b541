"""Table-driven authorization rules: allowed and refused cases for each rule, every room version.

Each case builds a real room (hashed, signed events) and a candidate event,
and names the room versions where the candidate is allowed; in every other
version it must be refused.
"""

from __future__ import annotations

from typing import Callable

import pytest
from signedjson.key import decode_signing_key_base64, encode_verify_key_base64, get_verify_key

from homeserver.core.auth_rules import (
    AuthError,
    auth_types_for_event,
    check_auth_events,
    check_auth_rules,
    required_signers,
)
from homeserver.core.events import Event
from homeserver.core.room_versions import ROOM_VERSIONS, RoomVersion
from homeserver.core.signing import sign_json
from tests.core.rooms import ALICE, BOB, CAROL, MALLORY, SERVER, Room

ALL = frozenset(ROOM_VERSIONS)


def versions(lo: int = 1, hi: int = 12) -> frozenset[str]:
    return frozenset(str(v) for v in range(lo, hi + 1))


Case = Callable[[RoomVersion], tuple[Room, Event]]
CASES: dict[str, tuple[Case, frozenset[str]]] = {}


def case(allowed_in: frozenset[str]) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[fn.__name__] = (fn, allowed_in)
        return fn

    return register


def joined(version: RoomVersion, *users: str, join_rule: str = "public", **levels: object) -> Room:
    room = Room(version).standard_setup(join_rule="public", **levels)
    for user in users:
        room.member(user, "join")
    if join_rule != "public":
        room.add("m.room.join_rules", ALICE, {"join_rule": join_rule}, "")
    return room


# --- membership: join -------------------------------------------------------------


@case(ALL)
def creator_first_join(v: RoomVersion) -> tuple[Room, Event]:
    room = Room(v)
    return room, room.event("m.room.member", ALICE, {"membership": "join"}, ALICE)


@case(frozenset())
def non_creator_first_join(v: RoomVersion) -> tuple[Room, Event]:
    room = Room(v)
    return room, room.event("m.room.member", BOB, {"membership": "join"}, BOB)


@case(ALL)
def join_public_room(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.member", BOB, {"membership": "join"}, BOB)


@case(frozenset())
def join_invite_only_room_uninvited(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, join_rule="invite")
    return room, room.event("m.room.member", BOB, {"membership": "join"}, BOB)


@case(ALL)
def join_invite_only_room_invited(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, join_rule="invite")
    room.member(BOB, "invite", sender=ALICE)
    return room, room.event("m.room.member", BOB, {"membership": "join"}, BOB)


@case(frozenset())
def join_for_someone_else(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.member", ALICE, {"membership": "join"}, BOB)


@case(frozenset())
def join_while_banned(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    room.member(BOB, "ban", sender=ALICE)
    return room, room.event("m.room.member", BOB, {"membership": "join"}, BOB)


@case(versions(7))
def join_knock_room_invited(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, join_rule="knock")
    room.member(BOB, "invite", sender=ALICE)
    return room, room.event("m.room.member", BOB, {"membership": "join"}, BOB)


@case(versions(8))
def restricted_join_authorised(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, CAROL, join_rule="restricted")
    return room, room.event(
        "m.room.member", BOB, {"membership": "join", "join_authorised_via_users_server": ALICE}, BOB
    )


@case(frozenset())
def restricted_join_without_authoriser(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, join_rule="restricted")
    return room, room.event("m.room.member", BOB, {"membership": "join"}, BOB)


@case(frozenset())
def restricted_join_authoriser_not_joined(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, join_rule="restricted")
    return room, room.event(
        "m.room.member", BOB, {"membership": "join", "join_authorised_via_users_server": CAROL}, BOB
    )


@case(frozenset())
def restricted_join_authoriser_cannot_invite(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, CAROL, join_rule="restricted", invite=50)
    return room, room.event(
        "m.room.member", BOB, {"membership": "join", "join_authorised_via_users_server": CAROL}, BOB
    )


@case(versions(10))
def knock_restricted_join_authorised(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, join_rule="knock_restricted")
    return room, room.event(
        "m.room.member", BOB, {"membership": "join", "join_authorised_via_users_server": ALICE}, BOB
    )


# --- membership: invite ------------------------------------------------------------


@case(ALL)
def invite_by_member(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.member", ALICE, {"membership": "invite"}, BOB)


@case(frozenset())
def invite_by_non_member(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.member", CAROL, {"membership": "invite"}, BOB)


@case(frozenset())
def invite_banned_user(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    room.member(BOB, "ban", sender=ALICE)
    return room, room.event("m.room.member", ALICE, {"membership": "invite"}, BOB)


@case(frozenset())
def invite_joined_user(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    return room, room.event("m.room.member", ALICE, {"membership": "invite"}, BOB)


@case(frozenset())
def invite_below_invite_level(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, CAROL, invite=50)
    return room, room.event("m.room.member", CAROL, {"membership": "invite"}, BOB)


THIRD_PARTY_KEY = decode_signing_key_base64("ed25519", "0", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2U")


def _third_party_room(v: RoomVersion, public_key: str) -> Room:
    room = joined(v)
    room.add(
        "m.room.third_party_invite",
        ALICE,
        {"display_name": "b...@example.com", "key_validity_url": "https://id.example.com/check",
         "public_key": public_key},
        "tok",
    )
    return room


def _signed_invite(mxid: str, token: str = "tok") -> dict:
    return sign_json({"mxid": mxid, "token": token}, "id.example.com", THIRD_PARTY_KEY)


@case(ALL)
def third_party_invite_signed(v: RoomVersion) -> tuple[Room, Event]:
    room = _third_party_room(v, encode_verify_key_base64(get_verify_key(THIRD_PARTY_KEY)))
    content = {"membership": "invite", "third_party_invite": {"display_name": "b", "signed": _signed_invite(BOB)}}
    return room, room.event("m.room.member", ALICE, content, BOB)


@case(frozenset())
def third_party_invite_wrong_key(v: RoomVersion) -> tuple[Room, Event]:
    other = decode_signing_key_base64("ed25519", "0", "b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVyb3Q")
    room = _third_party_room(v, encode_verify_key_base64(get_verify_key(other)))
    content = {"membership": "invite", "third_party_invite": {"display_name": "b", "signed": _signed_invite(BOB)}}
    return room, room.event("m.room.member", ALICE, content, BOB)


@case(frozenset())
def third_party_invite_mxid_mismatch(v: RoomVersion) -> tuple[Room, Event]:
    room = _third_party_room(v, encode_verify_key_base64(get_verify_key(THIRD_PARTY_KEY)))
    content = {"membership": "invite", "third_party_invite": {"display_name": "b", "signed": _signed_invite(CAROL)}}
    return room, room.event("m.room.member", ALICE, content, BOB)


# --- membership: leave, kick, ban, knock --------------------------------------------


@case(ALL)
def leave_own(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    return room, room.event("m.room.member", BOB, {"membership": "leave"}, BOB)


@case(ALL)
def reject_invite(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    room.member(BOB, "invite", sender=ALICE)
    return room, room.event("m.room.member", BOB, {"membership": "leave"}, BOB)


@case(frozenset())
def leave_when_not_in_room(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.member", BOB, {"membership": "leave"}, BOB)


@case(ALL)
def kick_by_higher_power(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    return room, room.event("m.room.member", ALICE, {"membership": "leave"}, BOB)


@case(frozenset())
def kick_by_lower_power(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    return room, room.event("m.room.member", BOB, {"membership": "leave"}, ALICE)


@case(frozenset())
def kick_by_equal_power(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB, CAROL, kick=0)
    return room, room.event("m.room.member", BOB, {"membership": "leave"}, CAROL)


@case(ALL)
def unban_with_ban_power(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    room.member(BOB, "ban", sender=ALICE)
    return room, room.event("m.room.member", ALICE, {"membership": "leave"}, BOB)


@case(frozenset())
def unban_without_ban_power(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB, CAROL, kick=0)
    room.member(MALLORY, "ban", sender=ALICE)
    return room, room.event("m.room.member", CAROL, {"membership": "leave"}, MALLORY)


@case(ALL)
def ban_with_power(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    return room, room.event("m.room.member", ALICE, {"membership": "ban"}, BOB)


@case(frozenset())
def ban_without_power(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    return room, room.event("m.room.member", BOB, {"membership": "ban"}, ALICE)


@case(frozenset())
def ban_by_non_member(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    room.member(ALICE, "leave")
    return room, room.event("m.room.member", ALICE, {"membership": "ban"}, BOB)


@case(versions(7))
def knock_on_knock_room(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, join_rule="knock")
    return room, room.event("m.room.member", BOB, {"membership": "knock"}, BOB)


@case(versions(10))
def knock_on_knock_restricted_room(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, join_rule="knock_restricted")
    return room, room.event("m.room.member", BOB, {"membership": "knock"}, BOB)


@case(frozenset())
def knock_on_public_room(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.member", BOB, {"membership": "knock"}, BOB)


@case(frozenset())
def knock_when_invited(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, join_rule="knock")
    room.member(BOB, "invite", sender=ALICE)
    return room, room.event("m.room.member", BOB, {"membership": "knock"}, BOB)


@case(versions(7))
def retract_knock(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, join_rule="knock")
    room.member(BOB, "knock")
    return room, room.event("m.room.member", BOB, {"membership": "leave"}, BOB)


@case(frozenset())
def unknown_membership(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.member", ALICE, {"membership": "dance"}, ALICE)


@case(frozenset())
def membership_without_membership_key(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.member", ALICE, {"displayname": "A"}, ALICE)


@case(frozenset())
def unfederated_room_remote_join(v: RoomVersion) -> tuple[Room, Event]:
    room = Room(v, **{"m.federate": False}).standard_setup()
    return room, room.event("m.room.member", "@dan:other.org", {"membership": "join"}, "@dan:other.org")


@case(ALL)
def federated_room_remote_join(v: RoomVersion) -> tuple[Room, Event]:
    room = Room(v).standard_setup()
    return room, room.event("m.room.member", "@dan:other.org", {"membership": "join"}, "@dan:other.org")


# --- other events ------------------------------------------------------------------


@case(ALL)
def message_by_member(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    return room, room.event("m.room.message", BOB, {"body": "hi", "msgtype": "m.text"})


@case(frozenset())
def message_by_non_member(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.message", BOB, {"body": "hi", "msgtype": "m.text"})


@case(frozenset())
def message_below_events_default(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB, events_default=10)
    return room, room.event("m.room.message", BOB, {"body": "hi", "msgtype": "m.text"})


@case(frozenset())
def state_below_state_default(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    return room, room.event("m.room.topic", BOB, {"topic": "x"}, "")


@case(ALL)
def state_with_events_override(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB, events={"m.room.topic": 0})
    return room, room.event("m.room.topic", BOB, {"topic": "x"}, "")


@case(frozenset())
def state_key_of_another_user(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB, state_default=0)
    return room, room.event("com.example.profile", BOB, {}, ALICE)


@case(ALL)
def state_key_of_own_user(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB, state_default=0)
    return room, room.event("com.example.profile", BOB, {}, BOB)


@case(frozenset())
def third_party_invite_event_below_invite_level(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB, invite=50, state_default=0)
    return room, room.event("m.room.third_party_invite", BOB, {"public_key": "x"}, "t")


@case(versions(1, 5))
def aliases_by_non_member_of_their_server(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.aliases", "@dan:other.org", {"aliases": ["#a:other.org"]}, "other.org")


@case(versions(6))
def aliases_for_another_server(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB, state_default=0)
    return room, room.event("m.room.aliases", BOB, {"aliases": ["#a:other.org"]}, "other.org")


@case(ALL)
def redaction_of_same_server_event_by_low_power(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    target = room.add("m.room.message", ALICE, {"body": "x"})
    return room, room.event("m.room.redaction", BOB, {}, redacts=target.event_id)


@case(versions(3))
def redaction_of_remote_event_by_low_power(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    other = "$" + "A" * 43 if v.identifier != "1" else "$x:other.org"
    return room, room.event("m.room.redaction", BOB, {}, redacts=other)


@case(ALL)
def redaction_by_redact_power(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.redaction", ALICE, {}, redacts="$x:other.org")


# --- power levels ------------------------------------------------------------------


def _levels(room: Room, **changes: object) -> dict:
    return {**room.state[("m.room.power_levels", "")].content, **changes}


@case(ALL)
def power_levels_add_user_below_own(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    users = dict(_levels(room)["users"], **{BOB: 50})
    return room, room.event("m.room.power_levels", ALICE, _levels(room, users=users), "")


@case(frozenset())
def power_levels_raise_above_own(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    users = dict(_levels(room)["users"], **{BOB: 50})
    room.add("m.room.power_levels", ALICE, _levels(room, users=users, state_default=50), "")
    return room, room.event("m.room.power_levels", BOB, _levels(room, users=dict(users, **{BOB: 75})), "")


@case(frozenset())
def power_levels_change_peer_at_own_level(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB, CAROL)
    users = dict(_levels(room)["users"], **{BOB: 50, CAROL: 50})
    room.add("m.room.power_levels", ALICE, _levels(room, users=users), "")
    return room, room.event("m.room.power_levels", BOB, _levels(room, users=dict(users, **{CAROL: 0})), "")


@case(ALL)
def power_levels_demote_self(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    users = dict(_levels(room)["users"], **{BOB: 50})
    room.add("m.room.power_levels", ALICE, _levels(room, users=users), "")
    return room, room.event("m.room.power_levels", BOB, _levels(room, users=dict(users, **{BOB: 10})), "")


@case(frozenset())
def power_levels_raise_ban_above_own(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    users = dict(_levels(room)["users"], **{BOB: 50})
    room.add("m.room.power_levels", ALICE, _levels(room, users=users), "")
    return room, room.event("m.room.power_levels", BOB, _levels(room, ban=60), "")


@case(versions(1, 5))
def power_levels_raise_notifications_above_own(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    users = dict(_levels(room)["users"], **{BOB: 50})
    room.add("m.room.power_levels", ALICE, _levels(room, users=users), "")
    return room, room.event("m.room.power_levels", BOB, _levels(room, notifications={"room": 90}), "")


@case(versions(1, 9))
def power_levels_string_values(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.power_levels", ALICE, _levels(room, ban="50"), "")


@case(frozenset())
def power_levels_invalid_user_id(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    users = dict(_levels(room)["users"], **{"not-a-user": 10})
    return room, room.event("m.room.power_levels", ALICE, _levels(room, users=users), "")


@case(versions(1, 11))
def power_levels_listing_the_creator(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v)
    return room, room.event("m.room.power_levels", ALICE, _levels(room, users={ALICE: 100}), "")


@case(versions(12))
def creator_outranks_any_level(v: RoomVersion) -> tuple[Room, Event]:
    room = joined(v, BOB)
    room.add("m.room.power_levels", ALICE, _levels(room, users={BOB: 2**53 - 1}), "")
    return room, room.event("m.room.member", ALICE, {"membership": "ban"}, BOB)


@case(versions(12))
def additional_creator_has_infinite_power(v: RoomVersion) -> tuple[Room, Event]:
    room = Room(v, additional_creators=[BOB]).standard_setup()
    room.member(BOB, "join")
    return room, room.event("m.room.power_levels", BOB, _levels(room, ban=2**53 - 1), "")


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_auth_rule_case(name: str, version: str) -> None:
    build, allowed_in = CASES[name]
    room, candidate = build(ROOM_VERSIONS[version])
    state = dict(room.state)
    if version in allowed_in:
        check_auth_rules(candidate, state)
    else:
        with pytest.raises(AuthError):
            check_auth_rules(candidate, state)


# --- the create event and the state-independent rules -------------------------------


@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_create_event_rules(version: str) -> None:
    v = ROOM_VERSIONS[version]
    room = Room(v)
    check_auth_events(room.create, [])
    bad = {
        "prev_events": {**room.create.pdu, "prev_events": room.events[-1].pdu["auth_events"] or ["$x"]},
        "unknown room_version": {**room.create.pdu, "content": {**room.create.content, "room_version": "99"}},
    }
    if not v.implicit_room_creator:
        content = {k: x for k, x in room.create.content.items() if k != "creator"}
        bad["no creator"] = {**room.create.pdu, "content": content}
    if v.room_id_from_create_event:
        bad["room_id present"] = {**room.create.pdu, "room_id": "!x:example.org"}
        bad["bad additional_creators"] = {
            **room.create.pdu, "content": {**room.create.content, "additional_creators": ["not a user"]}
        }
    else:
        bad["room on another server"] = {**room.create.pdu, "room_id": "!room:other.org"}
    for why, pdu in bad.items():
        event = Event(pdu, v, event_id="$bad" + ("" if v.identifier not in ("1", "2") else ":example.org"))
        with pytest.raises(AuthError):
            check_auth_events(event, [])
            pytest.fail(why)
    if v.privileged_creators:
        ok = Room(v, additional_creators=[BOB])
        check_auth_events(ok.create, [])


def _auth_events(room: Room, event: Event) -> list[Event]:
    by_id = {e.event_id: e for e in room.events}
    return [by_id[i] for i in event.auth_event_ids]


@pytest.mark.parametrize("version", list(ROOM_VERSIONS))
def test_auth_events_checks(version: str) -> None:
    v = ROOM_VERSIONS[version]
    room = joined(v, BOB)
    message = room.event("m.room.message", BOB, {"body": "hi"})
    auth = _auth_events(room, message)
    check_auth_events(message, auth, create_event=room.create)
    expected_types = {(e.type, e.state_key) for e in auth}
    assert (("m.room.create", "") in expected_types) == v.create_event_in_auth_events
    with pytest.raises(AuthError, match="duplicate"):
        check_auth_events(message, auth + auth[-1:], create_event=room.create)
    join_rules = room.state[("m.room.join_rules", "")]
    with pytest.raises(AuthError, match="is not one the event needs"):
        check_auth_events(message, auth + [join_rules], create_event=room.create)
    with pytest.raises(AuthError, match="was rejected"):
        check_auth_events(message, auth, is_rejected=lambda e: e.type == "m.room.power_levels",
                          create_event=room.create)
    other_room = Room(v, name="other").standard_setup()
    foreign = other_room.state[("m.room.power_levels", "")]
    swapped = [foreign if e.type == "m.room.power_levels" else e for e in auth]
    with pytest.raises(AuthError, match="in another room"):
        check_auth_events(message, swapped, create_event=room.create)
    if v.create_event_in_auth_events:
        with pytest.raises(AuthError, match="no create event"):
            check_auth_events(message, [e for e in auth if e.type != "m.room.create"])
    else:
        with pytest.raises(AuthError, match="not one the event needs"):
            check_auth_events(message, auth + [room.create], create_event=room.create)
        with pytest.raises(AuthError, match="unknown or rejected"):
            check_auth_events(message, auth, create_event=None)
        with pytest.raises(AuthError, match="not the create event's id"):
            check_auth_events(message, auth, create_event=other_room.create)


def test_auth_types_for_event_selection() -> None:
    v10, v12 = ROOM_VERSIONS["10"], ROOM_VERSIONS["12"]
    content = {"membership": "join", "join_authorised_via_users_server": CAROL}
    assert auth_types_for_event(v10, "m.room.member", BOB, BOB, content) == {
        ("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", BOB),
        ("m.room.join_rules", ""), ("m.room.member", CAROL),
    }
    invite = {"membership": "invite", "third_party_invite": {"signed": {"token": "abc"}}}
    assert ("m.room.third_party_invite", "abc") in auth_types_for_event(v12, "m.room.member", ALICE, BOB, invite)
    assert auth_types_for_event(v12, "m.room.message", BOB, None, {}) == {
        ("m.room.power_levels", ""), ("m.room.member", BOB),
    }
    assert auth_types_for_event(v12, "m.room.create", BOB, "", {}) == set()
    assert ("m.room.join_rules", "") not in auth_types_for_event(v10, "m.room.member", BOB, BOB, {"membership": "leave"})


def test_required_signers() -> None:
    v1, v10 = ROOM_VERSIONS["1"], ROOM_VERSIONS["10"]
    room = joined(v10, join_rule="restricted")
    join = room.event("m.room.member", "@dan:other.org",
                      {"membership": "join", "join_authorised_via_users_server": ALICE}, "@dan:other.org")
    assert required_signers(join) == {"other.org", SERVER}
    old = Room(v1)
    assert required_signers(old.create) == {SERVER}
