"""Typing notifications (in memory, with timeouts) and read receipts (stored), for sync.

Typing has its own serial, started from the clock so tokens stay ordered
across restarts; receipts have a PostgreSQL sequence.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

from homeserver.errors import bad_json, forbidden, invalid_param, not_found
from homeserver.services.events import EventStore
from homeserver.services.notifier import Notifier
from homeserver.services.sessions import Requester
from homeserver.storage import events as event_store
from homeserver.storage import receipts
from homeserver.storage.database import Database

MAX_TYPING_TIMEOUT_MS = 120_000
RECEIPT_TYPES = ("m.read", "m.read.private")

Members = Callable[[str], Awaitable[list[str]]]
TypingObserver = Callable[[str, str, bool], None]
ReceiptObserver = Callable[[str, str, str, int, str | None], Awaitable[None]]


class Typing:
    def __init__(self, notifier: Notifier, members: Members) -> None:
        self.notifier = notifier
        self.members = members
        self.serial = int(time.time() * 1000)
        self._typing: dict[str, dict[str, float]] = {}
        self._changed: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.observer: TypingObserver = lambda room_id, user_id, typing: None
        """Told of every change (federation sends our users' typing to the room's other servers)."""

    def _bump(self, room_id: str) -> None:
        self.serial = max(self.serial + 1, int(time.time() * 1000))
        self._changed[room_id] = self.serial
        task = asyncio.get_running_loop().create_task(self._wake(room_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wake(self, room_id: str) -> None:
        self.notifier.notify(await self.members(room_id))

    def set_typing(self, room_id: str, user_id: str, typing: bool, timeout_ms: int) -> None:
        users = self._typing.setdefault(room_id, {})
        if typing:
            expiry = time.monotonic() + min(timeout_ms, MAX_TYPING_TIMEOUT_MS) / 1000
            users[user_id] = expiry
            asyncio.get_running_loop().call_later(
                min(timeout_ms, MAX_TYPING_TIMEOUT_MS) / 1000, self._expire, room_id, user_id, expiry
            )
        elif users.pop(user_id, None) is None:
            return
        self._bump(room_id)
        self.observer(room_id, user_id, typing)

    def _expire(self, room_id: str, user_id: str, expiry: float) -> None:
        users = self._typing.get(room_id, {})
        if users.get(user_id) == expiry:
            del users[user_id]
            self._bump(room_id)

    def typing_event(self, room_id: str, since: int | None) -> dict | None:
        """The room's `m.typing` event if it changed after `since` (always on an initial sync)."""
        changed = self._changed.get(room_id)
        if changed is None or (since is not None and changed <= since):
            return None
        return {"type": "m.typing", "content": {"user_ids": sorted(self._typing.get(room_id, {}))}}


class Receipts:
    def __init__(self, database: Database, store: EventStore, notifier: Notifier, members: Members) -> None:
        self.database = database
        self.store = store
        self.notifier = notifier
        self.members = members
        self.observer: ReceiptObserver | None = None
        """Told of every public receipt of ours (federation sends them to the room's other servers)."""
        self.on_read: Callable[[str], None] | None = None
        """Told of the user whenever one of our users' receipts moved (push gateways update badges)."""

    async def post(
        self, requester: Requester, room_id: str, receipt_type: str, event_id: str, thread_id: object
    ) -> None:
        if receipt_type not in RECEIPT_TYPES:
            raise invalid_param(f"Unknown receipt type {receipt_type!r}")
        if thread_id is not None and not isinstance(thread_id, str):
            raise bad_json("thread_id must be a string")
        room = await self.store.require_room(room_id)
        membership = await event_store.membership_of(self.database.pool, room.room_nid, requester.user_id)
        if membership is None or membership["membership"] != "join":
            raise forbidden("You are not in the room")
        row = await event_store.event_by_id(self.database.pool, event_id)
        if row is None or row["room_nid"] != room.room_nid:
            raise not_found("Unknown event")
        now = int(time.time() * 1000)
        async with self.database.stream_lock("receipts"):
            stored = await receipts.put_receipt(
                self.database.pool, room.room_nid, requester.user_id, receipt_type, thread_id or "", event_id, now,
            )
        if stored is None:
            return
        if self.on_read is not None:
            self.on_read(requester.user_id)
        self.notifier.notify([requester.user_id] if receipt_type == "m.read.private" else await self.members(room_id))
        if receipt_type == "m.read" and self.observer is not None:
            await self.observer(room_id, requester.user_id, event_id, now, thread_id)  # type: ignore[arg-type]

    async def put_remote(self, room_id: str, user_id: str, event_id: str, ts: int, thread_id: str | None) -> None:
        """A read receipt another server sent for one of its users in a room we share."""
        room = await self.store.room(room_id)
        if room is None:
            return
        membership = await event_store.membership_of(self.database.pool, room.room_nid, user_id)
        row = await event_store.event_by_id(self.database.pool, event_id)
        if membership is None or membership["membership"] != "join" or row is None or row["room_nid"] != room.room_nid:
            return
        async with self.database.stream_lock("receipts"):
            stored = await receipts.put_receipt(
                self.database.pool, room.room_nid, user_id, "m.read", thread_id or "", event_id, ts
            )
        if stored is not None:
            self.notifier.notify(await self.members(room_id))

    async def position(self) -> int:
        async with self.database.stream_lock("receipts"):
            return await receipts.last_receipt_position(self.database.pool)

    async def receipt_events(
        self, user_id: str, room_nids: dict[int, str], since: int, upto: int
    ) -> dict[str, dict]:
        """`m.receipt` events per room id for receipts after `since` (private ones only for their owner)."""
        found: dict[str, dict] = {}
        for row in await receipts.receipts_since(self.database.pool, list(room_nids), since, upto):
            if row["receipt_type"] == "m.read.private" and row["user_id"] != user_id:
                continue
            content = found.setdefault(room_nids[row["room_nid"]], {})
            entry: dict[str, object] = {"ts": row["ts"]}
            if row["thread_id"]:
                entry["thread_id"] = row["thread_id"]
            content.setdefault(row["event_id"], {}).setdefault(row["receipt_type"], {})[row["user_id"]] = entry
        return {room_id: {"type": "m.receipt", "content": content} for room_id, content in found.items()}
