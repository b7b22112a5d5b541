"""Dehydrated devices (MSC3814): which device is a user's dehydrated one, and its data."""

from __future__ import annotations

import json
from typing import Any

from homeserver.storage.users import Executor


async def get(conn: Executor, user_id: str) -> tuple[str, dict[str, Any]] | None:
    row = await conn.fetchrow(
        "SELECT device_id, device_data::text AS device_data FROM dehydrated_devices WHERE user_id = $1", user_id
    )
    return (row["device_id"], json.loads(row["device_data"])) if row is not None else None


async def put(conn: Executor, user_id: str, device_id: str, device_data: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO dehydrated_devices (user_id, device_id, device_data) VALUES ($1, $2, $3::jsonb) "
        "ON CONFLICT (user_id) DO UPDATE SET device_id = EXCLUDED.device_id, device_data = EXCLUDED.device_data",
        user_id, device_id, json.dumps(device_data),
    )
