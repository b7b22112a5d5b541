"""The `media` and `media_thumbnails` tables."""

from __future__ import annotations

from typing import Any

from homeserver.storage.users import Executor


async def add_media(
    conn: Executor, media_id: str, media_type: str | None, length: int | None, upload_name: str | None,
    user_id: str, now_ms: int, pending: bool, authenticated: bool,
) -> None:
    await conn.execute(
        "INSERT INTO media (media_id, media_type, media_length, upload_name, user_id, created_ts, pending, authenticated) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        media_id, media_type, length, upload_name, user_id, now_ms, pending, authenticated,
    )


async def complete_media(
    conn: Executor, media_id: str, media_type: str, length: int, upload_name: str | None
) -> bool:
    status = await conn.execute(
        "UPDATE media SET media_type = $2, media_length = $3, upload_name = $4, pending = FALSE "
        "WHERE media_id = $1 AND pending", media_id, media_type, length, upload_name,
    )
    return status != "UPDATE 0"


async def get_media(conn: Executor, media_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT media_id, media_type, media_length, upload_name, user_id, created_ts, pending, authenticated "
        "FROM media WHERE media_id = $1", media_id,
    )
    return dict(row) if row is not None else None


async def pending_uploads(conn: Executor, user_id: str, since_ms: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM media WHERE user_id = $1 AND pending AND created_ts > $2", user_id, since_ms
    )


async def get_thumbnail(conn: Executor, media_id: str, width: int, height: int, method: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT media_type, media_length FROM media_thumbnails WHERE media_id = $1 AND width = $2 AND height = $3 "
        "AND method = $4", media_id, width, height, method,
    )
    return dict(row) if row is not None else None


async def add_thumbnail(
    conn: Executor, media_id: str, width: int, height: int, method: str, media_type: str, length: int
) -> None:
    await conn.execute(
        "INSERT INTO media_thumbnails (media_id, width, height, method, media_type, media_length) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING", media_id, width, height, method, media_type, length,
    )


async def get_remote_media(conn: Executor, server_name: str, media_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT media_type, media_length, upload_name FROM remote_media WHERE server_name = $1 AND media_id = $2",
        server_name, media_id,
    )
    return dict(row) if row is not None else None


async def add_remote_media(
    conn: Executor, server_name: str, media_id: str, media_type: str, length: int, upload_name: str | None,
    now_ms: int,
) -> None:
    await conn.execute(
        "INSERT INTO remote_media (server_name, media_id, media_type, media_length, upload_name, fetched_ts) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        server_name, media_id, media_type, length, upload_name, now_ms,
    )


async def get_remote_thumbnail(
    conn: Executor, server_name: str, media_id: str, width: int, height: int, method: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT media_type, media_length FROM remote_media_thumbnails WHERE server_name = $1 AND media_id = $2 "
        "AND width = $3 AND height = $4 AND method = $5", server_name, media_id, width, height, method,
    )
    return dict(row) if row is not None else None


async def add_remote_thumbnail(
    conn: Executor, server_name: str, media_id: str, width: int, height: int, method: str, media_type: str,
    length: int,
) -> None:
    await conn.execute(
        "INSERT INTO remote_media_thumbnails (server_name, media_id, width, height, method, media_type, media_length) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        server_name, media_id, width, height, method, media_type, length,
    )
