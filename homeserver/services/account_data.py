"""Account data, global and per room, stored with stream positions that sync reads."""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.services.notifier import Notifier
from homeserver.services.sessions import Requester
from homeserver.storage import account_data
from homeserver.storage.database import Database

# Types the server manages through their own endpoints (read markers, push rules).
SERVER_MANAGED = {"": {"m.push_rules"}, "room": {"m.fully_read"}}
MAX_TYPE_LENGTH = 255


class AccountData:
    def __init__(self, database: Database, notifier: Notifier) -> None:
        self.database = database
        self.notifier = notifier

    @staticmethod
    def _check(requester: Requester, user_id: str, room_id: str, data_type: str) -> None:
        if user_id != requester.user_id:
            raise forbidden("Cannot access account data of other users.")
        if room_id and (not room_id.startswith("!") or len(room_id) > 255):
            raise invalid_param(f"{room_id!r} is not a room id")
        if not data_type or len(data_type) > MAX_TYPE_LENGTH:
            raise invalid_param("Invalid account data type")

    async def put(self, requester: Requester, user_id: str, room_id: str, data_type: str, content: dict[str, Any]) -> int:
        self._check(requester, user_id, room_id, data_type)
        if data_type in SERVER_MANAGED["room" if room_id else ""]:
            raise MatrixError(405, "M_BAD_JSON", f"Cannot set {data_type} through this API.")
        async with self.database.stream_lock("account_data"):
            position = await account_data.put_account_data(self.database.pool, user_id, room_id, data_type, content)
        self.notifier.notify([user_id])
        return position

    async def ignored_users(self, user_id: str) -> set[str]:
        """Users in `m.ignored_user_list`, whose events the user does not see."""
        content = await account_data.get_account_data(self.database.pool, user_id, "", "m.ignored_user_list") or {}
        ignored = content.get("ignored_users")
        return set(ignored) if isinstance(ignored, dict) else set()

    async def put_internal(self, user_id: str, room_id: str, data_type: str, content: dict[str, Any]) -> None:
        """Server-managed types (the m.fully_read marker), set through their own endpoints."""
        async with self.database.stream_lock("account_data"):
            await account_data.put_account_data(self.database.pool, user_id, room_id, data_type, content)
        self.notifier.notify([user_id])

    async def follow_upgrade(self, user_id: str, old_room_id: str, new_room_id: str) -> None:
        """A user arriving in an upgraded room keeps what they had of the old one (as Synapse):
        its tags, and its place in `m.direct`. One transaction; nothing is overwritten."""
        async with self.database.stream_lock("account_data"), self.database.pool.acquire() as conn, \
                conn.transaction():
            old_tags = await account_data.get_account_data(conn, user_id, old_room_id, "m.tag")
            new_tags = await account_data.get_account_data(conn, user_id, new_room_id, "m.tag")
            if old_tags and old_tags.get("tags") and not (new_tags and new_tags.get("tags")):
                await account_data.put_account_data(conn, user_id, new_room_id, "m.tag", old_tags)
            direct = await account_data.get_account_data(conn, user_id, "", "m.direct")
            if isinstance(direct, dict):
                moved = {
                    other: [*rooms, new_room_id]
                    if isinstance(rooms, list) and old_room_id in rooms and new_room_id not in rooms else rooms
                    for other, rooms in direct.items()
                }
                if moved != direct:
                    await account_data.put_account_data(conn, user_id, "", "m.direct", moved)
        self.notifier.notify([user_id])

    async def of_room(self, user_id: str, room_id: str) -> list[dict[str, Any]]:
        """The user's account data for one room (tags among it), as events."""
        rows = await account_data.account_data_since(self.database.pool, user_id, 0)
        return [{"type": data_type, "content": content} for row_room, data_type, content, _s in rows
                if row_room == room_id]

    async def tags(self, requester: Requester, user_id: str, room_id: str) -> dict[str, Any]:
        self._check(requester, user_id, room_id, "m.tag")
        content = await account_data.get_account_data(self.database.pool, user_id, room_id, "m.tag") or {}
        tags = content.get("tags")
        return tags if isinstance(tags, dict) else {}

    async def set_tag(
        self, requester: Requester, user_id: str, room_id: str, tag: str, body: dict[str, Any] | None
    ) -> None:
        """Add (with `body`) or remove (None) a tag."""
        if len(tag) > MAX_TYPE_LENGTH:
            raise invalid_param("Tag is too long")
        if body is not None and "order" in body and (
            not isinstance(body["order"], (int, float)) or isinstance(body["order"], bool)
        ):
            raise MatrixError(400, "M_BAD_JSON", "order must be a number")
        tags = dict(await self.tags(requester, user_id, room_id))
        if body is None:
            tags.pop(tag, None)
        else:
            tags[tag] = body
        await self.put(requester, user_id, room_id, "m.tag", {"tags": tags})

    async def get(self, requester: Requester, user_id: str, room_id: str, data_type: str) -> dict[str, Any]:
        self._check(requester, user_id, room_id, data_type)
        content = await account_data.get_account_data(self.database.pool, user_id, room_id, data_type)
        if content is None:
            raise not_found("Account data not found")
        return content
