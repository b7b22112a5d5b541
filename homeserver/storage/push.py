"""Push rules, their settings, notification counts and pushers."""

from __future__ import annotations

import json
from typing import Any

from homeserver.storage.users import Executor


async def user_rules(conn: Executor, user_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT kind, rule_id, position, pattern, conditions::text AS conditions, actions::text AS actions "
        "FROM push_rules WHERE user_id = $1 ORDER BY kind, position", user_id,
    )
    return [{**dict(r), "conditions": json.loads(r["conditions"]), "actions": json.loads(r["actions"])} for r in rows]


async def rule_settings(conn: Executor, user_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT kind, rule_id, enabled, actions::text AS actions FROM push_rule_settings WHERE user_id = $1", user_id
    )
    return {(r["kind"], r["rule_id"]): {"enabled": r["enabled"],
                                        "actions": json.loads(r["actions"]) if r["actions"] else None} for r in rows}


async def users_with_rules(conn: Executor, user_ids: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT user_id FROM push_rules WHERE user_id = ANY($1::text[]) UNION "
        "SELECT DISTINCT user_id FROM push_rule_settings WHERE user_id = ANY($1::text[])", user_ids,
    )
    return {r["user_id"] for r in rows}


async def put_rule(
    conn: Executor, user_id: str, kind: str, rule_id: str, position: float, pattern: str | None,
    conditions: list[Any], actions: list[Any],
) -> None:
    await conn.execute(
        "INSERT INTO push_rules (user_id, kind, rule_id, position, pattern, conditions, actions) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb) ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET "
        "position = EXCLUDED.position, pattern = EXCLUDED.pattern, conditions = EXCLUDED.conditions, "
        "actions = EXCLUDED.actions",
        user_id, kind, rule_id, position, pattern, json.dumps(conditions), json.dumps(actions),
    )


async def delete_rule(conn: Executor, user_id: str, kind: str, rule_id: str) -> None:
    await conn.execute(
        "DELETE FROM push_rules WHERE user_id = $1 AND kind = $2 AND rule_id = $3", user_id, kind, rule_id
    )
    await conn.execute(
        "DELETE FROM push_rule_settings WHERE user_id = $1 AND kind = $2 AND rule_id = $3", user_id, kind, rule_id
    )


async def set_rule_setting(
    conn: Executor, user_id: str, kind: str, rule_id: str, enabled: bool | None = None, actions: list[Any] | None = None
) -> None:
    await conn.execute(
        "INSERT INTO push_rule_settings (user_id, kind, rule_id, enabled, actions) VALUES ($1, $2, $3, $4, $5::jsonb) "
        "ON CONFLICT (user_id, kind, rule_id) DO UPDATE SET "
        "enabled = COALESCE(EXCLUDED.enabled, push_rule_settings.enabled), "
        "actions = COALESCE(EXCLUDED.actions, push_rule_settings.actions)",
        user_id, kind, rule_id, enabled, json.dumps(actions) if actions is not None else None,
    )


async def add_push_actions(conn: Executor, rows: list[tuple[int, str, int, int, bool, str, str]]) -> None:
    """(event_nid, user_id, room_nid, stream_ordering, highlight, actions JSON, thread_id)."""
    await conn.executemany(
        "INSERT INTO event_push_actions (event_nid, user_id, room_nid, stream_ordering, highlight, actions, thread_id) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT DO NOTHING", rows,
    )


# With no read receipt, counting starts at the user's membership event (as in Synapse), so that
# the invite and what came before the join do not count.
_JOINED = ("(SELECT m.stream_ordering FROM room_memberships m WHERE m.room_nid = a.room_nid "
           "AND m.user_id = a.user_id AND m.membership = 'join'), 0")


async def unread_counts(conn: Executor, user_id: str, room_nids: list[int]) -> dict[int, dict[str, tuple[int, int]]]:
    """Per room and thread: (notifications, highlights) after the user's latest read receipt there."""
    rows = await conn.fetch(
        f"""
        SELECT a.room_nid, a.thread_id, count(*) AS notifications, count(*) FILTER (WHERE a.highlight) AS highlights
        FROM event_push_actions a
        WHERE a.user_id = $1 AND a.room_nid = ANY($2::bigint[])
          AND a.stream_ordering > COALESCE((
              SELECT max(e.stream_ordering) FROM receipts r JOIN events e ON e.event_id = r.event_id
              WHERE r.room_nid = a.room_nid AND r.user_id = $1 AND r.receipt_type IN ('m.read', 'm.read.private')
                AND (r.thread_id = '' OR r.thread_id = a.thread_id)), {_JOINED})
        GROUP BY a.room_nid, a.thread_id
        """,
        user_id, room_nids,
    )
    found: dict[int, dict[str, tuple[int, int]]] = {}
    for row in rows:
        found.setdefault(row["room_nid"], {})[row["thread_id"]] = (row["notifications"], row["highlights"])
    return found


