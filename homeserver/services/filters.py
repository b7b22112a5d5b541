"""Filters (client-server API filter.yaml): parsed once into frozen objects that sync and
`/messages` apply.

Type and sender patterns accept `*` wildcards, as the spec's filter definition says.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from homeserver.core.ids import is_valid_user_id
from homeserver.errors import bad_json

DEFAULT_TIMELINE_LIMIT = 10
MAX_LIMIT = 100


def _strings(value: Any, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_json(f"{key} must be a list of strings")
    return tuple(value)


def _bool(value: Any, key: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_json(f"{key} must be a boolean")
    return value


def _matches(patterns: tuple[str, ...], value: str) -> bool:
    return any(p == value or ("*" in p and fnmatch.fnmatchcase(value, p)) for p in patterns)


@dataclass(frozen=True)
class EventFilter:
    """`EventFilter` / `RoomEventFilter`: which events pass, and how many."""

    limit: int | None = None
    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    contains_url: bool | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    unread_thread_notifications: bool = False

    @classmethod
    def parse(cls, value: Any, key: str, default_limit: int | None = None) -> "EventFilter":
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise bad_json(f"{key} must be an object")
        limit = value.get("limit", default_limit)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise bad_json(f"{key}.limit must be a non-negative integer")
        contains_url = value.get("contains_url")
        if contains_url is not None and not isinstance(contains_url, bool):
            raise bad_json(f"{key}.contains_url must be a boolean")
        for field_name in ("rooms", "not_rooms"):
            for room_id in _strings(value.get(field_name), f"{key}.{field_name}") or ():
                if not room_id.startswith("!"):
                    raise bad_json(f"{key}.{field_name} must hold room ids")
        for field_name in ("senders", "not_senders"):
            for sender in _strings(value.get(field_name), f"{key}.{field_name}") or ():
                if not is_valid_user_id(sender):
                    raise bad_json(f"{key}.{field_name} must hold user ids")
        return cls(
            limit=min(limit, MAX_LIMIT) if limit is not None else None,
            types=_strings(value.get("types"), f"{key}.types"),
            not_types=_strings(value.get("not_types"), f"{key}.not_types") or (),
            senders=_strings(value.get("senders"), f"{key}.senders"),
            not_senders=_strings(value.get("not_senders"), f"{key}.not_senders") or (),
            rooms=_strings(value.get("rooms"), f"{key}.rooms"),
            not_rooms=_strings(value.get("not_rooms"), f"{key}.not_rooms") or (),
            contains_url=contains_url,
            lazy_load_members=_bool(value.get("lazy_load_members"), f"{key}.lazy_load_members", False),
            include_redundant_members=_bool(
                value.get("include_redundant_members"), f"{key}.include_redundant_members", False
            ),
            unread_thread_notifications=_bool(
                value.get("unread_thread_notifications"), f"{key}.unread_thread_notifications", False
            ),
        )

    def allows(self, event_type: str, sender: str | None = None, room_id: str | None = None,
               content: dict[str, Any] | None = None) -> bool:
        if _matches(self.not_types, event_type) or (self.types is not None and not _matches(self.types, event_type)):
            return False
        if sender is not None and (sender in self.not_senders or (self.senders is not None and sender not in self.senders)):
            return False
        if room_id is not None and (room_id in self.not_rooms or (self.rooms is not None and room_id not in self.rooms)):
            return False
        if self.contains_url is not None and content is not None:
            return self.contains_url == isinstance(content.get("url"), str)
        return True


@dataclass(frozen=True)
class RoomFilter:
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    include_leave: bool = False
    timeline: EventFilter = EventFilter(limit=DEFAULT_TIMELINE_LIMIT)
    state: EventFilter = EventFilter()
    ephemeral: EventFilter = EventFilter()
    account_data: EventFilter = EventFilter()

    def includes(self, room_id: str) -> bool:
        return room_id not in self.not_rooms and (self.rooms is None or room_id in self.rooms)


@dataclass(frozen=True)
class Filter:
    room: RoomFilter = field(default_factory=RoomFilter)
    presence: EventFilter = EventFilter()
    account_data: EventFilter = EventFilter()
    federation_format: bool = False
    event_fields: tuple[tuple[str, ...], ...] | None = None

    def shape(self, event: dict[str, Any], pdu: dict[str, Any]) -> dict[str, Any]:
        """A room event (client format) as the filter asks: the PDU's fields too with
        `event_format: federation`, only the `event_fields` paths when those are given."""
        if self.federation_format:
            event = {**pdu, **event}
        if self.event_fields is None:
            return event
        shaped: dict[str, Any] = {}
        for path in self.event_fields:
            source, target = event, shaped
            for depth, name in enumerate(path):
                if not isinstance(source, dict) or name not in source:
                    break
                if depth == len(path) - 1:
                    target[name] = source[name]
                else:
                    source = source[name]
                    target = target.setdefault(name, {})
        return shaped

    @classmethod
    def parse(cls, value: Any) -> "Filter":
        if not isinstance(value, dict):
            raise bad_json("a filter must be an object")
        room = value.get("room", {})
        if not isinstance(room, dict):
            raise bad_json("room must be an object")
        return cls(
            room=RoomFilter(
                rooms=_strings(room.get("rooms"), "room.rooms"),
                not_rooms=_strings(room.get("not_rooms"), "room.not_rooms") or (),
                include_leave=_bool(room.get("include_leave"), "room.include_leave", False),
                timeline=EventFilter.parse(room.get("timeline"), "room.timeline", DEFAULT_TIMELINE_LIMIT),
                state=EventFilter.parse(room.get("state"), "room.state"),
                ephemeral=EventFilter.parse(room.get("ephemeral"), "room.ephemeral"),
                account_data=EventFilter.parse(room.get("account_data"), "room.account_data"),
            ),
            presence=EventFilter.parse(value.get("presence"), "presence"),
            account_data=EventFilter.parse(value.get("account_data"), "account_data"),
            federation_format=_event_format(value.get("event_format")),
            event_fields=_field_paths(value.get("event_fields")),
        )


def _event_format(value: Any) -> bool:
    if value not in (None, "client", "federation"):
        raise bad_json("event_format must be 'client' or 'federation'")
    return value == "federation"


def _field_paths(value: Any) -> tuple[tuple[str, ...], ...] | None:
    """`event_fields`: dot-separated paths, where `\\.` is a literal dot and `\\\\` a backslash."""
    fields = _strings(value, "event_fields")
    if fields is None:
        return None
    paths = []
    for raw in fields:
        parts, current, escaped = [], "", False
        for char in raw:
            if escaped:
                current, escaped = current + char, False
            elif char == "\\":
                escaped = True
            elif char == ".":
                parts.append(current)
                current = ""
            else:
                current += char
        parts.append(current)
        paths.append(tuple(parts))
    return tuple(paths)
