"""Room versions 1-12 as data: composable flags that the rules read.

Each version is the previous one with a few flags changed, exactly as the
spec's room-version pages describe their differences. Code asks a flag
(`version.knocking`), never `if identifier in (...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class EventFormat(Enum):
    """How event ids are made and how `prev_events`/`auth_events` are shaped."""

    V1 = 1  # `$random:server` ids carried in the event; references are [id, {hashes}] pairs
    V2 = 2  # ids are the reference hash, standard unpadded base64 (room v3)
    V3 = 3  # ids are the reference hash, URL-safe unpadded base64 (room v4+)


class StateResAlgorithm(Enum):
    V1 = "v1"
    V2 = "v2"
    V2_1 = "v2.1"


@dataclass(frozen=True, slots=True)
class RoomVersion:
    identifier: str
    event_format: EventFormat
    state_res: StateResAlgorithm
    stable: bool = True
    enforce_key_validity: bool = False
    """v5: signing keys must be valid at the event's `origin_server_ts`."""
    special_case_aliases_auth: bool = True
    """v1-v5: `m.room.aliases` is authorised by the sender's domain alone, and redaction keeps `aliases`."""
    strict_canonical_json: bool = False
    """v6: no floats, integers within ±(2^53-1)."""
    limit_notifications_power_levels: bool = False
    """v6: changing `notifications` in power levels is checked like other keys."""
    knocking: bool = False
    """v7: `knock` membership and join rule."""
    restricted_joins: bool = False
    """v8: `restricted` join rule, `join_authorised_via_users_server`; redaction keeps `allow`."""
    redaction_keeps_authorising_user: bool = False
    """v9: redaction keeps `join_authorised_via_users_server` of `m.room.member`."""
    knock_restricted: bool = False
    """v10: `knock_restricted` join rule."""
    integer_only_power_levels: bool = False
    """v10: power level values must be integers, not strings."""
    implicit_room_creator: bool = False
    """v11: the creator is the create event's `sender`; `creator` is gone."""
    updated_redaction_rules: bool = False
    """v11: MSC2176/MSC3821/MSC3989 redaction; `redacts` lives in `content`."""
    strict_event_byte_limits: bool = False
    """v11: the 255 limits on ids, type and state_key count UTF-8 bytes, not code points."""
    privileged_creators: bool = False
    """v12: creators (sender plus `additional_creators`) have infinite power."""
    room_id_from_create_event: bool = False
    """v12: the room id is the create event's id with `!`; the create event has no room_id."""
    create_event_in_auth_events: bool = True
    """Before v12 every event cites the create event in `auth_events`."""

    @property
    def event_id_in_event(self) -> bool:
        return self.event_format is EventFormat.V1


V1 = RoomVersion("1", EventFormat.V1, StateResAlgorithm.V1)
V2 = replace(V1, identifier="2", state_res=StateResAlgorithm.V2)
V3 = replace(V2, identifier="3", event_format=EventFormat.V2)
V4 = replace(V3, identifier="4", event_format=EventFormat.V3)
V5 = replace(V4, identifier="5", enforce_key_validity=True)
V6 = replace(
    V5,
    identifier="6",
    special_case_aliases_auth=False,
    strict_canonical_json=True,
    limit_notifications_power_levels=True,
)
V7 = replace(V6, identifier="7", knocking=True)
V8 = replace(V7, identifier="8", restricted_joins=True)
V9 = replace(V8, identifier="9", redaction_keeps_authorising_user=True)
V10 = replace(V9, identifier="10", knock_restricted=True, integer_only_power_levels=True)
V11 = replace(
    V10,
    identifier="11",
    implicit_room_creator=True,
    updated_redaction_rules=True,
    strict_event_byte_limits=True,
)
V12 = replace(
    V11,
    identifier="12",
    state_res=StateResAlgorithm.V2_1,
    privileged_creators=True,
    room_id_from_create_event=True,
    create_event_in_auth_events=False,
)

ROOM_VERSIONS: dict[str, RoomVersion] = {
    v.identifier: v for v in (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12)
}
KNOWN_ROOM_VERSIONS: tuple[str, ...] = tuple(ROOM_VERSIONS)
DEFAULT_ROOM_VERSION = "12"


def get_room_version(identifier: str) -> RoomVersion:
    """The registered version, or KeyError for an unknown identifier."""
    return ROOM_VERSIONS[identifier]
