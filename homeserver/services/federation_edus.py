"""EDUs both ways: typing, read receipts, presence, device list and signing key updates, to-device.

Inbound, an EDU about a user counts only when that user belongs to the
sending server and, for a room, when the server is in the room and not
denied by its server ACL. Outbound, our users' typing and public read
receipts go to the room's other servers, and their presence (when enabled)
to the servers sharing a room with them; device changes and to-device
messages are queued by the encryption service itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from homeserver.core.ids import server_of
from homeserver.errors import MatrixError
from homeserver.services.e2ee import EndToEnd
from homeserver.services.ephemeral import Receipts, Typing
from homeserver.services.events import EventStore
from homeserver.services.federation_events import FederationEvents
from homeserver.services.federation_sender import FederationSender
from homeserver.services.federation_transactions import FederationTransactions
from homeserver.services.presence import Presence
from homeserver.storage import events as event_store
from homeserver.storage import federation as federation_store
from homeserver.storage.database import Database

logger = logging.getLogger(__name__)

# How long a remote user counts as typing when its server does not say it stopped.
REMOTE_TYPING_TIMEOUT_MS = 30_000


class FederationEdus:
    def __init__(
        self, server_name: str, database: Database, store: EventStore, sender: FederationSender,
        events: FederationEvents, typing: Typing, receipts: Receipts, presence: Presence, e2ee: EndToEnd,
    ) -> None:
        self.server_name = server_name
        self.database = database
        self.store = store
        self.sender = sender
        self.events = events
        self.typing = typing
        self.receipts = receipts
        self.presence = presence
        self.e2ee = e2ee
        self._tasks: set[asyncio.Task[None]] = set()

    def install(self, transactions: FederationTransactions) -> None:
        transactions.edu_handlers.update({
            "m.typing": self.on_typing,
            "m.receipt": self.on_receipt,
            "m.presence": self.on_presence,
            "m.device_list_update": self.on_device_list_update,
            "m.signing_key_update": self.on_signing_key_update,
            "m.direct_to_device": self.e2ee.receive_to_device,
        })
        self.typing.observer = self.typing_changed
        self.receipts.observer = self.receipt_posted
        self.presence.observer = self.presence_changed

    def _local(self, user_id: str) -> bool:
        return server_of(user_id) == self.server_name

    async def _other_servers(self, room_id: str) -> list[str]:
        room = await self.store.room(room_id)
        if room is None:
            return []
        return [s for s in await federation_store.servers_in_room(self.database.pool, room.room_nid)
                if s != self.server_name]

    # ---- outbound --------------------------------------------------------------------------

    def typing_changed(self, room_id: str, user_id: str, typing: bool) -> None:
        if not self._local(user_id):
            return
        task = asyncio.get_running_loop().create_task(self._send_room_edu(
            room_id, "m.typing", {"room_id": room_id, "user_id": user_id, "typing": typing}))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def receipt_posted(self, room_id: str, user_id: str, event_id: str, ts: int, thread_id: str | None) -> None:
        data: dict[str, Any] = {"ts": ts}
        if thread_id:
            data["thread_id"] = thread_id
        await self._send_room_edu(room_id, "m.receipt", {
            room_id: {"m.read": {user_id: {"event_ids": [event_id], "data": data}}}})

    async def _send_room_edu(self, room_id: str, edu_type: str, content: dict[str, Any]) -> None:
        servers = await self._other_servers(room_id)
        if servers:
            await self.sender.send_edus(servers, edu_type, content)

    async def presence_changed(self, user_id: str, content: dict[str, Any]) -> None:
        if not self._local(user_id):
            return
        servers = set(await federation_store.servers_sharing_rooms(self.database.pool, user_id)) - {self.server_name}
        if servers:
            await self.sender.send_edus(servers, "m.presence", {"push": [{"user_id": user_id, **content}]})

    # ---- inbound ---------------------------------------------------------------------------

    async def _room_member_server(self, origin: str, room_id: Any, user_id: Any) -> bool:
        """Whether `user_id` of `origin` is joined to a room we know and the ACL lets `origin` in."""
        if not isinstance(room_id, str) or not isinstance(user_id, str) or server_of(user_id) != origin:
            return False
        room = await self.store.room(room_id)
        if room is None:
            return False
        try:
            await self.events.check_acl(room, origin)
        except MatrixError:
            return False
        membership = await event_store.membership_of(self.database.pool, room.room_nid, user_id)
        return membership is not None and membership["membership"] == "join"

    async def on_typing(self, origin: str, content: Any) -> None:
        if not isinstance(content, dict):
            return
        room_id, user_id, typing = content.get("room_id"), content.get("user_id"), content.get("typing")
        if isinstance(typing, bool) and await self._room_member_server(origin, room_id, user_id):
            self.typing.set_typing(room_id, user_id, typing, REMOTE_TYPING_TIMEOUT_MS)

    async def on_receipt(self, origin: str, content: Any) -> None:
        if not isinstance(content, dict):
            return
        for room_id, by_type in content.items():
            reads = by_type.get("m.read") if isinstance(by_type, dict) else None
            if not isinstance(reads, dict):
                continue
            for user_id, receipt in reads.items():
                if not isinstance(receipt, dict) or not await self._room_member_server(origin, room_id, user_id):
                    continue
                event_ids = receipt.get("event_ids")
                data = receipt.get("data") if isinstance(receipt.get("data"), dict) else {}
                ts = data.get("ts") if isinstance(data.get("ts"), int) else 0
                thread_id = data.get("thread_id") if isinstance(data.get("thread_id"), str) else None
                if isinstance(event_ids, list) and event_ids and isinstance(event_ids[-1], str):
                    await self.receipts.put_remote(room_id, user_id, event_ids[-1], ts, thread_id)

    async def on_presence(self, origin: str, content: Any) -> None:
        pushes = content.get("push") if isinstance(content, dict) else None
        for entry in pushes if isinstance(pushes, list) else []:
            if not isinstance(entry, dict):
                continue
            user_id, state = entry.get("user_id"), entry.get("presence")
            if not isinstance(user_id, str) or server_of(user_id) != origin or not isinstance(state, str):
                continue
            status_msg = entry.get("status_msg") if isinstance(entry.get("status_msg"), str) else None
            ago = entry.get("last_active_ago") if isinstance(entry.get("last_active_ago"), int) else 0
            await self.presence.set_remote(user_id, state, status_msg, ago)

    async def on_device_list_update(self, origin: str, content: Any) -> None:
        await self._keys_changed(origin, "m.device_list_update", content)

    async def on_signing_key_update(self, origin: str, content: Any) -> None:
        await self._keys_changed(origin, "m.signing_key_update", content)

    async def _keys_changed(self, origin: str, edu_type: str, content: Any) -> None:
        user_id = content.get("user_id") if isinstance(content, dict) else None
        if isinstance(user_id, str) and server_of(user_id) == origin:
            await self.e2ee.remote_keys_changed(user_id, edu_type, content)
