"""Server keys, outbound federation queues and backoff, inbound transactions, servers in rooms."""

from __future__ import annotations

from typing import Any, Iterable

from homeserver.storage.users import Executor


async def store_server_keys(conn: Executor, rows: list[tuple[str, str, str, int, int | None, str, int]]) -> None:
    """(server, key id, verify key, valid_until_ts, expired_ts, key document, fetched_ts) rows; a newer
    document replaces an older one."""
    await conn.executemany(
        "INSERT INTO server_keys (server_name, key_id, verify_key, valid_until_ts, expired_ts, key_json, fetched_ts) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (server_name, key_id) DO UPDATE SET "
        "verify_key = EXCLUDED.verify_key, valid_until_ts = EXCLUDED.valid_until_ts, expired_ts = EXCLUDED.expired_ts, "
        "key_json = EXCLUDED.key_json, fetched_ts = EXCLUDED.fetched_ts "
        "WHERE server_keys.valid_until_ts <= EXCLUDED.valid_until_ts",
        rows,
    )


async def server_keys(conn: Executor, server_name: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT key_id, verify_key, valid_until_ts, expired_ts, key_json FROM server_keys WHERE server_name = $1",
        server_name,
    )
    return [dict(r) for r in rows]


async def servers_in_room(conn: Executor, room_nid: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT server FROM room_memberships WHERE room_nid = $1 AND membership = 'join'", room_nid
    )
    return [r["server"] for r in rows]


async def servers_sharing_rooms(conn: Executor, user_id: str) -> list[str]:
    """Servers with a joined member in a room `user_id` is joined to."""
    rows = await conn.fetch(
        "SELECT DISTINCT other.server FROM room_memberships mine JOIN room_memberships other USING (room_nid) "
        "WHERE mine.user_id = $1 AND mine.membership = 'join' AND other.membership = 'join'",
        user_id,
    )
    return [r["server"] for r in rows]


