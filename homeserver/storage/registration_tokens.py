"""The `registration_tokens` table (Synapse's admin-managed registration tokens)."""

from __future__ import annotations

from typing import Any

from homeserver.storage.users import Executor

_COLUMNS = "token, uses_allowed, pending, completed, expiry_time"


async def create_token(
    conn: Executor, token: str, uses_allowed: int | None, expiry_time: int | None
) -> bool:
    row = await conn.fetchrow(
        "INSERT INTO registration_tokens (token, uses_allowed, expiry_time) VALUES ($1, $2, $3) "
        "ON CONFLICT (token) DO NOTHING RETURNING token",
        token, uses_allowed, expiry_time,
    )
    return row is not None


async def get_token(conn: Executor, token: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM registration_tokens WHERE token = $1", token)
    return dict(row) if row is not None else None


async def list_tokens(conn: Executor) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(f"SELECT {_COLUMNS} FROM registration_tokens ORDER BY token")]


async def update_token(
    conn: Executor, token: str, changes: dict[str, int | None]
) -> dict[str, Any] | None:
    if changes:
        sets = ", ".join(f"{column} = ${i + 2}" for i, column in enumerate(changes))
        await conn.execute(f"UPDATE registration_tokens SET {sets} WHERE token = $1", token, *changes.values())
    return await get_token(conn, token)


async def delete_token(conn: Executor, token: str) -> bool:
    return await conn.execute("DELETE FROM registration_tokens WHERE token = $1", token) != "DELETE 0"


async def use_token(conn: Executor, token: str, now_ms: int) -> bool:
    """Count one completed registration against the token, if it is still valid."""
    row = await conn.fetchrow(
        "UPDATE registration_tokens SET completed = completed + 1 WHERE token = $1 "
        "AND (uses_allowed IS NULL OR completed < uses_allowed) "
        "AND (expiry_time IS NULL OR expiry_time > $2) RETURNING token",
        token, now_ms,
    )
    return row is not None
