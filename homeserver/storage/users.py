"""The `users` table."""

from __future__ import annotations

from typing import Any

from asyncpg import Connection
from asyncpg.pool import Pool

Executor = Connection | Pool


async def create_user(
    conn: Executor, user_id: str, password_hash: str | None, admin: bool, now_ms: int
) -> bool:
    """Insert an account; False if the user id is already taken (deactivated ones included)."""
    row = await conn.fetchrow(
        "INSERT INTO users (user_id, password_hash, admin, creation_ts) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (user_id) DO NOTHING RETURNING user_id",
        user_id,
        password_hash,
        admin,
        now_ms,
    )
    return row is not None


async def get_user(conn: Executor, user_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT user_id, password_hash, admin, is_guest, deactivated, creation_ts "
        "FROM users WHERE user_id = $1",
        user_id,
    )
    return dict(row) if row is not None else None


async def user_exists(conn: Executor, user_id: str) -> bool:
    return await conn.fetchval("SELECT 1 FROM users WHERE user_id = $1", user_id) is not None


async def set_password_hash(conn: Executor, user_id: str, password_hash: str | None) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash)


async def mark_deactivated(conn: Executor, user_id: str) -> None:
    await conn.execute(
        "UPDATE users SET deactivated = TRUE, password_hash = NULL WHERE user_id = $1", user_id
    )
