"""The room directory (published rooms), content reports and OpenID tokens."""

from __future__ import annotations

from typing import Any

from homeserver.storage.users import Executor


async def set_published(conn: Executor, room_id: str, published: bool) -> None:
    await conn.execute("UPDATE rooms SET published = $2 WHERE room_id = $1", room_id, published)


async def is_published(conn: Executor, room_id: str) -> bool:
    return bool(await conn.fetchval("SELECT published FROM rooms WHERE room_id = $1", room_id))


async def published_rooms(conn: Executor) -> list[dict[str, Any]]:
    """Published rooms with their joined-member counts, most populated first."""
    rows = await conn.fetch(
        "SELECT r.room_id, r.room_nid, r.room_version, "
        "(SELECT count(*) FROM room_memberships m WHERE m.room_nid = r.room_nid AND m.membership = 'join') AS joined "
        "FROM rooms r WHERE r.published ORDER BY joined DESC, r.room_id"
    )
    return [dict(r) for r in rows]


async def add_report(
    conn: Executor, reporter: str, room_id: str | None, event_id: str | None, target_user: str | None,
    reason: str | None, score: int | None, now_ms: int,
) -> None:
    await conn.execute(
        "INSERT INTO event_reports (reporter, room_id, event_id, target_user, reason, score, created_ts) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)", reporter, room_id, event_id, target_user, reason, score, now_ms,
    )


async def add_openid_token(conn: Executor, token_hash: bytes, user_id: str, expires_ts: int) -> None:
    await conn.execute(
        "INSERT INTO openid_tokens (token_hash, user_id, expires_ts) VALUES ($1, $2, $3)", token_hash, user_id, expires_ts
    )


async def openid_user(conn: Executor, token_hash: bytes, now_ms: int) -> str | None:
    return await conn.fetchval(
        "SELECT user_id FROM openid_tokens WHERE token_hash = $1 AND expires_ts > $2", token_hash, now_ms
    )


async def search_users(
    conn: Executor, searcher: str, term: str, search_all: bool, limit: int
) -> list[dict[str, Any]]:
    """Users matching `term` by user id or display name whom the searcher may find (as Synapse):
    those in a public room (joinable by anyone, or world-readable), themselves included, and the
    others who share a room with them (or everyone else known, with `search_all`); best matches
    first. Our users are named by their profiles, other servers' by their latest membership."""
    pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await conn.fetch(
        """
        WITH public_rooms AS (
            SELECT cs.room_nid FROM current_state cs
            JOIN state_keys sk ON sk.state_key_nid = cs.state_key_nid AND sk.state_key = ''
                 AND sk.type IN ('m.room.join_rules', 'm.room.history_visibility')
            JOIN events e ON e.event_nid = cs.event_nid
            WHERE (e.json::jsonb -> 'content' ->> 'join_rule' = 'public'
                   OR e.json::jsonb -> 'content' ->> 'history_visibility' = 'world_readable')
              -- A room this server has left is no longer followed: its members are not listed.
              AND EXISTS (SELECT 1 FROM room_memberships lm JOIN users lu ON lu.user_id = lm.user_id
                          WHERE lm.room_nid = cs.room_nid AND lm.membership = 'join')
        ), findable AS (
            SELECT theirs.user_id, theirs.event_nid FROM room_memberships theirs
            WHERE theirs.membership = 'join' AND (
                  theirs.room_nid IN (SELECT room_nid FROM public_rooms)
               OR (theirs.user_id <> $1 AND ($4 OR EXISTS (
                      SELECT 1 FROM room_memberships mine WHERE mine.room_nid = theirs.room_nid
                      AND mine.user_id = $1 AND mine.membership = 'join'))))
        ), candidates AS (
            SELECT u.user_id, p.displayname, p.avatar_url FROM users u LEFT JOIN profiles p USING (user_id)
            WHERE NOT u.deactivated AND (($4 AND u.user_id <> $1) OR u.user_id IN (SELECT user_id FROM findable))
            UNION ALL
            SELECT * FROM (
                SELECT DISTINCT ON (f.user_id) f.user_id, e.json::jsonb -> 'content' ->> 'displayname',
                       e.json::jsonb -> 'content' ->> 'avatar_url'
                FROM findable f JOIN events e ON e.event_nid = f.event_nid
                WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = f.user_id)
                ORDER BY f.user_id, f.event_nid DESC
            ) remote
        )
        SELECT user_id, displayname, avatar_url,
               (lower(coalesce(displayname, '')) LIKE lower($2) || '%' OR lower(user_id) LIKE '@' || lower($2) || '%')
                   AS prefix
        FROM candidates
        WHERE user_id ILIKE $3 OR displayname ILIKE $3
        ORDER BY prefix DESC, lower(coalesce(displayname, user_id)), user_id
        LIMIT $5
        """,
        searcher, term, pattern, search_all, limit,
    )
    return [dict(r) for r in rows]
