"""The `users` table."""

from __future__ import annotations

from asyncpg import Connection
from asyncpg.pool import Pool


async def create_user(
    conn: Connection | Pool, user_id: str, password_hash: str | None, admin: bool, now_ms: int
) -> bool:
    """Insert an account; False if the user id is already taken."""
    row = await conn.fetchrow(
        "INSERT INTO users (user_id, password_hash, admin, creation_ts) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (user_id) DO NOTHING RETURNING user_id",
        user_id,
        password_hash,
        admin,
        now_ms,
    )
    return row is not None


async def get_user(conn: Connection | Pool, user_id: str) -> dict | None:
    row = await conn.fetchrow(
        "SELECT user_id, password_hash, admin, is_guest, deactivated, creation_ts "
        "FROM users WHERE user_id = $1",
        user_id,
    )
    return dict(row) if row is not None else None
