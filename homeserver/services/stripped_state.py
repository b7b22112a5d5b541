"""Stripped state: what an invited or knocking user (and the inviting server) sees of a room.

Client-server API "Stripped state": the create event, join rules, name, avatar,
canonical alias, encryption and topic, each as type, state key, content and sender.
"""

from __future__ import annotations

from typing import Any

from homeserver.core.events import Event

STRIPPED_STATE_TYPES = (
    "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias",
    "m.room.encryption", "m.room.topic",
)


def stripped(event: Event) -> dict[str, Any]:
    return {"type": event.type, "state_key": event.state_key, "content": event.content, "sender": event.sender}


def stripped_state(state: dict[Any, Event]) -> list[dict[str, Any]]:
    return [stripped(e) for key, e in state.items() if key[0] in STRIPPED_STATE_TYPES]
