"""Power levels as the authorization rules and state resolution read them.

Room versions 1-9 accept string power levels ("50"), 1-5 even floats; Python's
`int()` reads both exactly as Synapse does. Room version 12 gives creators
infinite power.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from homeserver.core.events import Event

StateMap = Mapping[tuple[str, str], Event]

CREATE_KEY = ("m.room.create", "")
POWER_LEVELS_KEY = ("m.room.power_levels", "")
JOIN_RULES_KEY = ("m.room.join_rules", "")

CREATOR_POWER_LEVEL = math.inf
"""Room version 12 creators outrank every integer level."""

NAMED_LEVEL_DEFAULTS = {"ban": 50, "kick": 50, "redact": 50, "invite": 0}


class InvalidPowerLevel(ValueError):
    """A power level value that is not an integer (nor a string of one where that is allowed)."""


def as_level(value: Any) -> int:
    """Read a stored power level (`int()` semantics: "50" and 50.0 are 50)."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidPowerLevel(f"not a valid power level: {value!r}") from None


def creators(create_event: Event) -> frozenset[str]:
    """Who created the room: `content.creator` (v1-10), the sender (v11), plus `additional_creators` (v12)."""
    version = create_event.room_version
    if not version.implicit_room_creator:
        creator = create_event.content.get("creator")
        return frozenset((creator,)) if isinstance(creator, str) else frozenset()
    found = {create_event.sender}
    if version.privileged_creators:
        extra = create_event.content.get("additional_creators")
        if isinstance(extra, list):
            found.update(u for u in extra if isinstance(u, str))
    return frozenset(found)


def is_creator(create_event: Event, user_id: str) -> bool:
    """`user_id in creators(create_event)`, without building the set (it is asked on every auth check)."""
    version = create_event.room_version
    if not version.implicit_room_creator:
        return create_event.content.get("creator") == user_id
    if user_id == create_event.sender:
        return True
    if version.privileged_creators:
        extra = create_event.content.get("additional_creators")
        return isinstance(extra, list) and user_id in extra
    return False


def user_level(user_id: str, state: StateMap) -> float:
    """The user's power level (an int, or infinity for a v12 creator)."""
    create = state.get(CREATE_KEY)
    if create is not None and create.room_version.privileged_creators and is_creator(create, user_id):
        return CREATOR_POWER_LEVEL
    power_levels = state.get(POWER_LEVELS_KEY)
    if power_levels is None:
        return 100 if create is not None and is_creator(create, user_id) else 0
    content = power_levels.content
    users = content.get("users")
    level = users.get(user_id) if isinstance(users, dict) else None
    if level is None:
        level = content.get("users_default")
    return 0 if level is None else as_level(level)


def named_level(state: StateMap, name: str) -> int:
    """`ban`, `kick`, `redact` or `invite`, with the spec's defaults."""
    power_levels = state.get(POWER_LEVELS_KEY)
    default = NAMED_LEVEL_DEFAULTS[name]
    if power_levels is None:
        return default
    value = power_levels.content.get(name)
    return default if value is None else as_level(value)


def send_level(event_type: str, state_key: str | None, state: StateMap) -> int:
    """The *required power level* to send an event of this type.

    As Synapse computes it, `state_default` falls back to 50 even when the
    room has no power levels event (the spec says 0 there); results of state
    resolution must match Synapse's, so this follows it.
    """
    power_levels = state.get(POWER_LEVELS_KEY)
    content = power_levels.content if power_levels is not None else {}
    events = content.get("events")
    level = events.get(event_type) if isinstance(events, dict) else None
    if level is None:
        if state_key is not None:
            level = content.get("state_default", 50)
        else:
            level = content.get("events_default", 0)
    return as_level(level)
