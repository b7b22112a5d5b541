"""The authorization rules of room versions 1-12 (rooms/vN "Authorization rules").

Two halves, as servers apply them:

* `check_auth_events` — the state-independent rules: the create event's own
  rules, and the checks on an event's `auth_events` list (duplicates, the
  auth-events selection, rejected entries, same room, the create event).
* `check_auth_rules` — the rules that read room state, run against the
  event's auth events, the state before it, and the current state.

Where the spec leaves room for interpretation, results follow Synapse, so
that state resolution over the same events agrees with it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from nacl.exceptions import BadSignatureError
from signedjson.key import decode_verify_key_bytes
from unpaddedbase64 import decode_base64

from homeserver.core.events import Event
from homeserver.core.ids import is_valid_user_id, server_of
from homeserver.core.power_levels import (
    CREATE_KEY,
    JOIN_RULES_KEY,
    POWER_LEVELS_KEY,
    InvalidPowerLevel,
    StateMap,
    as_level,
    creators,
    named_level,
    send_level,
    user_level,
)
from homeserver.core.room_versions import ROOM_VERSIONS, EventFormat, RoomVersion
from homeserver.core.signing import SignatureError, verify_json

POWER_LEVEL_NAMES = ("users_default", "events_default", "state_default", "ban", "redact", "kick", "invite")


class AuthError(Exception):
    """The event is not allowed; the message says which rule refused it."""


def auth_types_for_event(
    version: RoomVersion, event_type: str, sender: str, state_key: str | None, content: Mapping[str, Any]
) -> set[tuple[str, str]]:
    """The auth-events selection (server-server API): which state an event must cite."""
    if event_type == "m.room.create":
        return set()
    types = {POWER_LEVELS_KEY, ("m.room.member", sender)}
    if version.create_event_in_auth_events:
        types.add(CREATE_KEY)
    if event_type == "m.room.member" and state_key is not None:
        membership = content.get("membership")
        types.add(("m.room.member", state_key))
        if membership in ("join", "invite", "knock"):
            types.add(JOIN_RULES_KEY)
        if membership == "invite":
            invite = content.get("third_party_invite")
            if isinstance(invite, dict) and isinstance(invite.get("signed"), dict):
                token = invite["signed"].get("token")
                if isinstance(token, str):
                    types.add(("m.room.third_party_invite", token))
        if version.restricted_joins and membership == "join":
            authoriser = content.get("join_authorised_via_users_server")
            if isinstance(authoriser, str):
                types.add(("m.room.member", authoriser))
    return types


def check_create_event(event: Event) -> None:
    """Rule 1: the create event's own rules."""
    version = event.room_version
    if event.prev_event_ids or event.pdu.get("prev_events"):
        raise AuthError("the create event has prev_events")
    if version.room_id_from_create_event:
        if "room_id" in event.pdu:
            raise AuthError("in this room version the create event must not have a room_id")
    elif server_of(event.room_id) != server_of(event.sender):
        raise AuthError("the create event's room_id is not on the sender's server")
    room_version = event.content.get("room_version", "1")
    if not isinstance(room_version, str) or room_version not in ROOM_VERSIONS:
        raise AuthError(f"unknown room_version {room_version!r} in the create event")
    if not version.implicit_room_creator and "creator" not in event.content:
        raise AuthError("the create event has no creator")
    if version.privileged_creators and "additional_creators" in event.content:
        extra = event.content["additional_creators"]
        if not isinstance(extra, list) or not all(
            isinstance(u, str) and is_valid_user_id(u) for u in extra
        ):
            raise AuthError("additional_creators must be a list of valid user ids")


