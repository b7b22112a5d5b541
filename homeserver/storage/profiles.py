"""The `profiles` table."""

from __future__ import annotations

from typing import Any

from homeserver.storage.users import Executor


async def get_profile(conn: Executor, user_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT displayname, avatar_url FROM profiles WHERE user_id = $1", user_id)
    return dict(row) if row is not None else None


async def set_profile_field(conn: Executor, user_id: str, field: str, value: str | None) -> None:
    if field not in ("displayname", "avatar_url"):
        raise ValueError(field)
    await conn.execute(
        f"INSERT INTO profiles (user_id, {field}) VALUES ($1, $2) "
        f"ON CONFLICT (user_id) DO UPDATE SET {field} = EXCLUDED.{field}",
        user_id, value,
    )
