"""Events, their auth edges, forward extremities, current state, memberships and transaction ids."""

from __future__ import annotations

from typing import Any, Iterable

from homeserver.storage.users import Executor

EVENT_COLUMNS = (
    "event_nid, event_id, room_nid, stream_ordering, depth, type, state_key, sender, "
    "origin_server_ts, json, rejected_reason, redacted_by, state_group"
)

# For a history visibility change (`e`), the state group before it: the change is seen under the
# more open of the old and new settings, so reading pages needs the old one without a query each.
STATE_GROUP_BEFORE_VISIBILITY = (
    "CASE WHEN e.type = 'm.room.history_visibility' AND e.state_key = '' THEN (SELECT p.state_group "
    "FROM events p WHERE p.room_nid = e.room_nid AND p.stream_ordering < e.stream_ordering "
    "AND p.rejected_reason IS NULL ORDER BY p.stream_ordering DESC LIMIT 1) END AS state_group_before"
)


async def next_stream_ordering(conn: Executor) -> int:
    return await conn.fetchval("SELECT nextval('events_stream')")


async def next_backfill_ordering(conn: Executor) -> int:
    """A position below every other event's (history fetched from other servers)."""
    return await conn.fetchval("SELECT nextval('backfill_stream')")


async def oldest_timeline_event(conn: Executor, room_nid: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE room_nid = $1 AND stream_ordering IS NOT NULL "
        "ORDER BY stream_ordering LIMIT 1", room_nid,
    )
    return dict(row) if row is not None else None


async def last_stream_ordering(conn: Executor) -> int:
    """The last position handed out (0 before the first)."""
    return await conn.fetchval("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_stream")


async def insert_event(
    conn: Executor, *, event_id: str, room_nid: int, stream_ordering: int | None, depth: int, event_type: str,
    state_key: str | None, sender: str, origin_server_ts: int, json: str, rejected_reason: str | None = None,
) -> int:
    """Store an event (stream_ordering None: an outlier, or not part of the timeline); returns its event_nid."""
    return await conn.fetchval(
        "INSERT INTO events (event_id, room_nid, stream_ordering, depth, type, state_key, sender, "
        "origin_server_ts, json, rejected_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        # An event first stored as an outlier (known by reference) takes its place in the room.
        "ON CONFLICT (event_id) DO UPDATE SET stream_ordering = EXCLUDED.stream_ordering, "
        "rejected_reason = EXCLUDED.rejected_reason WHERE events.state_group IS NULL AND events.stream_ordering IS NULL "
        "RETURNING event_nid",
        event_id, room_nid, stream_ordering, depth, event_type, state_key, sender, origin_server_ts, json,
        rejected_reason,
    )


async def insert_outliers(conn: Executor, room_nid: int, rows: list[tuple[str, int, str, str | None, str, int, str, str | None]]) -> dict[str, int]:
    """Store events known by reference only, (event_id, depth, type, state_key, sender, ts, json, rejected_reason)
    rows, in one statement; already known ids are left alone. Event id -> nid for every row."""
    columns = list(zip(*rows)) if rows else [[]] * 8
    await conn.execute(
        "INSERT INTO events (event_id, room_nid, depth, type, state_key, sender, origin_server_ts, json, rejected_reason) "
        "SELECT e, $9, d, t, k, s, ts, j, r FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], "
        "$6::bigint[], $7::text[], $8::text[]) AS u(e, d, t, k, s, ts, j, r) ON CONFLICT (event_id) DO NOTHING",
        *[list(c) for c in columns], room_nid,
    )
    return await event_nids(conn, [row[0] for row in rows])


async def insert_backfilled(
    conn: Executor, room_nid: int, rows: list[tuple[str, int, str, str | None, str, int, str, str | None]]
) -> dict[str, int]:
    """Store history fetched from other servers, newest first, at positions below every live event
    (rows as for `insert_outliers`); an outlier already known takes its place in the timeline."""
    await conn.executemany(
        "INSERT INTO events (event_id, room_nid, depth, type, state_key, sender, origin_server_ts, json, "
        "rejected_reason, stream_ordering) "
        "VALUES ($1, $9, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $8::text IS NULL THEN nextval('backfill_stream') END) "
        "ON CONFLICT (event_id) DO UPDATE SET stream_ordering = EXCLUDED.stream_ordering "
        "WHERE events.stream_ordering IS NULL AND events.state_group IS NULL AND events.rejected_reason IS NULL",
        [(*row, room_nid) for row in rows],
    )
    return await event_nids(conn, [row[0] for row in rows])


