"""The `devices` table."""

from __future__ import annotations

from typing import Any, Iterable

from homeserver.storage.users import Executor


async def ensure_device(conn: Executor, user_id: str, device_id: str, display_name: str | None) -> None:
    """Create the device, or keep it (and its name unless a new one is given)."""
    await conn.execute(
        "INSERT INTO devices (user_id, device_id, display_name) VALUES ($1, $2, $3) "
        "ON CONFLICT (user_id, device_id) DO UPDATE "
        "SET display_name = COALESCE(EXCLUDED.display_name, devices.display_name)",
        user_id,
        device_id,
        display_name,
    )


async def list_devices(conn: Executor, user_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT device_id, display_name, last_seen_ip, last_seen_ts FROM devices "
        "WHERE user_id = $1 ORDER BY device_id",
        user_id,
    )
    return [dict(r) for r in rows]


async def list_devices_with_agents(conn: Executor, user_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT device_id, last_seen_ip, last_seen_ts, last_seen_user_agent FROM devices WHERE user_id = $1 "
        "ORDER BY device_id", user_id,
    )
    return [dict(r) for r in rows]


async def get_device(conn: Executor, user_id: str, device_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT device_id, display_name, last_seen_ip, last_seen_ts FROM devices "
        "WHERE user_id = $1 AND device_id = $2",
        user_id,
        device_id,
    )
    return dict(row) if row is not None else None


async def set_display_name(conn: Executor, user_id: str, device_id: str, name: str | None) -> bool:
    status = await conn.execute(
        "UPDATE devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2", user_id, device_id, name
    )
    return status != "UPDATE 0"


async def delete_devices(conn: Executor, user_id: str, device_ids: Iterable[str] | None) -> None:
    """Delete the given devices (all of the user's when None), with their tokens and pushers (a
    phone logged out must stop being sent notifications)."""
    ids = None if device_ids is None else list(device_ids)
    for table in ("access_tokens", "refresh_tokens", "devices"):
        await conn.execute(
            f"DELETE FROM {table} WHERE user_id = $1 AND ($2::text[] IS NULL OR device_id = ANY($2))",
            user_id,
            ids,
        )
    await conn.execute(
        "DELETE FROM pushers WHERE user_id = $1 AND ($2::text[] IS NULL OR access_token_device = ANY($2))",
        user_id, ids,
    )


async def record_last_seen(conn: Executor, seen: list[tuple[str, str, str, int, str | None]]) -> None:
    """Batch update of (user_id, device_id, ip, ts, user_agent)."""
    await conn.executemany(
        "UPDATE devices SET last_seen_ip = $3, last_seen_ts = $4, last_seen_user_agent = $5 "
        "WHERE user_id = $1 AND device_id = $2",
        seen,
    )
