"""Redaction algorithm per room version (rooms/v1, v6, v9, v11 redaction fragments).

`redact` is what reference hashes and signatures are computed over, and what a
redacted event becomes; it never mutates its input.
"""

from __future__ import annotations

from typing import Any

from homeserver.core.room_versions import RoomVersion

_TOP_LEVEL_KEYS = frozenset(
    {
        "event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
        "signatures", "depth", "prev_events", "auth_events", "origin_server_ts",
    }
)
_LEGACY_TOP_LEVEL_KEYS = _TOP_LEVEL_KEYS | {"prev_state", "origin", "membership"}

_POWER_LEVEL_KEYS = (
    "ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default",
)


def _content_keys(event_type: str, version: RoomVersion) -> tuple[str, ...]:
    """Content keys that survive redaction, other than the special cases in `redact`."""
    if event_type == "m.room.member":
        if version.redaction_keeps_authorising_user:
            return ("membership", "join_authorised_via_users_server")
        return ("membership",)
    if event_type == "m.room.create":
        return () if version.implicit_room_creator else ("creator",)
    if event_type == "m.room.join_rules":
        return ("join_rule", "allow") if version.restricted_joins else ("join_rule",)
    if event_type == "m.room.power_levels":
        if version.updated_redaction_rules:
            return (*_POWER_LEVEL_KEYS, "invite")
        return _POWER_LEVEL_KEYS
    if event_type == "m.room.aliases" and version.special_case_aliases_auth:
        return ("aliases",)
    if event_type == "m.room.history_visibility":
        return ("history_visibility",)
    if event_type == "m.room.redaction" and version.updated_redaction_rules:
        return ("redacts",)
    return ()


def redact(pdu: dict[str, Any], version: RoomVersion) -> dict[str, Any]:
    """The redacted copy of `pdu` (unsigned data removed too)."""
    allowed = _TOP_LEVEL_KEYS if version.updated_redaction_rules else _LEGACY_TOP_LEVEL_KEYS
    redacted = {k: v for k, v in pdu.items() if k in allowed}
    event_type = pdu.get("type")
    content = pdu.get("content")
    if not isinstance(content, dict):
        content = {}
    if event_type == "m.room.create" and version.updated_redaction_rules:
        new_content = dict(content)
    else:
        new_content = {k: content[k] for k in _content_keys(event_type, version) if k in content}
    if event_type == "m.room.create" and version.room_id_from_create_event:
        redacted.pop("room_id", None)
    if event_type == "m.room.member" and version.updated_redaction_rules:
        invite = content.get("third_party_invite")
        if isinstance(invite, dict):
            new_content["third_party_invite"] = {"signed": invite["signed"]} if "signed" in invite else {}
    redacted["content"] = new_content
    return redacted
