"""PDU format checks per room version, before any signature or auth rule runs.

Server-server API "Checks performed on receipt of a PDU" (step 1: a valid
event) and the PDU definitions of each room version: field types, id grammars,
at most 20 `prev_events` and 10 `auth_events`, depth bounds, the 255 limits on
ids, and the 65 536-byte limit on the canonical JSON of the whole event.
"""

from __future__ import annotations

import re
from typing import Any

from homeserver.core.canonical_json import CanonicalJsonError
from homeserver.core.hashes import encoder_for
from homeserver.core.ids import is_valid_server_name, is_valid_user_id, split_id
from homeserver.core.room_versions import EventFormat, RoomVersion

MAX_PDU_SIZE = 65536
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10
MAX_DEPTH = 2**63 - 1
MAX_ID_LENGTH = 255

_HASH_ID_V3 = re.compile(r"\$[A-Za-z0-9+/]{43}\Z")
_HASH_ID_V4 = re.compile(r"\$[A-Za-z0-9_\-]{43}\Z")
_HASH_ROOM_ID = re.compile(r"![A-Za-z0-9_\-]{43}\Z")


class FormatError(ValueError):
    """The PDU is malformed for its room version; it must not be persisted."""


def _require(pdu: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in pdu:
        raise FormatError(f"missing {key}")
    value = pdu[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FormatError(f"{key} must be {what}")
    return value


def is_valid_event_id(event_id: Any, version: RoomVersion) -> bool:
    if not isinstance(event_id, str):
        return False
    if version.event_format is EventFormat.V1:
        try:
            _local, domain = split_id(event_id, "$")
        except ValueError:
            return False
        return is_valid_server_name(domain)
    pattern = _HASH_ID_V3 if version.event_format is EventFormat.V2 else _HASH_ID_V4
    return bool(pattern.match(event_id))


def is_valid_room_id(room_id: Any, version: RoomVersion) -> bool:
    if not isinstance(room_id, str):
        return False
    if version.room_id_from_create_event:
        return bool(_HASH_ROOM_ID.match(room_id))
    try:
        localpart, domain = split_id(room_id, "!")
    except ValueError:
        return False
    return "\x00" not in localpart and is_valid_server_name(domain)


def _check_references(pdu: dict[str, Any], key: str, limit: int, version: RoomVersion) -> None:
    refs = _require(pdu, key, list, "a list")
    if len(refs) > limit:
        raise FormatError(f"{key} has {len(refs)} entries, more than {limit}")
    for ref in refs:
        if version.event_format is EventFormat.V1:
            if not (isinstance(ref, list) and len(ref) == 2 and isinstance(ref[1], dict)):
                raise FormatError(f"{key} entries must be [event_id, hashes] pairs")
            ref = ref[0]
        if not is_valid_event_id(ref, version):
            raise FormatError(f"{key} holds an invalid event id {ref!r}")


def _check_length(name: str, value: str, version: RoomVersion) -> None:
    if len(value) > MAX_ID_LENGTH or (
        version.strict_event_byte_limits and len(value.encode("utf-8")) > MAX_ID_LENGTH
    ):
        raise FormatError(f"{name} is longer than {MAX_ID_LENGTH}")


def check_pdu_format(pdu: Any, version: RoomVersion) -> bytes:
    """Raise FormatError unless `pdu` is a well-formed PDU; returns its canonical JSON."""
    check_pdu_structure(pdu, version)
    try:
        encoded = encoder_for(version)(pdu)
    except CanonicalJsonError as exc:
        raise FormatError(f"not canonical JSON: {exc}") from None
    if len(encoded) > MAX_PDU_SIZE:
        raise FormatError(f"the event is {len(encoded)} bytes, more than {MAX_PDU_SIZE}")
    return encoded


def check_pdu_structure(pdu: Any, version: RoomVersion) -> None:
    """The checks of `check_pdu_format` that need no encoding: types, grammars, counts, bounds."""
    if not isinstance(pdu, dict):
        raise FormatError("a PDU must be a JSON object")
    event_type = _require(pdu, "type", str, "a string")
    _check_length("type", event_type, version)
    sender = _require(pdu, "sender", str, "a string")
    if not is_valid_user_id(sender):
        raise FormatError(f"sender {sender!r} is not a user id")
    _check_length("sender", sender, version)
    if "room_id" in pdu or not (event_type == "m.room.create" and version.room_id_from_create_event):
        room_id = _require(pdu, "room_id", str, "a string")
        if not (event_type == "m.room.create" and version.room_id_from_create_event):
            if not is_valid_room_id(room_id, version):
                raise FormatError(f"room_id {room_id!r} is not valid in room version {version.identifier}")
        _check_length("room_id", room_id, version)
    if version.event_format is EventFormat.V1:
        event_id = _require(pdu, "event_id", str, "a string")
        if not is_valid_event_id(event_id, version):
            raise FormatError(f"event_id {event_id!r} is not valid")
        _check_length("event_id", event_id, version)
    if "state_key" in pdu:
        state_key = _require(pdu, "state_key", str, "a string")
        _check_length("state_key", state_key, version)
    _require(pdu, "content", dict, "an object")
    depth = _require(pdu, "depth", int, "an integer")
    if not 0 <= depth <= MAX_DEPTH:
        raise FormatError(f"depth {depth} is out of range")
    _require(pdu, "origin_server_ts", int, "an integer")
    hashes = _require(pdu, "hashes", dict, "an object")
    if not isinstance(hashes.get("sha256"), str):
        raise FormatError("hashes.sha256 must be a string")
    signatures = _require(pdu, "signatures", dict, "an object")
    for by_key in signatures.values():
        if not isinstance(by_key, dict) or not all(isinstance(s, str) for s in by_key.values()):
            raise FormatError("signatures must map servers to key ids to strings")
    if "unsigned" in pdu and not isinstance(pdu["unsigned"], dict):
        raise FormatError("unsigned must be an object")
    _check_references(pdu, "prev_events", MAX_PREV_EVENTS, version)
    _check_references(pdu, "auth_events", MAX_AUTH_EVENTS, version)
    if version.updated_redaction_rules and event_type == "m.room.redaction":
        if "redacts" in pdu["content"] and not isinstance(pdu["content"]["redacts"], str):
            raise FormatError("content.redacts must be a string")
