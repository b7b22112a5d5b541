"""The `access_tokens` and `refresh_tokens` tables (tokens stored as SHA-256 hashes)."""

from __future__ import annotations

from typing import Any

from homeserver.storage.users import Executor


async def add_access_token(
    conn: Executor, token_hash: bytes, user_id: str, device_id: str, now_ms: int,
    expires_ts: int | None, refresh_token_hash: bytes | None,
) -> None:
    await conn.execute(
        "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, expires_ts, refresh_token_hash) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        token_hash, user_id, device_id, now_ms, expires_ts, refresh_token_hash,
    )


async def add_refresh_token(
    conn: Executor, token_hash: bytes, user_id: str, device_id: str, now_ms: int, expires_ts: int | None
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts, expires_ts) "
        "VALUES ($1, $2, $3, $4, $5)",
        token_hash, user_id, device_id, now_ms, expires_ts,
    )


async def lookup_access_token(conn: Executor, token_hash: bytes) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT t.user_id, t.device_id, t.expires_ts, u.is_guest, u.deactivated "
        "FROM access_tokens t JOIN users u USING (user_id) WHERE t.token_hash = $1",
        token_hash,
    )
    return dict(row) if row is not None else None


async def take_refresh_token(conn: Executor, token_hash: bytes) -> dict[str, Any] | None:
    """Remove a refresh token (and the access tokens it issued), returning who it belonged to."""
    row = await conn.fetchrow(
        "DELETE FROM refresh_tokens WHERE token_hash = $1 RETURNING user_id, device_id, expires_ts", token_hash
    )
    if row is None:
        return None
    await conn.execute("DELETE FROM access_tokens WHERE refresh_token_hash = $1", token_hash)
    return dict(row)


async def delete_access_token(conn: Executor, token_hash: bytes) -> None:
    await conn.execute("DELETE FROM access_tokens WHERE token_hash = $1", token_hash)


async def delete_device_tokens(conn: Executor, user_id: str, device_id: str) -> None:
    await conn.execute("DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2", user_id, device_id)
    await conn.execute("DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2", user_id, device_id)


async def device_has_tokens(conn: Executor, user_id: str, device_id: str) -> bool:
    return await conn.fetchval(
        "SELECT 1 FROM access_tokens WHERE user_id = $1 AND device_id = $2 LIMIT 1", user_id, device_id
    ) is not None
