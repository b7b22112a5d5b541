"""Profiles (displayname, avatar_url): our users', and other servers' users' asked over federation.

Propagation of changes into room membership events belongs to the rooms service.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from homeserver.config import Config
from homeserver.core.ids import server_of
from homeserver.errors import MatrixError, bad_json, forbidden, not_found
from homeserver.federation.client import FederationClient, FederationError, Unreachable
from homeserver.services.sessions import Requester
from homeserver.storage import profiles, users
from homeserver.storage.database import Database

MAX_LENGTHS = {"displayname": 256, "avatar_url": 1000}


class Profiles:
    def __init__(self, config: Config, database: Database) -> None:
        self.config = config
        self.database = database
        self.on_change: Callable[[str], Awaitable[None]] | None = None
        """Propagates a change into room memberships; set by the server with the rooms service."""
        self.federation_client: FederationClient | None = None
        """Asks other servers for their users' profiles; set by the server."""

    async def get(self, user_id: str) -> dict[str, Any]:
        if server_of(user_id) != self.config.server_name:
            return await self._remote(user_id)
        user = await users.get_user(self.database.pool, user_id)
        if user is None:
            raise not_found("Profile was not found")
        profile = await profiles.get_profile(self.database.pool, user_id) or {}
        return {k: v for k, v in profile.items() if v is not None}

    async def _remote(self, user_id: str) -> dict[str, Any]:
        """Another server's user, asked of their server (`/query/profile`)."""
        if self.federation_client is None:
            raise not_found("Profile was not found")
        try:
            answer = await self.federation_client.request(
                "GET", server_of(user_id), "/_matrix/federation/v1/query/profile", query={"user_id": user_id},
                timeout_s=10,
            )
        except FederationError as exc:
            if exc.status == 404:
                raise not_found("Profile was not found") from None
            raise MatrixError(502, "M_UNKNOWN", f"{server_of(user_id)} did not answer: {exc}") from None
        except Unreachable as exc:
            raise MatrixError(502, "M_UNKNOWN", f"Could not reach {server_of(user_id)}: {exc}") from None
        if not isinstance(answer, dict):
            raise MatrixError(502, "M_UNKNOWN", "Invalid profile answer")
        return {k: v for k, v in answer.items() if k in ("displayname", "avatar_url") and isinstance(v, str)}

    async def set_field(self, requester: Requester, user_id: str, field: str, body: dict[str, Any]) -> None:
        if user_id != requester.user_id:
            raise forbidden("You can only change your own profile")
        value = body.get(field)
        if value is not None and not isinstance(value, str):
            raise bad_json(f"{field} must be a string")
        if value is not None and len(value) > MAX_LENGTHS[field]:
            raise MatrixError(400, "M_INVALID_PARAM", f"{field} is longer than {MAX_LENGTHS[field]} characters")
        await profiles.set_profile_field(self.database.pool, user_id, field, value or None)
        if self.on_change is not None:
            await self.on_change(user_id)