def check_auth_events(
    event: Event,
    auth_events: Iterable[Event],
    *,
    is_rejected: Callable[[Event], bool] = lambda e: False,
    create_event: Event | None = None,
) -> None:
    """The state-independent rules (1-3 of v12, 1-2 of earlier versions).

    `auth_events` are the events `event.auth_event_ids` name. For room
    version 12, `create_event` is the room's accepted create event.
    """
    version = event.room_version
    if event.type == "m.room.create":
        check_create_event(event)
        return
    if version.room_id_from_create_event:
        if create_event is None or is_rejected(create_event):
            raise AuthError("the room's create event is unknown or rejected")
        if event.room_id != "!" + create_event.event_id[1:]:
            raise AuthError("the room_id is not the create event's id")
    expected = auth_types_for_event(version, event.type, event.sender, event.state_key, event.content)
    seen: set[tuple[str, str]] = set()
    for auth_event in auth_events:
        if auth_event.room_id != event.room_id:
            raise AuthError(f"auth event {auth_event.event_id} is in another room")
        key = (auth_event.type, auth_event.state_key or "")
        if auth_event.state_key is None or key in seen:
            raise AuthError(f"duplicate or non-state auth event {auth_event.event_id}")
        if key not in expected:
            raise AuthError(f"auth event {auth_event.event_id} {key} is not one the event needs")
        if is_rejected(auth_event):
            raise AuthError(f"auth event {auth_event.event_id} was rejected")
        seen.add(key)
    if version.create_event_in_auth_events and CREATE_KEY not in seen:
        raise AuthError("no create event among the auth events")


def required_signers(event: Event) -> set[str]:
    """Servers whose signatures an event needs before any rule runs on it.

    The sender's server (except for third-party invites, which the inviting
    server signs), the `event_id`'s server in v1/v2, and the authorising
    server of a restricted join.
    """
    signers = set()
    is_3pid_invite = (
        event.type == "m.room.member"
        and event.membership == "invite"
        and "third_party_invite" in event.content
    )
    if not is_3pid_invite:
        signers.add(server_of(event.sender))
    if event.room_version.event_format is EventFormat.V1:
        signers.add(server_of(event.event_id))
    if event.room_version.restricted_joins and event.type == "m.room.member" and event.membership == "join":
        authoriser = event.content.get("join_authorised_via_users_server")
        if isinstance(authoriser, str):
            signers.add(server_of(authoriser))
    return signers


def check_auth_rules(event: Event, state: StateMap) -> None:
    """The state-dependent rules: is `event` allowed given `state`?

    `state` maps (type, state_key) to events and must hold the room's create
    event (in room version 12 too, where events do not cite it).
    """
    if event.type == "m.room.create":
        return
    create = state.get(CREATE_KEY)
    if create is None:
        raise AuthError("no create event in the state")
    try:
        _check_state_dependent(event, state, create)
    except InvalidPowerLevel as exc:
        raise AuthError(str(exc)) from None


def is_allowed(event: Event, state: StateMap) -> bool:
    try:
        check_auth_rules(event, state)
    except AuthError:
        return False
    return True


def _can_federate(create: Event) -> bool:
    return create.content.get("m.federate", True) is True


def _membership_of(state: StateMap, user_id: str) -> str | None:
    member = state.get(("m.room.member", user_id))
    return member.membership if member is not None else None


def _check_state_dependent(event: Event, state: StateMap, create: Event) -> None:
    version = event.room_version
    if not _can_federate(create) and server_of(create.sender) != server_of(event.sender):
        raise AuthError("the room is not federated (m.federate is false)")
    if event.type == "m.room.aliases" and version.special_case_aliases_auth:
        if not event.state_key:
            raise AuthError("m.room.aliases needs a state_key")
        if event.state_key != server_of(event.sender):
            raise AuthError("m.room.aliases state_key must be the sender's server")
        return
    if event.type == "m.room.member":
        _check_membership(event, state, create)
        return
    if _membership_of(state, event.sender) != "join":
        raise AuthError(f"{event.sender} is not in the room")
    sender_level = user_level(event.sender, state)
    if event.type == "m.room.third_party_invite":
        if sender_level < named_level(state, "invite"):
            raise AuthError("not allowed to invite")
        return
    required = send_level(event.type, event.state_key, state)
    if sender_level < required:
        raise AuthError(f"power level {sender_level} is below the {required} needed for {event.type}")
    if event.state_key is not None and event.state_key.startswith("@") and event.state_key != event.sender:
        raise AuthError("only the user named by a state_key starting with @ may set it")
    if event.type == "m.room.power_levels":
        _check_power_levels(event, state, create, sender_level)
    if event.type == "m.room.redaction" and version.event_format is EventFormat.V1:
        _check_v1_redaction(event, state, sender_level)


