"""The `ui_auth_sessions` table: user-interactive authentication in progress."""

from __future__ import annotations

import json
from typing import Any

from homeserver.storage.users import Executor


async def create_session(
    conn: Executor, session_id: str, now_ms: int, method: str, uri: str, client_dict: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO ui_auth_sessions (session_id, created_ts, method, uri, client_dict) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        session_id, now_ms, method, uri, json.dumps(client_dict),
    )


async def get_session(conn: Executor, session_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT session_id, created_ts, method, uri, client_dict::text AS client_dict, "
        "completed::text AS completed, registered_user_id FROM ui_auth_sessions WHERE session_id = $1",
        session_id,
    )
    if row is None:
        return None
    found = dict(row)
    found["client_dict"] = json.loads(found["client_dict"])
    found["completed"] = json.loads(found["completed"])
    return found


async def mark_stage_completed(conn: Executor, session_id: str, stage: str, result: Any) -> None:
    await conn.execute(
        "UPDATE ui_auth_sessions SET completed = completed || jsonb_build_object($2::text, $3::jsonb) "
        "WHERE session_id = $1",
        session_id, stage, json.dumps(result),
    )


async def set_registered_user(conn: Executor, session_id: str, user_id: str) -> None:
    await conn.execute("UPDATE ui_auth_sessions SET registered_user_id = $2 WHERE session_id = $1", session_id, user_id)


async def delete_session(conn: Executor, session_id: str) -> None:
    await conn.execute("DELETE FROM ui_auth_sessions WHERE session_id = $1", session_id)


async def delete_sessions_before(conn: Executor, cutoff_ms: int) -> None:
    await conn.execute("DELETE FROM ui_auth_sessions WHERE created_ts < $1", cutoff_ms)
