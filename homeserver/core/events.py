"""A compact, immutable event: parsed once, the original JSON bytes kept beside it.

The hot fields (ids, type, state key, sender, references) are slots filled on
construction, so the auth rules and state resolution never re-parse or walk
dicts of strings. `pdu` is the full federation form; treat it as read-only.
"""

from __future__ import annotations

from typing import Any

import orjson

from homeserver.core.hashes import compute_event_id, encoder_for, room_id_from_create_event_id
from homeserver.core.room_versions import EventFormat, RoomVersion


def _reference_ids(refs: Any, version: RoomVersion) -> tuple[str, ...]:
    """Event ids from `prev_events`/`auth_events` (v1/v2 use `[id, {hashes}]` pairs)."""
    if not isinstance(refs, list):
        return ()
    if version.event_format is EventFormat.V1:
        return tuple(r[0] for r in refs if isinstance(r, list) and r and isinstance(r[0], str))
    return tuple(r for r in refs if isinstance(r, str))


class Event:
    """One PDU of a known room version."""

    __slots__ = (
        "pdu",
        "room_version",
        "event_id",
        "room_id",
        "type",
        "state_key",
        "sender",
        "content",
        "prev_event_ids",
        "auth_event_ids",
        "depth",
        "origin_server_ts",
        "membership",
        "_raw",
    )

    pdu: dict[str, Any]
    room_version: RoomVersion
    event_id: str
    room_id: str
    type: str
    state_key: str | None
    sender: str
    content: dict[str, Any]
    prev_event_ids: tuple[str, ...]
    auth_event_ids: tuple[str, ...]
    depth: int
    origin_server_ts: int
    membership: str | None
    """`content.membership` when it is a string (read on every membership auth check)."""
    _raw: bytes | None

    def __init__(
        self,
        pdu: dict[str, Any],
        room_version: RoomVersion,
        *,
        event_id: str | None = None,
        raw: bytes | None = None,
    ) -> None:
        """Wrap a PDU; `event_id` may be passed when already known (it is not re-checked)."""
        self.pdu = pdu
        self.room_version = room_version
        self.event_id = event_id if event_id is not None else compute_event_id(pdu, room_version)
        self.type = pdu.get("type", "")
        self.state_key = pdu.get("state_key")
        self.sender = pdu.get("sender", "")
        content = pdu.get("content")
        self.content = content if isinstance(content, dict) else {}
        room_id = pdu.get("room_id")
        if room_id is None and self.type == "m.room.create" and room_version.room_id_from_create_event:
            room_id = room_id_from_create_event_id(self.event_id)
        self.room_id = room_id if isinstance(room_id, str) else ""
        self.prev_event_ids = _reference_ids(pdu.get("prev_events"), room_version)
        self.auth_event_ids = _reference_ids(pdu.get("auth_events"), room_version)
        depth = pdu.get("depth", 0)
        self.depth = depth if type(depth) is int else 0
        ts = pdu.get("origin_server_ts", 0)
        self.origin_server_ts = ts if type(ts) is int else 0
        membership = self.content.get("membership")
        self.membership = membership if type(membership) is str else None
        self._raw = raw

    @classmethod
    def from_json(cls, raw: bytes, room_version: RoomVersion, event_id: str | None = None) -> "Event":
        """Parse JSON bytes (ValueError if they are not a JSON object); `event_id` when already known."""
        pdu = orjson.loads(raw)
        if not isinstance(pdu, dict):
            raise ValueError("an event must be a JSON object")
        return cls(pdu, room_version, event_id=event_id, raw=raw)

    @property
    def raw(self) -> bytes:
        """The JSON bytes of the PDU: as received, or encoded once on first use."""
        if self._raw is None:
            self._raw = encoder_for(self.room_version)(self.pdu)
        return self._raw

    @property
    def is_state(self) -> bool:
        return self.state_key is not None

    @property
    def state_tuple(self) -> tuple[str, str] | None:
        return (self.type, self.state_key) if self.state_key is not None else None

    @property
    def redacts(self) -> str | None:
        """The redacted event's id: in `content` from v11, at the top level before."""
        if self.room_version.updated_redaction_rules:
            value = self.content.get("redacts")
        else:
            value = self.pdu.get("redacts")
        return value if isinstance(value, str) else None

    def __repr__(self) -> str:
        return f"<Event {self.event_id} {self.type} {self.state_key!r} from {self.sender}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.event_id == self.event_id

    def __hash__(self) -> int:
        return hash(self.event_id)