def _check_membership(event: Event, state: StateMap, create: Event) -> None:
    version = event.room_version
    membership = event.content.get("membership")
    target = event.state_key
    if target is None or not isinstance(membership, str):
        raise AuthError("a membership event needs a state_key and content.membership")
    if (
        membership == "join"
        and len(event.prev_event_ids) == 1
        and event.prev_event_ids[0] == create.event_id
        and target in _first_join_creators(create)
    ):
        return
    if not _can_federate(create) and server_of(create.sender) != server_of(target):
        raise AuthError("the room is not federated (m.federate is false)")

    sender_membership = _membership_of(state, event.sender)
    target_membership = _membership_of(state, target)
    caller_joined = sender_membership == "join"
    caller_invited = sender_membership == "invite"
    caller_knocked = version.knocking and sender_membership == "knock"
    target_joined = target_membership == "join"
    target_banned = target_membership == "ban"
    join_rules = state.get(JOIN_RULES_KEY)
    join_rule = join_rules.content.get("join_rule", "invite") if join_rules is not None else "invite"
    sender_level = user_level(event.sender, state)

    if membership == "invite" and "third_party_invite" in event.content:
        if not _third_party_invite_allows(event, state):
            raise AuthError("the third-party invite does not verify")
        if target_banned:
            raise AuthError(f"{target} is banned")
        return

    if membership not in ("join", "knock"):
        if (caller_invited or caller_knocked) and membership == "leave" and target == event.sender:
            return
        if not caller_joined:
            raise AuthError(f"{event.sender} is not in the room")

    if membership == "invite":
        if target_banned:
            raise AuthError(f"{target} is banned")
        if target_joined:
            raise AuthError(f"{target} is already in the room")
        if sender_level < named_level(state, "invite"):
            raise AuthError("not allowed to invite")
    elif membership == "join":
        if event.sender != target:
            raise AuthError("cannot join on behalf of another user")
        if target_banned:
            raise AuthError(f"{target} is banned")
        if join_rule == "public":
            return
        if (version.restricted_joins and join_rule == "restricted") or (
            version.knock_restricted and join_rule == "knock_restricted"
        ):
            if caller_joined or caller_invited:
                return
            authoriser = event.content.get("join_authorised_via_users_server")
            if not isinstance(authoriser, str):
                raise AuthError("a restricted join needs join_authorised_via_users_server")
            if _membership_of(state, authoriser) != "join":
                raise AuthError("the authorising user is not in the room")
            if user_level(authoriser, state) < named_level(state, "invite"):
                raise AuthError("the authorising user may not invite")
            return
        if join_rule == "invite" or (version.knocking and join_rule == "knock") or (
            version.knock_restricted and join_rule == "knock_restricted"
        ):
            if not (caller_joined or caller_invited):
                raise AuthError("not invited to this room")
            return
        raise AuthError(f"cannot join a room whose join rule is {join_rule!r}")
    elif membership == "leave":
        if target_banned and sender_level < named_level(state, "ban"):
            raise AuthError("not allowed to unban")
        if target != event.sender:
            if sender_level < named_level(state, "kick") or sender_level <= user_level(target, state):
                raise AuthError("not allowed to kick")
    elif membership == "ban":
        if sender_level < named_level(state, "ban"):
            raise AuthError("not allowed to ban")
        if sender_level <= user_level(target, state):
            raise AuthError("not allowed to ban a user of equal or higher power")
    elif membership == "knock" and version.knocking:
        if join_rule != "knock" and not (version.knock_restricted and join_rule == "knock_restricted"):
            raise AuthError("the room does not allow knocking")
        if target != event.sender:
            raise AuthError("cannot knock on behalf of another user")
        if target_joined or caller_invited or target_banned:
            raise AuthError("cannot knock when joined, invited or banned")
    else:
        raise AuthError(f"unknown membership {membership!r}")


def _first_join_creators(create: Event) -> frozenset[str]:
    """Who may make the first join straight after the create event: the creator."""
    if create.room_version.implicit_room_creator:
        return frozenset((create.sender,))
    return creators(create)


