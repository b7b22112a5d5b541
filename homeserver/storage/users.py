"""The `users` table."""

from __future__ import annotations

from typing import Any

from asyncpg import Connection
from asyncpg.pool import Pool

Executor = Connection | Pool


async def create_user(
    conn: Executor, user_id: str, password_hash: str | None, admin: bool, now_ms: int, is_guest: bool = False
) -> bool:
    """Insert an account; False if the user id is already taken (deactivated ones included)."""
    row = await conn.fetchrow(
        "INSERT INTO users (user_id, password_hash, admin, creation_ts, is_guest) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (user_id) DO NOTHING RETURNING user_id",
        user_id,
        password_hash,
        admin,
        now_ms,
        is_guest,
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


async def upgrade_guest(conn: Executor, user_id: str, password_hash: str | None) -> bool:
    """Make a guest account a full one; False when it is not a guest account."""
    status = await conn.execute(
        "UPDATE users SET is_guest = FALSE, password_hash = $2 WHERE user_id = $1 AND is_guest", user_id, password_hash
    )
    return status != "UPDATE 0"


async def next_guest_number(conn: Executor) -> int:
    """Guests get numeric localparts (as in Synapse), which registered users cannot take."""
    return await conn.fetchval("SELECT nextval('guest_user_ids')")


async def guests_among(conn: Executor, user_ids: list[str]) -> list[str]:
    rows = await conn.fetch("SELECT user_id FROM users WHERE user_id = ANY($1::text[]) AND is_guest", user_ids)
    return [r["user_id"] for r in rows]
