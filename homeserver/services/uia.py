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
from typing import Any, Awaitable, Callable, NamedTuple

from homeserver.errors import InteractiveAuthRequired, MatrixError
from homeserver.services.sessions import now_ms
from homeserver.storage import uia
from homeserver.storage.database import Database

# A stage checker: gets the `auth` dict, returns what to record, raises MatrixError on failure.
StageChecker = Callable[[dict[str, Any]], Awaitable[Any]]

SESSION_LIFETIME_MS = 24 * 60 * 60 * 1000
CLEANUP_INTERVAL_MS = 60 * 60 * 1000


class Completed(NamedTuple):
    """A finished user-interactive authentication."""

    params: dict[str, Any]
    """The request to act on: the first request's body under the last one's."""
    stages: dict[str, Any]
    """What each completed stage recorded."""
    session_id: str
    registered_user_id: str | None
    """The account a registration in this session already created (its retries log in to it)."""


class UserInteractiveAuth:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._next_cleanup_ms = 0

    async def authenticate(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        flows: list[list[str]],
        checkers: dict[str, StageChecker],
        params: dict[str, Any] | None = None,
        keep: bool = False,
    ) -> Completed:
        """Once a flow is complete: the body to act on, what each stage recorded and the session
        (kept until it expires when `keep`, for registration to answer retries); 401 until then."""
        pool = self.database.pool
        auth = body.get("auth")
        if auth is not None and not isinstance(auth, dict):
            raise MatrixError(400, "M_BAD_JSON", "auth must be an object")
        auth = auth or {}
        client_dict = {k: v for k, v in body.items() if k != "auth"}
        session_id = auth.get("session")
        if session_id is None:
            session_id = secrets.token_urlsafe(18)
            now = now_ms()
            if now >= self._next_cleanup_ms:
                # Abandoned sessions (a 401 nobody answered) would otherwise stay for ever.
                self._next_cleanup_ms = now + CLEANUP_INTERVAL_MS
                await uia.delete_sessions_before(pool, now - SESSION_LIFETIME_MS)
            await uia.create_session(pool, session_id, now, method, path, client_dict)
            session = {"client_dict": client_dict, "completed": {}, "registered_user_id": None}
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
            if not keep:
                await uia.delete_session(pool, session_id)
            return Completed({**session["client_dict"], **client_dict}, completed, session_id,
                             session["registered_user_id"])
        if failure is not None and failure.status == 429:
            raise failure
        body = {"flows": [{"stages": flow} for flow in flows], "params": params or {}, "session": session_id}
        body["completed"] = sorted(completed)
        raise InteractiveAuthRequired(body, failure)
