"""Rooms, interned state keys, and state groups (deltas with periodic snapshots)."""

from __future__ import annotations

from typing import Iterable

from homeserver.storage.users import Executor


async def create_room(conn: Executor, room_id: str, room_version: str, now_ms: int) -> int:
    return await conn.fetchval(
        "INSERT INTO rooms (room_id, room_version, created_ts) VALUES ($1, $2, $3) RETURNING room_nid",
        room_id, room_version, now_ms,
    )


async def get_room(conn: Executor, room_id: str) -> tuple[int, str] | None:
    row = await conn.fetchrow("SELECT room_nid, room_version FROM rooms WHERE room_id = $1", room_id)
    return (row["room_nid"], row["room_version"]) if row is not None else None


async def intern_state_keys(conn: Executor, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The nid of each (type, state_key), creating the missing ones."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    types = [k[0] for k in keys]
    state_keys = [k[1] for k in keys]
    await conn.execute(
        "INSERT INTO state_keys (type, state_key) SELECT * FROM unnest($1::text[], $2::text[]) "
        "ON CONFLICT (type, state_key) DO NOTHING",
        types, state_keys,
    )
    rows = await conn.fetch(
        "SELECT s.state_key_nid, s.type, s.state_key FROM state_keys s "
        "JOIN unnest($1::text[], $2::text[]) AS k(type, state_key) USING (type, state_key)",
        types, state_keys,
    )
    return {(r["type"], r["state_key"]): r["state_key_nid"] for r in rows}


async def lookup_state_keys(conn: Executor, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The nids of the (type, state_key) pairs that exist."""
    keys = list(keys)
    rows = await conn.fetch(
        "SELECT s.state_key_nid, s.type, s.state_key FROM state_keys s "
        "JOIN unnest($1::text[], $2::text[]) AS k(type, state_key) USING (type, state_key)",
        [k[0] for k in keys], [k[1] for k in keys],
    )
    return {(r["type"], r["state_key"]): r["state_key_nid"] for r in rows}


async def state_key_names(conn: Executor, nids: Iterable[int]) -> dict[int, tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT state_key_nid, type, state_key FROM state_keys WHERE state_key_nid = ANY($1::bigint[])", list(nids)
    )
    return {r["state_key_nid"]: (r["type"], r["state_key"]) for r in rows}


async def create_state_group(
    conn: Executor, room_nid: int, prev_group: int | None, chain_length: int, entries: dict[int, int]
) -> int:
    """A new group: `entries` are a delta over `prev_group`, or the whole state when it is None."""
    group_id = await conn.fetchval(
        "INSERT INTO state_groups (room_nid, prev_group, chain_length) VALUES ($1, $2, $3) RETURNING group_id",
        room_nid, prev_group, chain_length,
    )
    if entries:
        await conn.execute(
            "INSERT INTO state_group_entries (group_id, state_key_nid, event_nid) "
            "SELECT $1, * FROM unnest($2::bigint[], $3::bigint[])",
            group_id, list(entries), list(entries.values()),
        )
    return group_id


async def state_group_chain_length(conn: Executor, group_id: int) -> int:
    return await conn.fetchval("SELECT chain_length FROM state_groups WHERE group_id = $1", group_id)


async def load_state_group(conn: Executor, group_id: int) -> dict[int, int]:
    """The full state of a group: its entries over those of the groups it is a delta of."""
    rows = await conn.fetch(
        """
        WITH RECURSIVE chain(group_id, prev_group, position) AS (
            SELECT group_id, prev_group, 0 FROM state_groups WHERE group_id = $1
            UNION ALL
            SELECT g.group_id, g.prev_group, c.position + 1
            FROM state_groups g JOIN chain c ON g.group_id = c.prev_group
        )
        SELECT DISTINCT ON (e.state_key_nid) e.state_key_nid, e.event_nid
        FROM state_group_entries e JOIN chain c USING (group_id)
        ORDER BY e.state_key_nid, c.position
        """,
        group_id,
    )
    return {r["state_key_nid"]: r["event_nid"] for r in rows}
