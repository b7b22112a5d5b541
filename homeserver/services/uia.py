"""User-interactive authentication (client-server API "User-Interactive Authentication API").

A session remembers the request it began with (method, path and body); a
later request in the same session must be for the same operation. Each
stage that succeeds is recorded; when every stage of one flow is done the
operation proceeds with the first request's body under the current one.
Until then the answer is 401 with `flows`, `params`, `session`, `completed`
(and the stage's `errcode`/`error` when it just failed).
"""

from __future__ import annotations

import secrets
from typing import Any, Awaitable, Callable

from homeserver.errors import InteractiveAuthRequired, MatrixError
from homeserver.services.sessions import now_ms
from homeserver.storage import uia
from homeserver.storage.database import Database

# A stage checker: gets the `auth` dict, returns what to record, raises MatrixError on failure.
StageChecker = Callable[[dict[str, Any]], Awaitable[Any]]

SESSION_LIFETIME_MS = 24 * 60 * 60 * 1000


class UserInteractiveAuth:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def authenticate(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        flows: list[list[str]],
        checkers: dict[str, StageChecker],
        params: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Once a flow is complete: the body to act on and what each stage recorded; 401 until then."""
        pool = self.database.pool
        auth = body.get("auth")
        if auth is not None and not isinstance(auth, dict):
            raise MatrixError(400, "M_BAD_JSON", "auth must be an object")
        auth = auth or {}
        client_dict = {k: v for k, v in body.items() if k != "auth"}
        session_id = auth.get("session")
        if session_id is None:
            session_id = secrets.token_urlsafe(18)
            await uia.create_session(pool, session_id, now_ms(), method, path, client_dict)
            session = {"client_dict": client_dict, "completed": {}}
        else:
            if not isinstance(session_id, str):
                raise MatrixError(400, "M_BAD_JSON", "auth.session must be a string")
            session = await uia.get_session(pool, session_id)
            if session is None or session["created_ts"] < now_ms() - SESSION_LIFETIME_MS:
                raise MatrixError(400, "M_UNKNOWN", "Unknown or expired user-interactive auth session")
            if (session["method"], session["uri"]) != (method, path):
                raise MatrixError(
                    403, "M_FORBIDDEN", "Requested operation has changed during the UI authentication session."
                )
        completed: dict[str, Any] = dict(session["completed"])
        failure: MatrixError | None = None
        stage = auth.get("type")
        if stage is not None:
            checker = checkers.get(stage) if any(stage in flow for flow in flows) else None
            if checker is None:
                failure = MatrixError(400, "M_UNRECOGNIZED", f"Unrecognized or unexpected auth type {stage!r}")
            else:
                try:
                    completed[stage] = await checker(auth)
                    await uia.mark_stage_completed(pool, session_id, stage, completed[stage])
                except MatrixError as exc:
                    failure = exc
        if failure is None and any(all(s in completed for s in flow) for flow in flows):
            await uia.delete_session(pool, session_id)
            return {**session["client_dict"], **client_dict}, completed
        if failure is not None and failure.status == 429:
            raise failure
        body = {"flows": [{"stages": flow} for flow in flows], "params": params or {}, "session": session_id}
        body["completed"] = sorted(completed)
        raise InteractiveAuthRequired(body, failure)
