"""Presence (client-server API presence.yaml), in memory, for users who share a room.

With `presence: {enabled: false}` the endpoints still answer (everyone is
offline) and sync carries no presence, as Synapse does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Collection

from homeserver.errors import bad_json, forbidden
from homeserver.services.notifier import Notifier
from homeserver.storage import events as event_store
from homeserver.storage.database import Database

STATES = ("online", "offline", "unavailable")
MAX_STATUS_LENGTH = 1024
# A user counts as currently active this long after their last action.
ACTIVE_WINDOW_MS = 60_000


@dataclass
class _Presence:
    state: str
    status_msg: str | None
    last_active_ms: int
    serial: int


class Presence:
    def __init__(self, enabled: bool, database: Database, notifier: Notifier) -> None:
        self.enabled = enabled
        self.database = database
        self.notifier = notifier
        self.serial = int(time.time() * 1000)
        self._users: dict[str, _Presence] = {}
        self.observer: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
        """Told of every change (federation sends our users' presence to servers sharing a room)."""

    async def set(
        self, user_id: str, state: str, status_msg: Any = None, keep_message: bool = False, from_sync: bool = False
    ) -> None:
        """Set a user's presence. A sync's `set_presence=online` only brings an offline user online:
        it does not override `unavailable` the user chose (as Synapse)."""
        if state not in STATES:
            raise bad_json(f"presence must be one of {', '.join(STATES)}")
        if status_msg is not None and (not isinstance(status_msg, str) or len(status_msg) > MAX_STATUS_LENGTH):
            raise bad_json("status_msg must be a string of at most 1024 characters")
        if not self.enabled:
            return
        now = int(time.time() * 1000)
        current = self._users.get(user_id)
        if from_sync and state == "online" and current is not None and current.state == "unavailable":
            state = "unavailable"
        if keep_message and current is not None:
            status_msg = current.status_msg
        if current is not None and current.state == state and current.status_msg == status_msg:
            current.last_active_ms = now
            return
        self.serial = max(self.serial + 1, now)
        self._users[user_id] = entry = _Presence(state, status_msg, now, self.serial)
        self.notifier.notify(await event_store.users_sharing_rooms(self.database.pool, user_id))
        if self.observer is not None:
            await self.observer(user_id, self._content(user_id, entry))

    async def set_remote(self, user_id: str, state: str, status_msg: str | None, last_active_ago: int) -> None:
        """Presence another server sent for one of its users."""
        if not self.enabled or state not in STATES:
            return
        now = int(time.time() * 1000)
        self.serial = max(self.serial + 1, now)
        self._users[user_id] = _Presence(state, status_msg, now - max(0, last_active_ago), self.serial)
        self.notifier.notify(await event_store.users_sharing_rooms(self.database.pool, user_id))

    def _content(self, user_id: str, entry: _Presence | None) -> dict[str, Any]:
        if entry is None:
            return {"presence": "offline"}
        now = int(time.time() * 1000)
        content: dict[str, Any] = {
            "presence": entry.state,
            "last_active_ago": now - entry.last_active_ms,
            "currently_active": entry.state == "online" and now - entry.last_active_ms < ACTIVE_WINDOW_MS,
        }
        if entry.status_msg is not None:
            content["status_msg"] = entry.status_msg
        return content

    async def get(self, requester_id: str, user_id: str) -> dict[str, Any]:
        if requester_id != user_id and user_id not in await event_store.users_sharing_rooms(
            self.database.pool, requester_id
        ):
            raise forbidden("You do not share a room with this user")
        return self._content(user_id, self._users.get(user_id))

    def snapshot(self, user_ids: Collection[str]) -> list[dict[str, Any]]:
        """`m.presence` events of these users as they are now (offline when unknown)."""
        if not self.enabled:
            return []
        return [{"type": "m.presence", "sender": u, "content": self._content(u, self._users.get(u))}
                for u in sorted(user_ids)]

    async def events_since(self, user_id: str, since: int | None, also: Collection[str] = ()) -> list[dict[str, Any]]:
        """`m.presence` events of users sharing a room with `user_id`, changed after `since`, and
        of the users in `also` (just met in a room) whether changed or not, offline if unknown."""
        if not self.enabled:
            return []
        changed = [u for u, p in self._users.items() if since is None or p.serial > since]
        changed += sorted(set(also) - set(changed))
        if not changed:
            return []
        visible = await event_store.users_sharing_rooms(self.database.pool, user_id)
        return [
            {"type": "m.presence", "sender": u, "content": self._content(u, self._users.get(u))}
            for u in changed if u in visible
        ]
