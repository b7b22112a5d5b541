"""`GET /_matrix/key/v2/server`: our self-signed key document (server-server API, Retrieving server keys)."""

from __future__ import annotations

from aiohttp import web

from homeserver.http.json import json_response
from homeserver.http.keys import HOMESERVER

routes = web.RouteTableDef()


@routes.get("/_matrix/key/v2/server")
async def server_key(request: web.Request) -> web.Response:
    return json_response(request.app[HOMESERVER].server_keys.key_document())


@routes.get("/_matrix/key/v2/server/{key_id}")
async def server_key_by_id(request: web.Request) -> web.Response:
    """The deprecated form with a key id; answered with the whole document, as Synapse does."""
    return json_response(request.app[HOMESERVER].server_keys.key_document())
