"""Server keys: our self-signed key document, and other servers' keys served as a notary
(server-server API, Retrieving server keys)."""

from __future__ import annotations

import time

from aiohttp import web

from homeserver.core.signing import sign_json
from homeserver.errors import bad_json, invalid_param
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import HOMESERVER

routes = web.RouteTableDef()


@routes.get("/_matrix/key/v2/server")
async def server_key(request: web.Request) -> web.Response:
    return json_response(request.app[HOMESERVER].server_keys.key_document())


@routes.get("/_matrix/key/v2/server/{key_id}")
async def server_key_by_id(request: web.Request) -> web.Response:
    """The deprecated form with a key id; answered with the whole document, as Synapse does."""
    return json_response(request.app[HOMESERVER].server_keys.key_document())


async def _notary(request: web.Request, wanted: dict[str, int]) -> web.Response:
    hs = request.app[HOMESERVER]
    keys = hs.server_keys

    def countersign(doc: dict) -> dict:
        return sign_json(doc, keys.server_name, keys.signing_key)

    documents: list[dict] = []
    for server, minimum in wanted.items():
        documents.extend(await hs.keyring.notary_documents(server, minimum, countersign))
    return json_response({"server_keys": documents})


@routes.get("/_matrix/key/v2/query/{server_name}/{key_id}")
@routes.get("/_matrix/key/v2/query/{server_name}")
async def notary_get(request: web.Request) -> web.Response:
    """Another server's keys as we know them, countersigned (server-server API, Querying Keys Through
    Another Server)."""
    raw = request.query.get("minimum_valid_until_ts")
    if raw is not None and not raw.isdigit():
        raise invalid_param("minimum_valid_until_ts must be an integer")
    minimum = int(raw) if raw is not None else int(time.time() * 1000)
    return await _notary(request, {request.match_info["server_name"]: minimum})


@routes.post("/_matrix/key/v2/query")
async def notary_post(request: web.Request) -> web.Response:
    body = await json_body(request)
    servers = body.get("server_keys")
    if not isinstance(servers, dict):
        raise bad_json("server_keys must map server names to key ids")
    now = int(time.time() * 1000)
    wanted: dict[str, int] = {}
    for server, by_key in servers.items():
        if not isinstance(by_key, dict):
            raise bad_json("server_keys must map server names to key ids")
        minimums = [c.get("minimum_valid_until_ts") for c in by_key.values() if isinstance(c, dict)]
        wanted[server] = max([m for m in minimums if isinstance(m, int)] or [now])
    return await _notary(request, wanted)
