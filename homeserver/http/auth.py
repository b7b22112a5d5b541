"""Authenticating client requests: the access token from the header or the query string."""

from __future__ import annotations

import re
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


# What guests may do (Synapse's `allow_guest` servlets): read and talk in rooms, sync, their profile
# and devices. Matched against the path after `/_matrix/client/{version}`.
GUEST_PATHS = re.compile(
    r"/(sync|initialSync|account/whoami|voip/turnServer|capabilities|pushrules/.*|presence/.*"
    r"|profile/.*|user/[^/]+/(filter.*|account_data/.*|rooms/[^/]+/(account_data|tags).*)|join/.*"
    r"|rooms/[^/]+/(send|state|messages|members|joined_members|context|event|typing|receipt|read_markers"
    r"|initialSync|join|leave|relations|threads)(/.*)?|keys/.*|sendToDevice/.*|devices(/.*)?"
    r"|directory/room/.*|publicRooms|user_directory/search|media/.*)\Z"
)


async def require_user(request: web.Request) -> Requester:
    token = access_token(request)
    if not token:
        raise MatrixError(401, "M_MISSING_TOKEN", "Missing access token")
    requester = await request.app[HOMESERVER].sessions.authenticate(
        token, request.get(CLIENT_IP, request.remote or "-"), request.headers.get("User-Agent")
    )
    request[USER_ID] = requester.user_id
    if requester.is_guest:
        tail = request.path.split("/", 4)[4] if request.path.count("/") >= 4 else ""
        if not GUEST_PATHS.match("/" + tail):
            raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is not allowed here")
    return requester


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def client_paths(path: str) -> list[str]:
    """The stable (v3), legacy (r0) and `unstable` forms of a client-server path (Synapse serves all
    three; older clients and SyTest use them)."""
    return [f"/_matrix/client/v3{path}", f"/_matrix/client/r0{path}", f"/_matrix/client/unstable{path}"]


def add_client_route(routes: web.RouteTableDef, method: str, path: str, handler: Handler) -> None:
    """Serve `handler` at both forms of a client-server path."""
    for full in client_paths(path):
        routes.route(method, full)(handler)
