"""The deprecated r0 event stream and initial syncs (`GET /events`, `/initialSync`,
`/rooms/{roomId}/initialSync`; client-server API old_sync.yaml, room_initial_sync.yaml).

Old clients, bridges and SyTest still use them; Synapse serves them. They are
views over `/sync`: the same tokens, the same long-poll and the same history
visibility, flattened into the older shapes.
"""

from __future__ import annotations

from typing import Any

import orjson

from homeserver.errors import MatrixError, forbidden
from homeserver.services.directory import Directory
from homeserver.services.rooms import Rooms
from homeserver.services.sessions import Requester
from homeserver.services.sync import Sync
from homeserver.storage import events as event_store

DEFAULT_INITIAL_LIMIT = 10
V1_TOP_LEVEL = ("age", "redacted_because", "replaces_state", "prev_content")
# The event stream hands out everything since its token (no gap), up to the sync maximum per room.
EVENTS_FILTER = orjson.dumps({"room": {"timeline": {"limit": 1000}}}).decode()


def _with_room(events: list[dict[str, Any]], room_id: str) -> list[dict[str, Any]]:
    return [{**e, "room_id": room_id} for e in events]


def _v1(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Room events in the r0 shape these endpoints always had (Synapse's "client v1" format):
    `user_id` beside `sender`, and `age`, `prev_content` and the like at the top level too."""
    shaped = []
    for event in events:
        event = dict(event)
        if "sender" in event:
            event["user_id"] = event["sender"]
        unsigned = event.get("unsigned")
        if isinstance(unsigned, dict):
            event.update({k: unsigned[k] for k in V1_TOP_LEVEL if k in unsigned})
        shaped.append(event)
    return shaped


def _presence_v1(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Presence as r0 had it: the user's id inside the content too."""
    return [{**e, "content": {**e.get("content", {}), "user_id": e.get("sender")}} for e in events]


class LegacySync:
    def __init__(self, sync: Sync, rooms: Rooms, directory: Directory) -> None:
        self.sync = sync
        self.rooms = rooms
        self.directory = directory

    async def events(
        self, requester: Requester, from_token: str | None, timeout_ms: int, room_id: str | None = None,
    ) -> dict[str, Any]:
        """`GET /events`: what happened after `from` (or from now), long-polling up to `timeout`;
        with `room_id`, only that room's events, for a member (peeking is not supported)."""
        raw_filter = EVENTS_FILTER
        if room_id is not None:
            await self.rooms.require_member(room_id, requester.user_id)
            raw_filter = orjson.dumps({
                "room": {"rooms": [room_id], "timeline": {"limit": 1000}, "account_data": {"types": []}},
                "presence": {"types": []}, "account_data": {"types": []},
            }).decode()
        start = from_token or await self.sync.current_token()
        result = await self.sync.sync(requester, start, timeout_ms, False, raw_filter)
        chunk: list[dict[str, Any]] = list(result.get("account_data", {}).get("events", []))
        rooms = result.get("rooms", {})
        for room_id, room in rooms.get("join", {}).items():
            chunk += _v1(_with_room(room.get("timeline", {}).get("events", []), room_id))
            chunk += _with_room(room.get("ephemeral", {}).get("events", []), room_id)
            chunk += _with_room(room.get("account_data", {}).get("events", []), room_id)
        for room_id, room in rooms.get("invite", {}).items():
            chunk += _v1(_with_room([e for e in room.get("invite_state", {}).get("events", [])
                                     if e.get("type") == "m.room.member" and e.get("state_key") == requester.user_id],
                                    room_id))
        for room_id, room in rooms.get("leave", {}).items():
            chunk += _v1(_with_room(room.get("timeline", {}).get("events", []), room_id))
        chunk += _presence_v1(result.get("presence", {}).get("events", []))
        return {"chunk": chunk, "start": start, "end": result["next_batch"]}

    async def initial_sync(self, requester: Requester, limit: int | None, archived: bool) -> dict[str, Any]:
        """`GET /initialSync`: every room with its state and latest messages."""
        limit = DEFAULT_INITIAL_LIMIT if limit is None else max(0, limit)
        raw_filter = orjson.dumps({"room": {"timeline": {"limit": limit}, "include_leave": archived}}).decode()
        result = await self.sync.sync(requester, None, 0, False, raw_filter)
        end = result["next_batch"]
        rooms_out: list[dict[str, Any]] = []
        receipts: list[dict[str, Any]] = []
        rooms = result.get("rooms", {})
        for membership, section in (("join", "join"), ("leave", "leave")):
            for room_id, room in rooms.get(section, {}).items():
                timeline = room.get("timeline", {})
                entry: dict[str, Any] = {
                    "room_id": room_id, "membership": membership,
                    "messages": {"chunk": _v1(_with_room(timeline.get("events", []), room_id)),
                                 "start": timeline.get("prev_batch", end), "end": end},
                    "state": _v1(await self._state(requester, room_id)),
                    "visibility": await self.directory.visibility(room_id),
                    "account_data": room.get("account_data", {}).get("events", []),
                }
                rooms_out.append(entry)
                receipts += _with_room([e for e in room.get("ephemeral", {}).get("events", [])
                                        if e.get("type") == "m.receipt"], room_id)
        for room_id, room in rooms.get("invite", {}).items():
            invite = [e for e in room.get("invite_state", {}).get("events", [])
                      if e.get("type") == "m.room.member" and e.get("state_key") == requester.user_id]
            entry = {"room_id": room_id, "membership": "invite",
                     "invite": _v1([{**invite[-1], "room_id": room_id}])[0] if invite else {}}
            rooms_out.append(entry)
        return {
            "end": end, "rooms": rooms_out, "receipts": receipts,
            "presence": _presence_v1(result.get("presence", {}).get("events", [])),
            # Push rules are sync's view of them, not account data the user stored (as Synapse).
            "account_data": [e for e in result.get("account_data", {}).get("events", [])
                             if e.get("type") != "m.push_rules"],
        }

    async def _state(self, requester: Requester, room_id: str) -> list[dict[str, Any]]:
        try:
            return await self.rooms.state(requester, room_id)
        except MatrixError:
            return []

    async def room_initial_sync(self, requester: Requester, room_id: str, limit: int | None) -> dict[str, Any]:
        """`GET /rooms/{roomId}/initialSync`: one room's state and latest messages, for members and
        (world-readable rooms) for anyone."""
        room = await self.rooms.store.require_room(room_id)
        row = await event_store.membership_of(self.rooms.database.pool, room.room_nid, requester.user_id)
        membership = row["membership"] if row is not None else None
        if membership not in ("join", "leave", "ban", "invite") and not await self.rooms.world_readable(room):
            raise forbidden("You are not in the room and it is not world-readable")
        limit = DEFAULT_INITIAL_LIMIT if limit is None else max(0, limit)
        messages = await self.rooms.messages(requester, room_id, None, "b", max(limit, 1), None)
        chunk = list(reversed(messages["chunk"]))[-limit:] if limit else []
        # Members' presence and receipts for members only (a world-readable room's readers get none).
        members: list[str] = []
        receipts: dict[str, dict] = {}
        if membership == "join":
            members = await event_store.members_of(self.rooms.database.pool, room.room_nid, ("join",))
            receipts = await self.sync.receipts.receipt_events(
                requester.user_id, {room.room_nid: room_id}, 0, await self.sync.receipts.position()
            )
        result: dict[str, Any] = {
            "room_id": room_id,
            "messages": {"chunk": _v1(chunk), "start": messages.get("end", messages["start"]),
                         "end": messages["start"]},
            "state": _v1(await self.rooms.state(requester, room_id)),
            "presence": _presence_v1(self.sync.presence.snapshot(members)),
            "receipts": _with_room([receipts[room_id]], room_id) if room_id in receipts else [],
            "account_data": await self.rooms.account_data.of_room(requester.user_id, room_id),
            "visibility": await self.directory.visibility(room_id),
        }
        if membership is not None:
            result["membership"] = membership
        return result