def _third_party_invite_allows(event: Event, state: StateMap) -> bool:
    invite = event.content.get("third_party_invite")
    if not isinstance(invite, dict):
        return False
    signed = invite.get("signed")
    if not isinstance(signed, dict) or not all(k in signed for k in ("mxid", "token", "signatures")):
        return False
    token = signed["token"]
    if not isinstance(token, str):
        return False
    original = state.get(("m.room.third_party_invite", token))
    if original is None or original.sender != event.sender or signed["mxid"] != event.state_key:
        return False
    signatures = signed["signatures"]
    if not isinstance(signatures, dict):
        return False
    for public_key in _third_party_public_keys(original):
        for server, by_key in signatures.items():
            if not isinstance(by_key, dict):
                continue
            for key_id in by_key:
                if not isinstance(key_id, str) or not key_id.startswith("ed25519:"):
                    continue
                try:
                    verify_key = decode_verify_key_bytes(key_id, decode_base64(public_key))
                    verify_json(signed, server, key_id, verify_key)
                except (SignatureError, BadSignatureError, ValueError, TypeError):
                    continue
                return True
    return False


def _third_party_public_keys(invite: Event) -> list[str]:
    keys = []
    if isinstance(invite.content.get("public_key"), str):
        keys.append(invite.content["public_key"])
    extra = invite.content.get("public_keys")
    if isinstance(extra, list):
        keys.extend(k["public_key"] for k in extra if isinstance(k, dict) and isinstance(k.get("public_key"), str))
    return keys


def _check_power_levels(event: Event, state: StateMap, create: Event, sender_level: float) -> None:
    version = event.room_version
    new = event.content
    users = new.get("users", {})
    if not isinstance(users, dict):
        raise AuthError("power levels users must be an object")
    current = state.get(POWER_LEVELS_KEY)
    # Users the current power levels list passed this check when that event was
    # accepted; in big rooms that spares thousands of re-validations.
    old_users = current.content.get("users") if current is not None else None
    known = old_users.keys() if isinstance(old_users, dict) else ()
    for user_id, level in users.items():
        if type(level) is not int:
            as_level(level)
        if user_id not in known and not is_valid_user_id(user_id):
            raise AuthError(f"{user_id!r} in power levels users is not a user id")
    if version.privileged_creators and creators(create) & users.keys():
        raise AuthError("room creators must not be listed in power levels users")
    if version.integer_only_power_levels:
        for name in POWER_LEVEL_NAMES:
            if name in new and type(new[name]) is not int:
                raise AuthError(f"power levels {name} must be an integer")
        for name in ("events", "notifications", "users"):
            if name in new and (
                not isinstance(new[name], dict) or not all(type(v) is int for v in new[name].values())
            ):
                raise AuthError(f"power levels {name} must map to integers")
    for name in ("events", "notifications"):
        if name in new and not isinstance(new[name], dict):
            raise AuthError(f"power levels {name} must be an object")

    if current is None:
        return
    old = current.content
    sections = ["users", "events"]
    if version.limit_notifications_power_levels:
        sections.append("notifications")
    # (key, old mapping, new mapping, whether the key is a user's entry)
    entries: list[tuple[str, Mapping[str, Any], Mapping[str, Any], bool]] = [
        (name, old, new, False) for name in POWER_LEVEL_NAMES
    ]
    for section in sections:
        old_section = old.get(section)
        new_section = new.get(section)
        old_section = old_section if isinstance(old_section, dict) else {}
        new_section = new_section if isinstance(new_section, dict) else {}
        # Entries whose raw values are equal cannot change level; big rooms list
        # thousands of users, of whom an event changes a few.
        missing = object()
        entries.extend(
            (key, old_section, new_section, section == "users")
            for key in old_section.keys() | new_section.keys()
            if old_section.get(key, missing) != new_section.get(key, missing)
        )
    for key, old_map, new_map, is_user in entries:
        old_level = as_level(old_map[key]) if key in old_map else None
        new_level = as_level(new_map[key]) if key in new_map else None
        if old_level is not None and old_level == new_level:
            continue
        if is_user and key != event.sender and old_level is not None and old_level >= sender_level:
            raise AuthError("cannot change the level of a user with power equal to or above yours")
        if (old_level is not None and old_level > sender_level) or (
            new_level is not None and new_level > sender_level
        ):
            raise AuthError("cannot change a power level above your own")


def _check_v1_redaction(event: Event, state: StateMap, sender_level: float) -> None:
    """Room versions 1 and 2 authorise redactions by power or by the event id's server."""
    if sender_level >= named_level(state, "redact"):
        return
    redacts = event.pdu.get("redacts")
    if not isinstance(redacts, str):
        return
    if server_of(event.event_id) == server_of(redacts):
        return
    raise AuthError("not allowed to redact")
