"""The room versions registry: the flags each version's spec page describes."""

from __future__ import annotations

from homeserver.core.room_versions import (
    DEFAULT_ROOM_VERSION,
    KNOWN_ROOM_VERSIONS,
    EventFormat,
    StateResAlgorithm,
    get_room_version,
)


def flag_versions(flag: str) -> list[str]:
    return [v for v in KNOWN_ROOM_VERSIONS if getattr(get_room_version(v), flag)]


def test_versions_and_default() -> None:
    assert KNOWN_ROOM_VERSIONS == tuple(str(i) for i in range(1, 13))
    assert DEFAULT_ROOM_VERSION == "12"
    assert all(get_room_version(v).stable for v in KNOWN_ROOM_VERSIONS)


def test_formats_and_algorithms() -> None:
    formats = [get_room_version(v).event_format for v in KNOWN_ROOM_VERSIONS]
    assert formats == [EventFormat.V1] * 2 + [EventFormat.V2] + [EventFormat.V3] * 9
    algorithms = [get_room_version(v).state_res for v in KNOWN_ROOM_VERSIONS]
    assert algorithms == [StateResAlgorithm.V1] + [StateResAlgorithm.V2] * 10 + [StateResAlgorithm.V2_1]


def test_flags_switch_on_where_the_spec_says() -> None:
    since = {
        "enforce_key_validity": 5, "strict_canonical_json": 6, "limit_notifications_power_levels": 6,
        "knocking": 7, "restricted_joins": 8, "redaction_keeps_authorising_user": 9, "knock_restricted": 10,
        "integer_only_power_levels": 10, "implicit_room_creator": 11, "updated_redaction_rules": 11,
        "strict_event_byte_limits": 11, "privileged_creators": 12, "room_id_from_create_event": 12,
    }
    for flag, first in since.items():
        assert flag_versions(flag) == [str(i) for i in range(first, 13)], flag
    assert flag_versions("special_case_aliases_auth") == ["1", "2", "3", "4", "5"]
    assert flag_versions("create_event_in_auth_events") == [str(i) for i in range(1, 12)]
