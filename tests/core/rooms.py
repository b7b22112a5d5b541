"""Test helper: grow a room of any version event by event, with real hashes and signatures."""

from __future__ import annotations

from typing import Any

from signedjson.key import decode_signing_key_base64

from homeserver.core.event_builder import build_event, select_auth_events
from homeserver.core.events import Event
from homeserver.core.room_versions import RoomVersion

KEY = decode_signing_key_base64("ed25519", "1", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
SERVER = "example.org"
ALICE = "@alice:example.org"
BOB = "@bob:example.org"
CAROL = "@carol:example.org"
MALLORY = "@mallory:example.org"


class Room:
    """A linear room: every event follows the last, and state moves with it."""

    def __init__(
        self, version: RoomVersion, creator: str = ALICE, name: str = "room", **create_content: Any
    ) -> None:
        """`name` tells rooms apart: the room id's localpart, or (v12) part of the create content."""
        self.version = version
        self.state: dict[tuple[str, str], Event] = {}
        self.events: list[Event] = []
        self.ts = 1_000_000
        content = dict(create_content)
        if not version.implicit_room_creator:
            content.setdefault("creator", creator)
        content.setdefault("room_version", version.identifier)
        if version.room_id_from_create_event and name != "room":
            content["com.example.name"] = name
        room_id = None if version.room_id_from_create_event else f"!{name}:{SERVER}"
        self.room_id = room_id or ""
        create = self.event("m.room.create", creator, content, state_key="", room_id=room_id)
        self.room_id = create.room_id
        self.apply(create)

    @property
    def create(self) -> Event:
        return self.state[("m.room.create", "")]

    def event(
        self,
        event_type: str,
        sender: str,
        content: dict[str, Any],
        state_key: str | None = None,
        *,
        room_id: str | None = "",
        redacts: str | None = None,
        prev: list[Event] | None = None,
    ) -> Event:
        """Build (not apply) the next event, citing the auth events the current state gives."""
        self.ts += 1
        return build_event(
            self.version,
            server_name=SERVER,
            signing_key=KEY,
            sender=sender,
            event_type=event_type,
            content=content,
            origin_server_ts=self.ts,
            room_id=self.room_id if room_id == "" else room_id,
            prev_events=prev if prev is not None else self.events[-1:],
            auth_events=select_auth_events(self.version, event_type, sender, state_key, content, self.state),
            state_key=state_key,
            redacts=redacts,
        )

    def apply(self, event: Event) -> Event:
        self.events.append(event)
        if event.state_key is not None:
            self.state[(event.type, event.state_key)] = event
        return event

    def add(self, event_type: str, sender: str, content: dict[str, Any], state_key: str | None = None) -> Event:
        return self.apply(self.event(event_type, sender, content, state_key))

    def member(self, user: str, membership: str, sender: str | None = None, **extra: Any) -> Event:
        return self.add("m.room.member", sender or user, {"membership": membership, **extra}, user)

    def standard_setup(self, creator: str = ALICE, join_rule: str = "public", **levels: Any) -> "Room":
        """The usual start: the creator joins, power levels, join rules."""
        self.member(creator, "join")
        users = {} if self.version.privileged_creators else {creator: 100}
        self.add("m.room.power_levels", creator, {"users": users, **levels}, "")
        self.add("m.room.join_rules", creator, {"join_rule": join_rule}, "")
        return self
