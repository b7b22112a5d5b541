"""Tables of end-to-end encryption support: keys, to-device messages, device list changes,
cross-signing, key backup."""

from __future__ import annotations

import json
from typing import Any

from homeserver.storage.users import Executor


def _loads(raw: str) -> Any:
    return json.loads(raw)


# --- device and one-time keys --------------------------------------------------------------


async def set_device_keys(conn: Executor, user_id: str, device_id: str, keys: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO device_keys (user_id, device_id, key_json) VALUES ($1, $2, $3::jsonb) "
        "ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = EXCLUDED.key_json",
        user_id, device_id, json.dumps(keys),
    )


async def get_device_keys(conn: Executor, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    """user -> device -> key JSON, for devices that still exist."""
    rows = await conn.fetch(
        "SELECT k.user_id, k.device_id, k.key_json::text AS key_json, d.display_name FROM device_keys k "
        "JOIN devices d USING (user_id, device_id) WHERE k.user_id = ANY($1::text[])",
        user_ids,
    )
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        keys = _loads(row["key_json"])
        unsigned = keys.setdefault("unsigned", {})
        if row["display_name"] is not None:
            unsigned["device_display_name"] = row["display_name"]
        found.setdefault(row["user_id"], {})[row["device_id"]] = keys
    return found


async def add_one_time_keys(
    conn: Executor, user_id: str, device_id: str, keys: list[tuple[str, str, Any]]
) -> list[tuple[str, str]]:
    """Store (algorithm, key id, key) triples; returns those whose id was already used with other content."""
    conflicts = []
    for algorithm, key_id, key in keys:
        existing = await conn.fetchval(
            "SELECT key_json::text FROM one_time_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 "
            "AND key_id = $4", user_id, device_id, algorithm, key_id,
        )
        if existing is None:
            await conn.execute(
                "INSERT INTO one_time_keys (user_id, device_id, algorithm, key_id, key_json) "
                "VALUES ($1, $2, $3, $4, $5::jsonb)", user_id, device_id, algorithm, key_id, json.dumps(key),
            )
        elif _loads(existing) != key:
            conflicts.append((algorithm, key_id))
    return conflicts


async def count_one_time_keys(conn: Executor, user_id: str, device_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT algorithm, count(*) AS n FROM one_time_keys WHERE user_id = $1 AND device_id = $2 GROUP BY algorithm",
        user_id, device_id,
    )
    return {r["algorithm"]: r["n"] for r in rows}


async def set_fallback_key(conn: Executor, user_id: str, device_id: str, algorithm: str, key_id: str, key: Any) -> None:
    await conn.execute(
        "INSERT INTO fallback_keys (user_id, device_id, algorithm, key_id, key_json) VALUES ($1, $2, $3, $4, $5::jsonb) "
        "ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = EXCLUDED.key_id, "
        "key_json = EXCLUDED.key_json, used = FALSE WHERE fallback_keys.key_id <> EXCLUDED.key_id "
        "OR fallback_keys.key_json <> EXCLUDED.key_json",
        user_id, device_id, algorithm, key_id, json.dumps(key),
    )


async def unused_fallback_key_types(conn: Executor, user_id: str, device_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT algorithm FROM fallback_keys WHERE user_id = $1 AND device_id = $2 AND NOT used ORDER BY algorithm",
        user_id, device_id,
    )
    return [r["algorithm"] for r in rows]


async def claim_key(conn: Executor, user_id: str, device_id: str, algorithm: str) -> tuple[str, Any] | None:
    """Take a one-time key (deleting it), else the fallback key (marking it used)."""
    row = await conn.fetchrow(
        "DELETE FROM one_time_keys WHERE ctid = (SELECT ctid FROM one_time_keys WHERE user_id = $1 "
        "AND device_id = $2 AND algorithm = $3 ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED) "
        "RETURNING key_id, key_json::text AS key_json",
        user_id, device_id, algorithm,
    )
    if row is None:
        row = await conn.fetchrow(
            "UPDATE fallback_keys SET used = TRUE WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 "
            "RETURNING key_id, key_json::text AS key_json",
            user_id, device_id, algorithm,
        )
    return (row["key_id"], _loads(row["key_json"])) if row is not None else None


async def delete_device_e2ee(conn: Executor, user_id: str, device_ids: list[str] | None) -> None:
    """A deleted device takes its keys and pending messages with it."""
    for table in ("device_keys", "one_time_keys", "fallback_keys", "to_device_messages"):
        await conn.execute(
            f"DELETE FROM {table} WHERE user_id = $1 AND ($2::text[] IS NULL OR device_id = ANY($2))",
            user_id, device_ids,
        )


# --- device list changes ----------------------------------------------------------------------


async def mark_device_list_changed(conn: Executor, user_id: str, self_only: bool = False) -> int:
    return await conn.fetchval(
        "INSERT INTO device_list_changes (user_id, self_only) VALUES ($1, $2) RETURNING stream_id", user_id, self_only
    )


async def last_device_list_change_of(conn: Executor, user_id: str) -> int | None:
    """The latest change others may know of (the `stream_id` other servers follow)."""
    return await conn.fetchval(
        "SELECT max(stream_id) FROM device_list_changes WHERE user_id = $1 AND NOT self_only", user_id
    )


async def previous_device_list_change(conn: Executor, user_id: str, stream_id: int) -> int | None:
    return await conn.fetchval(
        "SELECT max(stream_id) FROM device_list_changes WHERE user_id = $1 AND stream_id < $2 AND NOT self_only",
        user_id, stream_id
    )


async def device_list_changes_since(
    conn: Executor, viewer: str, user_ids: list[str], since: int, upto: int
) -> set[str]:
    """Which of `user_ids` changed keys in (since, upto] as `viewer` may know (their own private
    changes included)."""
    rows = await conn.fetch(
        "SELECT DISTINCT user_id FROM device_list_changes WHERE user_id = ANY($1::text[]) AND stream_id > $2 "
        "AND stream_id <= $3 AND (NOT self_only OR user_id = $4)", user_ids, since, upto, viewer,
    )
    return {r["user_id"] for r in rows}


async def last_device_list_position(conn: Executor) -> int:
    return await conn.fetchval("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM device_list_stream")


# --- to-device messages -------------------------------------------------------------------------


async def to_device_txn_seen(conn: Executor, user_id: str, device_id: str, txn_id: str, now_ms: int) -> bool:
    """Record a transaction id; True if it was already used."""
    row = await conn.fetchrow(
        "INSERT INTO to_device_txns (user_id, device_id, txn_id, created_ts) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING txn_id", user_id, device_id, txn_id, now_ms,
    )
    return row is None


async def add_to_device(conn: Executor, messages: list[tuple[str, str, dict[str, Any]]]) -> None:
    await conn.executemany(
        "INSERT INTO to_device_messages (user_id, device_id, message) VALUES ($1, $2, $3::jsonb)",
        [(u, d, json.dumps(m)) for u, d, m in messages],
    )


async def to_device_for(
    conn: Executor, user_id: str, device_id: str, acknowledged: int, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    """Delete what the device acknowledged (stream <= `acknowledged`), return the next messages."""
    await conn.execute(
        "DELETE FROM to_device_messages WHERE user_id = $1 AND device_id = $2 AND stream_id <= $3",
        user_id, device_id, acknowledged,
    )
    rows = await conn.fetch(
        "SELECT stream_id, message::text AS message FROM to_device_messages WHERE user_id = $1 AND device_id = $2 "
        "ORDER BY stream_id LIMIT $3", user_id, device_id, limit,
    )
    return [(r["stream_id"], _loads(r["message"])) for r in rows]


async def last_to_device_position(conn: Executor) -> int:
    return await conn.fetchval("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM to_device_stream")


# --- cross-signing ------------------------------------------------------------------------------


async def get_cross_signing_keys(conn: Executor, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT user_id, key_type, key_json::text AS key_json FROM cross_signing_keys WHERE user_id = ANY($1::text[])",
        user_ids,
    )
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        found.setdefault(row["user_id"], {})[row["key_type"]] = _loads(row["key_json"])
    return found


async def set_cross_signing_key(conn: Executor, user_id: str, key_type: str, key: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO cross_signing_keys (user_id, key_type, key_json) VALUES ($1, $2, $3::jsonb) "
        "ON CONFLICT (user_id, key_type) DO UPDATE SET key_json = EXCLUDED.key_json",
        user_id, key_type, json.dumps(key),
    )


async def add_signature(
    conn: Executor, target_user: str, target_key_id: str, signer_user: str, signer_key_id: str, signature: str
) -> None:
    await conn.execute(
        "INSERT INTO key_signatures (target_user, target_key_id, signer_user, signer_key_id, signature) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (target_user, target_key_id, signer_user, signer_key_id) "
        "DO UPDATE SET signature = EXCLUDED.signature",
        target_user, target_key_id, signer_user, signer_key_id, signature,
    )


async def signatures_for(conn: Executor, target_users: list[str]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT target_user, target_key_id, signer_user, signer_key_id, signature FROM key_signatures "
        "WHERE target_user = ANY($1::text[])", target_users,
    )
    return [dict(r) for r in rows]


# --- key backup -----------------------------------------------------------------------------------


async def create_backup(conn: Executor, user_id: str, algorithm: str, auth_data: dict[str, Any]) -> int:
    return await conn.fetchval(
        "INSERT INTO room_key_backups (user_id, algorithm, auth_data) VALUES ($1, $2, $3::jsonb) RETURNING version",
        user_id, algorithm, json.dumps(auth_data),
    )


async def get_backup(conn: Executor, user_id: str, version: int | None) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT version, algorithm, auth_data::text AS auth_data, etag FROM room_key_backups WHERE user_id = $1 "
        "AND NOT deleted AND ($2::bigint IS NULL OR version = $2) ORDER BY version DESC LIMIT 1",
        user_id, version,
    )
    if row is None:
        return None
    found = dict(row)
    found["auth_data"] = _loads(found["auth_data"])
    return found


async def update_backup(conn: Executor, user_id: str, version: int, auth_data: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE room_key_backups SET auth_data = $3::jsonb WHERE user_id = $1 AND version = $2",
        user_id, version, json.dumps(auth_data),
    )


async def delete_backup(conn: Executor, user_id: str, version: int) -> bool:
    status = await conn.execute(
        "UPDATE room_key_backups SET deleted = TRUE WHERE user_id = $1 AND version = $2 AND NOT deleted",
        user_id, version,
    )
    await conn.execute("DELETE FROM room_keys WHERE user_id = $1 AND version = $2", user_id, version)
    return status != "UPDATE 0"


async def bump_backup_etag(conn: Executor, user_id: str, version: int) -> None:
    await conn.execute("UPDATE room_key_backups SET etag = etag + 1 WHERE user_id = $1 AND version = $2", user_id, version)


async def get_room_key(conn: Executor, user_id: str, version: int, room_id: str, session_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT first_message_index, forwarded_count, is_verified, session_data::text AS session_data FROM room_keys "
        "WHERE user_id = $1 AND version = $2 AND room_id = $3 AND session_id = $4",
        user_id, version, room_id, session_id,
    )
    if row is None:
        return None
    found = dict(row)
    found["session_data"] = _loads(found["session_data"])
    return found


async def put_room_key(
    conn: Executor, user_id: str, version: int, room_id: str, session_id: str, key: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO room_keys (user_id, version, room_id, session_id, first_message_index, forwarded_count, "
        "is_verified, session_data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) "
        "ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET "
        "first_message_index = EXCLUDED.first_message_index, forwarded_count = EXCLUDED.forwarded_count, "
        "is_verified = EXCLUDED.is_verified, session_data = EXCLUDED.session_data",
        user_id, version, room_id, session_id, key["first_message_index"], key["forwarded_count"],
        key["is_verified"], json.dumps(key["session_data"]),
    )


async def get_room_keys(
    conn: Executor, user_id: str, version: int, room_id: str | None, session_id: str | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, "
        "session_data::text AS session_data FROM room_keys WHERE user_id = $1 AND version = $2 "
        "AND ($3::text IS NULL OR room_id = $3) AND ($4::text IS NULL OR session_id = $4)",
        user_id, version, room_id, session_id,
    )
    return [{**dict(r), "session_data": _loads(r["session_data"])} for r in rows]


async def delete_room_keys(conn: Executor, user_id: str, version: int, room_id: str | None, session_id: str | None) -> None:
    await conn.execute(
        "DELETE FROM room_keys WHERE user_id = $1 AND version = $2 AND ($3::text IS NULL OR room_id = $3) "
        "AND ($4::text IS NULL OR session_id = $4)", user_id, version, room_id, session_id,
    )


async def count_room_keys(conn: Executor, user_id: str, version: int) -> int:
    return await conn.fetchval("SELECT count(*) FROM room_keys WHERE user_id = $1 AND version = $2", user_id, version)


# --- other servers' device lists ---------------------------------------------------------------


async def remote_users_sharing_rooms_with_us(conn: Executor, user_ids: list[str]) -> set[str]:
    """Which of these (other servers') users share a room with one of our users: their servers
    send us their device-list changes."""
    rows = await conn.fetch(
        "SELECT DISTINCT theirs.user_id FROM room_memberships theirs "
        "JOIN room_memberships ours ON ours.room_nid = theirs.room_nid AND ours.membership = 'join' "
        "JOIN users u ON u.user_id = ours.user_id "
        "WHERE theirs.user_id = ANY($1::text[]) AND theirs.membership = 'join'",
        user_ids,
    )
    return {r["user_id"] for r in rows}


async def get_remote_device_lists(conn: Executor, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT user_id, stream_id, devices::text AS devices, master_key::text AS master_key, "
        "self_signing_key::text AS self_signing_key, stale FROM remote_device_lists WHERE user_id = ANY($1::text[])",
        user_ids,
    )
    return {
        r["user_id"]: {
            "stream_id": r["stream_id"], "devices": _loads(r["devices"]), "stale": r["stale"],
            "master_key": _loads(r["master_key"]) if r["master_key"] else None,
            "self_signing_key": _loads(r["self_signing_key"]) if r["self_signing_key"] else None,
        }
        for r in rows
    }


async def put_remote_device_list(
    conn: Executor, user_id: str, stream_id: int, devices: dict[str, Any], master_key: dict[str, Any] | None,
    self_signing_key: dict[str, Any] | None,
) -> None:
    await conn.execute(
        "INSERT INTO remote_device_lists (user_id, stream_id, devices, master_key, self_signing_key) "
        "VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb) ON CONFLICT (user_id) DO UPDATE SET "
        "stream_id = EXCLUDED.stream_id, devices = EXCLUDED.devices, master_key = EXCLUDED.master_key, "
        "self_signing_key = EXCLUDED.self_signing_key, stale = false",
        user_id, stream_id, json.dumps(devices), json.dumps(master_key) if master_key is not None else None,
        json.dumps(self_signing_key) if self_signing_key is not None else None,
    )


async def update_remote_device(
    conn: Executor, user_id: str, stream_id: int, device_id: str, keys: dict[str, Any] | None
) -> None:
    """One device of a cached list changed (`keys`) or went (None)."""
    if keys is None:
        await conn.execute(
            "UPDATE remote_device_lists SET devices = devices - $2::text, stream_id = $3 WHERE user_id = $1",
            user_id, device_id, stream_id,
        )
    else:
        await conn.execute(
            "UPDATE remote_device_lists SET devices = jsonb_set(devices, ARRAY[$2::text], $4::jsonb), stream_id = $3 "
            "WHERE user_id = $1",
            user_id, device_id, stream_id, json.dumps(keys),
        )


async def update_remote_signing_keys(
    conn: Executor, user_id: str, master_key: dict[str, Any] | None, self_signing_key: dict[str, Any] | None
) -> None:
    await conn.execute(
        "UPDATE remote_device_lists SET master_key = COALESCE($2::jsonb, master_key), "
        "self_signing_key = COALESCE($3::jsonb, self_signing_key) WHERE user_id = $1",
        user_id, json.dumps(master_key) if master_key is not None else None,
        json.dumps(self_signing_key) if self_signing_key is not None else None,
    )


async def mark_remote_device_list_stale(conn: Executor, user_id: str) -> None:
    await conn.execute("UPDATE remote_device_lists SET stale = true WHERE user_id = $1", user_id)


async def forget_remote_device_lists(conn: Executor, user_ids: list[str]) -> None:
    """Lists no longer kept up to date (no room is shared any more)."""
    await conn.execute("DELETE FROM remote_device_lists WHERE user_id = ANY($1::text[])", user_ids)


async def forget_unshared_device_lists(conn: Executor, room_nid: int) -> None:
    """After someone left the room: drop the copies of its (other servers') members who no longer
    share any room with our users, whose servers stop sending us their changes."""
    await conn.execute(
        "DELETE FROM remote_device_lists r WHERE r.user_id IN (SELECT user_id FROM room_memberships "
        "WHERE room_nid = $1) AND NOT EXISTS (SELECT 1 FROM room_memberships theirs "
        "JOIN room_memberships ours ON ours.room_nid = theirs.room_nid AND ours.membership = 'join' "
        "JOIN users u ON u.user_id = ours.user_id WHERE theirs.user_id = r.user_id AND theirs.membership = 'join')",
        room_nid,
    )