async def server_has_members(conn: Executor, room_nid: int, server: str) -> bool:
    """Whether any user of `server` has a membership in the room (joined, invited, left, ...)."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM room_memberships WHERE room_nid = $1 AND server = $2)", room_nid, server
    )


async def room_id_of(conn: Executor, room_nid: int) -> str:
    return await conn.fetchval("SELECT room_id FROM rooms WHERE room_nid = $1", room_nid)


async def rejected_events(conn: Executor, nids: Iterable[int]) -> set[int]:
    rows = await conn.fetch(
        "SELECT event_nid FROM events WHERE event_nid = ANY($1::bigint[]) AND rejected_reason IS NOT NULL", list(nids)
    )
    return {r["event_nid"] for r in rows}


async def enqueue_pdu(conn: Executor, event_nid: int, room_nid: int, extra: str | None, own: str) -> list[str]:
    """Queue an event for every server with a joined member in the room, and `extra`, but `own`,
    in one statement; the destinations."""
    rows = await conn.fetch(
        "INSERT INTO federation_pdu_queue (destination, event_nid) "
        "SELECT d, $1 FROM (SELECT server AS d FROM room_memberships WHERE room_nid = $2 AND membership = 'join' "
        "UNION SELECT $3::text WHERE $3::text IS NOT NULL) s WHERE d <> $4 "
        "ON CONFLICT DO NOTHING RETURNING destination",
        event_nid, room_nid, extra, own,
    )
    return [r["destination"] for r in rows]


async def enqueue_pdu_for_others(conn: Executor, event_nid: int, room_nid: int, excluded: list[str]) -> list[str]:
    """Queue another server's event (a membership it sent through us) for every other server with
    a joined member in the room; the destinations."""
    rows = await conn.fetch(
        "INSERT INTO federation_pdu_queue (destination, event_nid) "
        "SELECT DISTINCT server, $1::bigint FROM room_memberships WHERE room_nid = $2 AND membership = 'join' "
        "AND NOT (server = ANY($3::text[])) ON CONFLICT DO NOTHING RETURNING destination",
        event_nid, room_nid, excluded,
    )
    return [r["destination"] for r in rows]


async def enqueue_edus(conn: Executor, rows: list[tuple[str, str, str]]) -> None:
    """(destination, edu type, content JSON) rows."""
    await conn.executemany(
        "INSERT INTO federation_edu_queue (destination, edu_type, content) VALUES ($1, $2, $3)", rows
    )


async def queued_pdus(conn: Executor, destination: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT q.event_nid, e.json, e.room_nid, r.room_version FROM federation_pdu_queue q "
        "JOIN events e USING (event_nid) JOIN rooms r ON r.room_nid = e.room_nid "
        "WHERE q.destination = $1 ORDER BY q.event_nid LIMIT $2",
        destination, limit,
    )
    return [dict(r) for r in rows]


async def queued_pdu_count(conn: Executor, destination: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM federation_pdu_queue WHERE destination = $1", destination)


async def queued_edus(conn: Executor, destination: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT queue_id, edu_type, content FROM federation_edu_queue WHERE destination = $1 ORDER BY queue_id LIMIT $2",
        destination, limit,
    )
    return [dict(r) for r in rows]


async def dequeue(conn: Executor, destination: str, event_nids: list[int], edu_ids: list[int]) -> None:
    await conn.execute(
        "DELETE FROM federation_pdu_queue WHERE destination = $1 AND event_nid = ANY($2::bigint[])",
        destination, event_nids,
    )
    await conn.execute(
        "DELETE FROM federation_edu_queue WHERE destination = $1 AND queue_id = ANY($2::bigint[])",
        destination, edu_ids,
    )


async def catch_up_pdus(conn: Executor, destination: str) -> None:
    """Replace a long backlog with the newest queued event of each room (the receiver fetches
    what lies between with /get_missing_events)."""
    await conn.execute(
        "DELETE FROM federation_pdu_queue q USING events e WHERE q.destination = $1 AND e.event_nid = q.event_nid "
        "AND q.event_nid < (SELECT max(q2.event_nid) FROM federation_pdu_queue q2 JOIN events e2 USING (event_nid) "
        "WHERE q2.destination = $1 AND e2.room_nid = e.room_nid)",
        destination,
    )


async def destinations_with_queues(conn: Executor) -> list[str]:
    rows = await conn.fetch(
        "SELECT destination FROM federation_pdu_queue UNION SELECT destination FROM federation_edu_queue"
    )
    return [r["destination"] for r in rows]


async def destination_retry(conn: Executor, destination: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT failure_ts, retry_last_ts, retry_interval_ms FROM federation_destinations WHERE destination = $1",
        destination,
    )
    return dict(row) if row is not None else None


async def set_destination_retry(
    conn: Executor, destination: str, failure_ts: int | None, retry_last_ts: int, retry_interval_ms: int
) -> None:
    await conn.execute(
        "INSERT INTO federation_destinations (destination, failure_ts, retry_last_ts, retry_interval_ms) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (destination) DO UPDATE SET failure_ts = EXCLUDED.failure_ts, "
        "retry_last_ts = EXCLUDED.retry_last_ts, retry_interval_ms = EXCLUDED.retry_interval_ms",
        destination, failure_ts, retry_last_ts, retry_interval_ms,
    )


async def inbound_txn_response(conn: Executor, origin: str, txn_id: str) -> str | None:
    return await conn.fetchval(
        "SELECT response FROM federation_inbound_txns WHERE origin = $1 AND txn_id = $2", origin, txn_id
    )


async def record_inbound_txn(conn: Executor, origin: str, txn_id: str, response: str, now_ms: int) -> None:
    await conn.execute(
        "INSERT INTO federation_inbound_txns (origin, txn_id, response, received_ts) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING",
        origin, txn_id, response, now_ms,
    )


async def set_remote_invite(conn: Executor, room_nid: int, user_id: str, invite_state: str) -> None:
    await conn.execute(
        "INSERT INTO remote_invites (room_nid, user_id, invite_state) VALUES ($1, $2, $3) "
        "ON CONFLICT (room_nid, user_id) DO UPDATE SET invite_state = EXCLUDED.invite_state",
        room_nid, user_id, invite_state,
    )


async def remote_invite_state(conn: Executor, room_nid: int, user_id: str) -> str | None:
    return await conn.fetchval(
        "SELECT invite_state FROM remote_invites WHERE room_nid = $1 AND user_id = $2", room_nid, user_id
    )


async def delete_remote_invite(conn: Executor, room_nid: int, user_id: str) -> None:
    await conn.execute("DELETE FROM remote_invites WHERE room_nid = $1 AND user_id = $2", room_nid, user_id)