async def add_auth_edges_bulk(conn: Executor, edges: list[tuple[int, int]]) -> None:
    await conn.execute(
        "INSERT INTO event_auth (event_nid, auth_event_nid) SELECT * FROM unnest($1::bigint[], $2::bigint[]) "
        "ON CONFLICT DO NOTHING",
        [e[0] for e in edges], [e[1] for e in edges],
    )


async def auth_chain(conn: Executor, nids: Iterable[int]) -> list[int]:
    """Every event in the auth chains of these events (the events themselves excluded unless reached)."""
    rows = await conn.fetch(
        "WITH RECURSIVE chain(nid) AS (SELECT auth_event_nid FROM event_auth WHERE event_nid = ANY($1::bigint[]) "
        "UNION SELECT a.auth_event_nid FROM event_auth a JOIN chain c ON a.event_nid = c.nid) SELECT nid FROM chain",
        list(nids),
    )
    return [r["nid"] for r in rows]


async def set_memberships(conn: Executor, room_nid: int, rows: list[tuple[str, str, int, int]]) -> None:
    """(user_id, membership, event_nid, stream_ordering) rows, in one statement."""
    await conn.execute(
        "INSERT INTO room_memberships (room_nid, user_id, membership, event_nid, stream_ordering) "
        "SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[]) "
        "ON CONFLICT (room_nid, user_id) DO UPDATE SET "
        "membership = EXCLUDED.membership, event_nid = EXCLUDED.event_nid, stream_ordering = EXCLUDED.stream_ordering",
        room_nid, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
    )


async def set_state_group(conn: Executor, event_nid: int, group_id: int) -> None:
    await conn.execute("UPDATE events SET state_group = $2 WHERE event_nid = $1", event_nid, group_id)


async def add_auth_edges(conn: Executor, event_nid: int, auth_nids: Iterable[int]) -> None:
    auth_nids = list(auth_nids)
    if auth_nids:
        await conn.execute(
            "INSERT INTO event_auth (event_nid, auth_event_nid) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
            event_nid, auth_nids,
        )


async def event_nids(conn: Executor, event_ids: Iterable[str]) -> dict[str, int]:
    rows = await conn.fetch("SELECT event_id, event_nid FROM events WHERE event_id = ANY($1::text[])", list(event_ids))
    return {r["event_id"]: r["event_nid"] for r in rows}


async def events_by_nid(conn: Executor, nids: Iterable[int]) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {EVENT_COLUMNS} FROM events WHERE event_nid = ANY($1::bigint[])", list(nids))
    return [dict(r) for r in rows]


