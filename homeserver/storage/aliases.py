"""The `room_aliases` table: local aliases."""

from __future__ import annotations

from homeserver.storage.users import Executor


async def create_alias(conn: Executor, alias: str, room_id: str, creator: str) -> bool:
    row = await conn.fetchrow(
        "INSERT INTO room_aliases (room_alias, room_id, creator) VALUES ($1, $2, $3) "
        "ON CONFLICT (room_alias) DO NOTHING RETURNING room_alias",
        alias, room_id, creator,
    )
    return row is not None


async def resolve_alias(conn: Executor, alias: str) -> str | None:
    return await conn.fetchval("SELECT room_id FROM room_aliases WHERE room_alias = $1", alias)


async def alias_creator(conn: Executor, alias: str) -> str | None:
    return await conn.fetchval("SELECT creator FROM room_aliases WHERE room_alias = $1", alias)


async def delete_alias(conn: Executor, alias: str) -> None:
    await conn.execute("DELETE FROM room_aliases WHERE room_alias = $1", alias)


async def aliases_of_room(conn: Executor, room_id: str) -> list[str]:
    rows = await conn.fetch("SELECT room_alias FROM room_aliases WHERE room_id = $1 ORDER BY room_alias", room_id)
    return [r["room_alias"] for r in rows]


async def move_aliases(conn: Executor, old_room_id: str, new_room_id: str) -> None:
    await conn.execute("UPDATE room_aliases SET room_id = $2 WHERE room_id = $1", old_room_id, new_room_id)
