"""Profiles (client-server API profile.yaml)."""

from __future__ import annotations

from aiohttp import web

from homeserver.errors import not_found
from homeserver.http.auth import client_paths, require_user
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import HOMESERVER

routes = web.RouteTableDef()
FIELDS = ("displayname", "avatar_url")


async def get_profile(request: web.Request) -> web.Response:
    return json_response(await request.app[HOMESERVER].profiles.get(request.match_info["user_id"]))


async def get_field(request: web.Request) -> web.Response:
    field = request.match_info["field"]
    if field not in FIELDS:
        raise not_found(f"Unknown profile field {field}")
    profile = await request.app[HOMESERVER].profiles.get(request.match_info["user_id"])
    if field not in profile:
        raise not_found(f"The user has no {field}")
    return json_response({field: profile[field]})


async def set_field(request: web.Request) -> web.Response:
    field = request.match_info["field"]
    if field not in FIELDS:
        raise not_found(f"Unknown profile field {field}")
    requester = await require_user(request)
    body = await json_body(request)
    await request.app[HOMESERVER].profiles.set_field(requester, request.match_info["user_id"], field, body)
    return json_response({})


for _full in client_paths("/profile/{user_id}"):
    routes.get(_full)(get_profile)
for _full in client_paths("/profile/{user_id}/{field}"):
    routes.get(_full)(get_field)
    routes.put(_full)(set_field)
