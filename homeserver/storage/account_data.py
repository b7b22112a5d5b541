"""The `account_data` table: global (room_id '') and per-room, with stream positions for sync."""

from __future__ import annotations

import json
from typing import Any

from homeserver.storage.users import Executor


async def put_account_data(
    conn: Executor, user_id: str, room_id: str, data_type: str, content: dict[str, Any]
) -> int:
    """Store and return the new stream position."""
    return await conn.fetchval(
        "INSERT INTO account_data (user_id, room_id, data_type, content) VALUES ($1, $2, $3, $4::jsonb) "
        "ON CONFLICT (user_id, room_id, data_type) DO UPDATE "
        "SET content = EXCLUDED.content, stream_id = nextval('account_data_stream') RETURNING stream_id",
        user_id, room_id, data_type, json.dumps(content),
    )


async def get_account_data(conn: Executor, user_id: str, room_id: str, data_type: str) -> dict[str, Any] | None:
    raw = await conn.fetchval(
        "SELECT content::text FROM account_data WHERE user_id = $1 AND room_id = $2 AND data_type = $3",
        user_id, room_id, data_type,
    )
    return json.loads(raw) if raw is not None else None


async def account_data_since(
    conn: Executor, user_id: str, since: int
) -> list[tuple[str, str, dict[str, Any], int]]:
    """(room_id, type, content, stream_id) changed after `since`, oldest first (for sync)."""
    rows = await conn.fetch(
        "SELECT room_id, data_type, content::text AS content, stream_id FROM account_data "
        "WHERE user_id = $1 AND stream_id > $2 ORDER BY stream_id",
        user_id, since,
    )
    return [(r["room_id"], r["data_type"], json.loads(r["content"]), r["stream_id"]) for r in rows]


async def last_account_data_position(conn: Executor) -> int:
    return await conn.fetchval("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM account_data_stream")