async def notifications(
    conn: Executor, user_id: str, before: int | None, limit: int, only_highlight: bool
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT a.event_nid, a.stream_ordering, a.actions::text AS actions, r.room_id, r.room_version,
               e.event_id, e.json, e.redacted_by, e.type, e.state_key, e.sender, e.origin_server_ts,
               e.room_nid, e.state_group, e.rejected_reason, e.depth,
               EXISTS (SELECT 1 FROM receipts rc JOIN events re ON re.event_id = rc.event_id
                       WHERE rc.room_nid = a.room_nid AND rc.user_id = $1 AND rc.receipt_type IN ('m.read', 'm.read.private')
                         AND re.stream_ordering >= a.stream_ordering) AS read
        FROM event_push_actions a JOIN events e USING (event_nid) JOIN rooms r ON r.room_nid = a.room_nid
        WHERE a.user_id = $1 AND ($2::bigint IS NULL OR a.stream_ordering < $2) AND (NOT $4 OR a.highlight)
        ORDER BY a.stream_ordering DESC LIMIT $3
        """,
        user_id, before, limit, only_highlight,
    )
    return [{**dict(r), "actions": json.loads(r["actions"])} for r in rows]


async def set_pusher(conn: Executor, user_id: str, device_id: str, pusher: dict[str, Any], append: bool) -> None:
    if not append:
        await conn.execute("DELETE FROM pushers WHERE app_id = $1 AND pushkey = $2 AND user_id <> $3",
                           pusher["app_id"], pusher["pushkey"], user_id)
    await conn.execute(
        "INSERT INTO pushers (user_id, access_token_device, kind, app_id, pushkey, data, app_display_name, "
        "device_display_name, profile_tag, lang, pushkey_ts) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, extract(epoch FROM now())::bigint) "
        "ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET kind = EXCLUDED.kind, data = EXCLUDED.data, "
        "app_display_name = EXCLUDED.app_display_name, device_display_name = EXCLUDED.device_display_name, "
        "profile_tag = EXCLUDED.profile_tag, lang = EXCLUDED.lang",
        user_id, device_id, pusher["kind"], pusher["app_id"], pusher["pushkey"], json.dumps(pusher["data"]),
        pusher["app_display_name"], pusher["device_display_name"], pusher.get("profile_tag"), pusher["lang"],
    )


async def delete_pusher(conn: Executor, user_id: str, app_id: str, pushkey: str) -> None:
    await conn.execute("DELETE FROM pushers WHERE user_id = $1 AND app_id = $2 AND pushkey = $3", user_id, app_id, pushkey)


async def list_pushers(conn: Executor, user_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT kind, app_id, pushkey, data::text AS data, app_display_name, device_display_name, profile_tag, lang "
        "FROM pushers WHERE user_id = $1 ORDER BY app_id, pushkey", user_id,
    )
    return [{**{k: v for k, v in dict(r).items() if v is not None}, "data": json.loads(r["data"])} for r in rows]


async def http_pushers_of(conn: Executor, user_ids: list[str]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT user_id, app_id, pushkey, pushkey_ts, data::text AS data FROM pushers "
        "WHERE kind = 'http' AND user_id = ANY($1::text[])", user_ids,
    )
    return [{**dict(r), "data": json.loads(r["data"])} for r in rows]


async def rooms_with_unread(conn: Executor, user_ids: list[str]) -> dict[str, int]:
    """Per user: how many rooms hold notifications after their read receipt (the app badge)."""
    rows = await conn.fetch(
        f"""
        SELECT a.user_id, count(DISTINCT a.room_nid) AS rooms FROM event_push_actions a
        WHERE a.user_id = ANY($1::text[])
          AND a.stream_ordering > COALESCE((
              SELECT max(e.stream_ordering) FROM receipts r JOIN events e ON e.event_id = r.event_id
              WHERE r.room_nid = a.room_nid AND r.user_id = a.user_id
                AND r.receipt_type IN ('m.read', 'm.read.private')
                AND (r.thread_id = '' OR r.thread_id = a.thread_id)), {_JOINED})
        GROUP BY a.user_id
        """,
        user_ids,
    )
    return {r["user_id"]: r["rooms"] for r in rows}