async def event_by_id(conn: Executor, event_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = $1", event_id)
    return dict(row) if row is not None else None


async def forward_extremities(conn: Executor, room_nid: int) -> list[int]:
    rows = await conn.fetch("SELECT event_nid FROM forward_extremities WHERE room_nid = $1", room_nid)
    return [r["event_nid"] for r in rows]


async def replace_forward_extremities(conn: Executor, room_nid: int, remove: Iterable[int], add: int) -> None:
    await conn.execute(
        "DELETE FROM forward_extremities WHERE room_nid = $1 AND event_nid = ANY($2::bigint[])", room_nid, list(remove)
    )
    await conn.execute("INSERT INTO forward_extremities (room_nid, event_nid) VALUES ($1, $2)", room_nid, add)


async def current_state(conn: Executor, room_nid: int) -> dict[int, int]:
    rows = await conn.fetch("SELECT state_key_nid, event_nid FROM current_state WHERE room_nid = $1", room_nid)
    return {r["state_key_nid"]: r["event_nid"] for r in rows}


async def current_state_event(conn: Executor, room_nid: int, state_key_nid: int) -> int | None:
    return await conn.fetchval(
        "SELECT event_nid FROM current_state WHERE room_nid = $1 AND state_key_nid = $2", room_nid, state_key_nid
    )


async def set_current_state(conn: Executor, room_nid: int, changes: dict[int, int]) -> None:
    await conn.execute(
        "INSERT INTO current_state (room_nid, state_key_nid, event_nid) "
        "SELECT $1, * FROM unnest($2::bigint[], $3::bigint[]) "
        "ON CONFLICT (room_nid, state_key_nid) DO UPDATE SET event_nid = EXCLUDED.event_nid",
        room_nid, list(changes), list(changes.values()),
    )


async def set_membership(
    conn: Executor, room_nid: int, user_id: str, membership: str, event_nid: int, stream_ordering: int
) -> None:
    await set_memberships(conn, room_nid, [(user_id, membership, event_nid, stream_ordering)])


async def rooms_of_user(conn: Executor, user_id: str, memberships: Iterable[str]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT r.room_id, r.room_nid, r.room_version, m.membership, m.event_nid, m.stream_ordering "
        "FROM room_memberships m JOIN rooms r USING (room_nid) WHERE m.user_id = $1 AND m.membership = ANY($2::text[])",
        user_id, list(memberships),
    )
    return [dict(r) for r in rows]


async def membership_changes_since(conn: Executor, user_id: str, since: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT r.room_id, r.room_nid, r.room_version, m.membership, m.event_nid, m.stream_ordering "
        "FROM room_memberships m JOIN rooms r USING (room_nid) "
        "WHERE m.user_id = $1 AND m.stream_ordering > $2 AND NOT m.forgotten",
        user_id, since,
    )
    return [dict(r) for r in rows]


async def forget_room(conn: Executor, room_nid: int, user_id: str) -> None:
    await conn.execute(
        "UPDATE room_memberships SET forgotten = TRUE WHERE room_nid = $1 AND user_id = $2", room_nid, user_id
    )


async def txn_ids_for_events(conn: Executor, user_id: str, device_id: str, event_ids: list[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT event_id, txn_id FROM event_txn_ids WHERE user_id = $1 AND device_id = $2 AND event_id = ANY($3::text[])",
        user_id, device_id, event_ids,
    )
    return {r["event_id"]: r["txn_id"] for r in rows}


async def add_filter(conn: Executor, user_id: str, filter_json: str) -> int:
    return await conn.fetchval(
        "INSERT INTO user_filters (user_id, filter) VALUES ($1, $2::jsonb) RETURNING filter_id", user_id, filter_json
    )


async def get_filter(conn: Executor, user_id: str, filter_id: int) -> str | None:
    return await conn.fetchval(
        "SELECT filter::text FROM user_filters WHERE user_id = $1 AND filter_id = $2", user_id, filter_id
    )


async def members_of(conn: Executor, room_nid: int, memberships: Iterable[str]) -> list[str]:
    rows = await conn.fetch(
        "SELECT user_id FROM room_memberships WHERE room_nid = $1 AND membership = ANY($2::text[])",
        room_nid, list(memberships),
    )
    return [r["user_id"] for r in rows]


async def membership_of(conn: Executor, room_nid: int, user_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT membership, event_nid, stream_ordering FROM room_memberships WHERE room_nid = $1 AND user_id = $2",
        room_nid, user_id,
    )
    return dict(row) if row is not None else None


async def room_events(
    conn: Executor, room_nid: int, after: int | None, upto: int | None, limit: int, newest_first: bool,
    types: Iterable[str] | None = None, not_types: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Events with after < stream_ordering <= upto, the `limit` newest or oldest (of the given
    types, none of `not_types`: a filter's types count before the limit)."""
    order = "DESC" if newest_first else "ASC"
    columns = ", ".join("e." + c.strip() for c in EVENT_COLUMNS.split(","))
    rows = await conn.fetch(
        f"SELECT {columns}, {STATE_GROUP_BEFORE_VISIBILITY} FROM events e WHERE e.room_nid = $1 "
        "AND e.stream_ordering IS NOT NULL AND ($2::bigint IS NULL OR e.stream_ordering > $2) "
        "AND ($3::bigint IS NULL OR e.stream_ordering <= $3) AND e.rejected_reason IS NULL "
        "AND ($5::text[] IS NULL OR e.type LIKE ANY($5::text[])) "
        f"AND NOT (e.type LIKE ANY($6::text[])) ORDER BY e.stream_ordering {order} LIMIT $4",
        room_nid, after, upto, limit, _like(types) if types is not None else None, _like(not_types),
    )
    return [dict(r) for r in rows]


async def rooms_with_events_since(conn: Executor, room_nids: list[int], since: int) -> set[int]:
    rows = await conn.fetch(
        "SELECT DISTINCT room_nid FROM events WHERE room_nid = ANY($1::bigint[]) AND stream_ordering > $2",
        room_nids, since,
    )
    return {r["room_nid"] for r in rows}


async def state_group_at(conn: Executor, room_nid: int, stream_ordering: int) -> int | None:
    """The state group after the room's last event at or before a stream position."""
    return await conn.fetchval(
        "SELECT state_group FROM events WHERE room_nid = $1 AND stream_ordering <= $2 AND rejected_reason IS NULL "
        "ORDER BY stream_ordering DESC LIMIT 1",
        room_nid, stream_ordering,
    )




async def get_txn_event(conn: Executor, user_id: str, device_id: str, txn_id: str) -> str | None:
    return await conn.fetchval(
        "SELECT event_id FROM event_txn_ids WHERE user_id = $1 AND device_id = $2 AND txn_id = $3",
        user_id, device_id, txn_id,
    )


async def add_txn_event(conn: Executor, user_id: str, device_id: str, txn_id: str, event_id: str, now_ms: int) -> None:
    await conn.execute(
        "INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, created_ts) VALUES ($1, $2, $3, $4, $5)",
        user_id, device_id, txn_id, event_id, now_ms,
    )


async def apply_redaction(conn: Executor, room_nid: int, event_id: str, redaction_id: str) -> int | None:
    """Mark an event of the room redacted and drop its relation and search entry; its nid, or None
    when it is unknown here or already redacted."""
    nid = await conn.fetchval(
        "UPDATE events SET redacted_by = $3 WHERE event_id = $1 AND room_nid = $2 AND redacted_by IS NULL "
        "RETURNING event_nid", event_id, room_nid, redaction_id,
    )
    if nid is not None:
        await conn.execute("DELETE FROM event_relations WHERE event_nid = $1", nid)
        await conn.execute("DELETE FROM event_search WHERE event_nid = $1", nid)
    return nid


async def state_events_with_auth(conn: Executor, room_nid: int, after_nid: int) -> list[dict[str, Any]]:
    """A room's state events after `after_nid`, oldest first, with their auth event nids."""
    rows = await conn.fetch(
        f"SELECT {EVENT_COLUMNS}, "
        "ARRAY(SELECT auth_event_nid FROM event_auth a WHERE a.event_nid = e.event_nid) AS auth_nids "
        "FROM events e WHERE room_nid = $1 AND state_key IS NOT NULL AND event_nid > $2 ORDER BY event_nid",
        room_nid, after_nid,
    )
    return [dict(r) for r in rows]


async def event_near_timestamp(conn: Executor, room_nid: int, ts: int, forwards: bool) -> dict[str, Any] | None:
    """The first event at or after `ts` (forwards), or the last at or before it."""
    if forwards:
        query = ("SELECT event_id, origin_server_ts FROM events WHERE room_nid = $1 AND origin_server_ts >= $2 "
                 "AND stream_ordering IS NOT NULL AND rejected_reason IS NULL ORDER BY origin_server_ts, stream_ordering LIMIT 1")
    else:
        query = ("SELECT event_id, origin_server_ts FROM events WHERE room_nid = $1 AND origin_server_ts <= $2 "
                 "AND stream_ordering IS NOT NULL AND rejected_reason IS NULL "
                 "ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT 1")
    row = await conn.fetchrow(query, room_nid, ts)
    return dict(row) if row is not None else None


async def add_relation(
    conn: Executor, event_nid: int, room_nid: int, relates_to_id: str, rel_type: str, event_type: str, sender: str,
    stream_ordering: int,
) -> None:
    await conn.execute(
        "INSERT INTO event_relations (event_nid, room_nid, relates_to_id, rel_type, event_type, sender, stream_ordering) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        event_nid, room_nid, relates_to_id, rel_type, event_type, sender, stream_ordering,
    )


async def related_events(
    conn: Executor, room_nid: int, parent_id: str, rel_type: str | None, event_type: str | None,
    after: int | None, before: int | None, limit: int, newest_first: bool,
) -> list[dict[str, Any]]:
    order = "DESC" if newest_first else "ASC"
    rows = await conn.fetch(
        f"SELECT {', '.join('e.' + c.strip() for c in EVENT_COLUMNS.split(','))} FROM event_relations r "
        "JOIN events e USING (event_nid) WHERE r.room_nid = $1 AND r.relates_to_id = $2 "
        "AND ($3::text IS NULL OR r.rel_type = $3) AND ($4::text IS NULL OR r.event_type = $4) "
        "AND ($5::bigint IS NULL OR r.stream_ordering > $5) AND ($6::bigint IS NULL OR r.stream_ordering < $6) "
        f"ORDER BY r.stream_ordering {order} LIMIT $7",
        room_nid, parent_id, rel_type, event_type, after, before, limit,
    )
    return [dict(r) for r in rows]


async def relation_summaries(conn: Executor, parent_ids: list[str], user_id: str) -> list[dict[str, Any]]:
    """Per parent and relation type: count, latest child, whether `user_id` took part."""
    rows = await conn.fetch(
        "SELECT r.relates_to_id, r.rel_type, count(*) AS count, bool_or(r.sender = $2) AS participated, "
        "(array_agg(r.event_nid ORDER BY r.stream_ordering DESC))[1] AS latest_nid, "
        "array_agg(e.event_id ORDER BY r.stream_ordering) AS child_ids "
        "FROM event_relations r JOIN events e USING (event_nid) "
        "WHERE r.relates_to_id = ANY($1::text[]) AND e.redacted_by IS NULL GROUP BY r.relates_to_id, r.rel_type",
        parent_ids, user_id,
    )
    return [dict(r) for r in rows]


async def thread_roots(
    conn: Executor, room_nid: int, user_id: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Thread roots, most recently active first (`user_id`: only threads they took part in)."""
    rows = await conn.fetch(
        "SELECT relates_to_id, max(stream_ordering) AS latest FROM event_relations "
        "WHERE room_nid = $1 AND rel_type = 'm.thread' GROUP BY relates_to_id "
        "HAVING ($2::text IS NULL OR bool_or(sender = $2) OR EXISTS (SELECT 1 FROM events WHERE event_id = relates_to_id AND sender = $2)) "
        "AND ($3::bigint IS NULL OR max(stream_ordering) < $3) ORDER BY latest DESC LIMIT $4",
        room_nid, user_id, before, limit,
    )
    return [dict(r) for r in rows]


async def membership_changes_around(conn: Executor, user_id: str, since: int, upto: int) -> set[str]:
    """Users whose membership changed between two positions in a room `user_id` is in (or was in,
    when their own membership changed then)."""
    rows = await conn.fetch(
        "SELECT other.user_id FROM room_memberships mine JOIN room_memberships other "
        "ON other.room_nid = mine.room_nid AND other.stream_ordering > $2 AND other.stream_ordering <= $3 "
        "WHERE mine.user_id = $1 AND mine.membership = 'join' "
        "UNION SELECT other.user_id FROM room_memberships mine JOIN room_memberships other USING (room_nid) "
        "WHERE mine.user_id = $1 AND mine.stream_ordering > $2 AND mine.stream_ordering <= $3",
        user_id, since, upto,
    )
    return {r["user_id"] for r in rows}


async def users_pending_in_rooms_of(conn: Executor, user_id: str) -> set[str]:
    """Users invited to, or knocking on, a room `user_id` is joined to."""
    rows = await conn.fetch(
        "SELECT DISTINCT other.user_id FROM room_memberships mine JOIN room_memberships other USING (room_nid) "
        "WHERE mine.user_id = $1 AND mine.membership = 'join' AND other.membership IN ('invite', 'knock')",
        user_id,
    )
    return {r["user_id"] for r in rows}


async def users_sharing_rooms(conn: Executor, user_id: str) -> set[str]:
    """Everyone joined to a room `user_id` is joined to (themself included)."""
    rows = await conn.fetch(
        "SELECT DISTINCT other.user_id FROM room_memberships mine "
        "JOIN room_memberships other USING (room_nid) "
        "WHERE mine.user_id = $1 AND mine.membership = 'join' AND other.membership = 'join'",
        user_id,
    )
    return {r["user_id"] for r in rows} | {user_id}


def _like(patterns: Iterable[str]) -> list[str]:
    """Filter globs (`*`) as LIKE patterns."""
    return [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%") for p in patterns]


async def timelines(
    conn: Executor, rooms: list[tuple[int, int]], upto: int, limit: int,
    types: Iterable[str] | None = None, not_types: Iterable[str] = (),
) -> dict[int, list[dict[str, Any]]]:
    """For each (room_nid, after): the room's `limit` newest events with after < position <= upto
    (of the given types, none of `not_types`: filters count before the limit, as Synapse's do)."""
    columns = ", ".join("e." + c.strip() for c in EVENT_COLUMNS.split(","))
    rows = await conn.fetch(
        f"SELECT * FROM (SELECT {columns}, {STATE_GROUP_BEFORE_VISIBILITY}, "
        "row_number() OVER (PARTITION BY e.room_nid ORDER BY e.stream_ordering DESC) "
        "AS position_in_room FROM events e JOIN unnest($1::bigint[], $2::bigint[]) AS r(room_nid, after) "
        "ON e.room_nid = r.room_nid WHERE e.stream_ordering > r.after AND e.stream_ordering <= $3 "
        "AND e.rejected_reason IS NULL AND ($5::text[] IS NULL OR e.type LIKE ANY($5::text[])) "
        "AND NOT (e.type LIKE ANY($6::text[]))) ranked "
        "WHERE position_in_room <= $4 ORDER BY room_nid, stream_ordering DESC",
        [r[0] for r in rooms], [r[1] for r in rooms], upto, limit,
        _like(types) if types is not None else None, _like(not_types),
    )
    found: dict[int, list[dict[str, Any]]] = {r[0]: [] for r in rooms}
    for row in rows:
        found[row["room_nid"]].append(dict(row))
    return found


async def state_groups_at(conn: Executor, positions: list[tuple[int, int]]) -> dict[tuple[int, int], int | None]:
    """`state_group_at` for many (room_nid, position) pairs in one query."""
    rows = await conn.fetch(
        "SELECT r.room_nid, r.position, (SELECT state_group FROM events e WHERE e.room_nid = r.room_nid "
        "AND e.stream_ordering <= r.position AND e.rejected_reason IS NULL ORDER BY e.stream_ordering DESC LIMIT 1) "
        "AS state_group FROM unnest($1::bigint[], $2::bigint[]) AS r(room_nid, position)",
        [p[0] for p in positions], [p[1] for p in positions],
    )
    return {(r["room_nid"], r["position"]): r["state_group"] for r in rows}


async def current_states(conn: Executor, room_nids: list[int]) -> dict[int, dict[int, int]]:
    rows = await conn.fetch(
        "SELECT room_nid, state_key_nid, event_nid FROM current_state WHERE room_nid = ANY($1::bigint[])", room_nids
    )
    found: dict[int, dict[int, int]] = {n: {} for n in room_nids}
    for row in rows:
        found[row["room_nid"]][row["state_key_nid"]] = row["event_nid"]
    return found


async def index_for_search(conn: Executor, event_nid: int, room_nid: int, stream_ordering: int, key: str, text: str) -> None:
    await conn.execute(
        "INSERT INTO event_search (event_nid, room_nid, stream_ordering, key, vector) "
        "VALUES ($1, $2, $3, $4, to_tsvector('simple', $5))",
        event_nid, room_nid, stream_ordering, key, text,
    )


async def search_events(
    conn: Executor, room_nids: list[int], term: str, keys: list[str], by_rank: bool, offset: int,
    before_stream: int | None, limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """Matching events (with rank), best or newest first, and the total count.

    Matching, ranking and the page cut happen on the search index alone; only the page's rows
    are joined to their events (redacted events are removed from the index when redacted)."""
    columns = ", ".join("e." + c.strip() for c in EVENT_COLUMNS.split(","))
    where = "s.room_nid = ANY($1::bigint[]) AND s.vector @@ plainto_tsquery('simple', $2) AND s.key = ANY($3::text[])"
    rank = "ts_rank_cd(s.vector, plainto_tsquery('simple', $2))" if by_rank else "0"
    order = "rank DESC, stream_ordering DESC" if by_rank else "stream_ordering DESC"
    rows = await conn.fetch(
        f"SELECT {columns}, m.rank FROM ("
        f"  SELECT s.event_nid, s.stream_ordering, {rank} AS rank FROM event_search s WHERE {where} "
        "   AND ($4::bigint IS NULL OR s.stream_ordering < $4) "
        f"  ORDER BY {order} OFFSET $5 LIMIT $6"
        f") m JOIN events e USING (event_nid) WHERE e.redacted_by IS NULL ORDER BY {order.replace('stream', 'm.stream')}",
        room_nids, term, keys, before_stream, offset, limit,
    )
    count = await conn.fetchval(f"SELECT count(*) FROM event_search s WHERE {where}", room_nids, term, keys)
    return [dict(r) for r in rows], count
