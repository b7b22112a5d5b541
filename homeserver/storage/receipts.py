"""The `receipts` table: read receipts per room, user, type and thread."""

from __future__ import annotations

from typing import Any

from homeserver.storage.users import Executor


async def put_receipt(
    conn: Executor, room_nid: int, user_id: str, receipt_type: str, thread_id: str, event_id: str, ts: int
) -> int | None:
    """Store a receipt; None when it would move back to an older event (receipts only advance, as
    in Synapse), which leaves the one stored untouched."""
    return await conn.fetchval(
        "INSERT INTO receipts (room_nid, user_id, receipt_type, thread_id, event_id, ts) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (room_nid, user_id, receipt_type, thread_id) "
        "DO UPDATE SET event_id = EXCLUDED.event_id, ts = EXCLUDED.ts, stream_id = nextval('receipts_stream') "
        "WHERE NOT COALESCE((SELECT n.stream_ordering FROM events n WHERE n.event_id = EXCLUDED.event_id) "
        "< (SELECT o.stream_ordering FROM events o WHERE o.event_id = receipts.event_id), false) "
        "RETURNING stream_id",
        room_nid, user_id, receipt_type, thread_id, event_id, ts,
    )


async def receipts_since(conn: Executor, room_nids: list[int], since: int, upto: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT room_nid, user_id, receipt_type, thread_id, event_id, ts FROM receipts "
        "WHERE room_nid = ANY($1::bigint[]) AND stream_id > $2 AND stream_id <= $3",
        room_nids, since, upto,
    )
    return [dict(r) for r in rows]


async def last_receipt_position(conn: Executor) -> int:
    return await conn.fetchval("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM receipts_stream")
