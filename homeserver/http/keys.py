"""Typed application keys shared by the route modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from homeserver.server import HomeServer

HOMESERVER: "web.AppKey[HomeServer]" = web.AppKey("homeserver")

# Per-request values: the client's address (after X-Forwarded-For) and, once
# authenticated, the user id (for the access log).
CLIENT_IP = web.RequestKey("client_ip", str)
USER_ID = web.RequestKey("user_id", str)
