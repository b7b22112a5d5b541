"""Authenticating client requests: the access token from the header or the query string."""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

from homeserver.errors import MatrixError
from homeserver.http.keys import CLIENT_IP, HOMESERVER, USER_ID
from homeserver.services.sessions import Requester


def access_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MatrixError(401, "M_MISSING_TOKEN", "Invalid Authorization header")
        return token.strip()
    return request.query.get("access_token")


async def require_user(request: web.Request) -> Requester:
    token = access_token(request)
    if not token:
        raise MatrixError(401, "M_MISSING_TOKEN", "Missing access token")
    requester = await request.app[HOMESERVER].sessions.authenticate(
        token, request.get(CLIENT_IP, request.remote or "-"), request.headers.get("User-Agent")
    )
    request[USER_ID] = requester.user_id
    return requester


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def client_paths(path: str) -> list[str]:
    """The stable (v3) and legacy (r0) forms of a client-server path."""
    return [f"/_matrix/client/v3{path}", f"/_matrix/client/r0{path}"]


def add_client_route(routes: web.RouteTableDef, method: str, path: str, handler: Handler) -> None:
    """Serve `handler` at both forms of a client-server path."""
    for full in client_paths(path):
        routes.route(method, full)(handler)
