"""Account data, global and per room (client-server API account-data.yaml)."""

from __future__ import annotations

from aiohttp import web

from homeserver.http.auth import client_paths, require_user
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import HOMESERVER

routes = web.RouteTableDef()


async def put_data(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request)
    info = request.match_info
    await request.app[HOMESERVER].account_data.put(
        requester, info["user_id"], info.get("room_id", ""), info["type"], body
    )
    return json_response({})


async def get_data(request: web.Request) -> web.Response:
    requester = await require_user(request)
    info = request.match_info
    content = await request.app[HOMESERVER].account_data.get(
        requester, info["user_id"], info.get("room_id", ""), info["type"]
    )
    return json_response(content)


for _path in ("/user/{user_id}/account_data/{type}", "/user/{user_id}/rooms/{room_id}/account_data/{type}"):
    for _full in client_paths(_path):
        routes.put(_full)(put_data)
        routes.get(_full)(get_data)
