"""`GET /sync` and the filters it reads (client-server API sync.yaml, filter.yaml)."""

from __future__ import annotations

from aiohttp import web

from homeserver.errors import forbidden, invalid_param, missing_param
from homeserver.http.auth import add_client_route, require_user
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import HOMESERVER

routes = web.RouteTableDef()


async def sync(request: web.Request) -> web.Response:
    requester = await require_user(request)
    raw_timeout = request.query.get("timeout", "0")
    if not raw_timeout.isdigit():
        raise invalid_param("timeout must be a non-negative integer")
    full_state = request.query.get("full_state", "false")
    if full_state not in ("true", "false"):
        raise invalid_param("full_state must be true or false")
    set_presence = request.query.get("set_presence", "online")
    if set_presence not in ("online", "offline", "unavailable"):
        raise invalid_param("set_presence must be online, offline or unavailable")
    result = await request.app[HOMESERVER].sync.sync(
        requester, request.query.get("since"), int(raw_timeout), full_state == "true", request.query.get("filter"),
        set_presence,
    )
    return json_response(result)


async def create_filter(request: web.Request) -> web.Response:
    requester = await require_user(request)
    if request.match_info["user_id"] != requester.user_id:
        raise forbidden("Cannot create filters for other users")
    body = await json_body(request)
    filter_id = await request.app[HOMESERVER].sync.create_filter(requester, body)
    return json_response({"filter_id": filter_id})


async def get_filter(request: web.Request) -> web.Response:
    requester = await require_user(request)
    if request.match_info["user_id"] != requester.user_id:
        raise forbidden("Cannot read filters of other users")
    return json_response(await request.app[HOMESERVER].sync.get_filter(requester, request.match_info["filter_id"]))


add_client_route(routes, "GET", "/sync", sync)
add_client_route(routes, "POST", "/user/{user_id}/filter", create_filter)
add_client_route(routes, "GET", "/user/{user_id}/filter/{filter_id}", get_filter)


async def set_presence(request: web.Request) -> web.Response:
    requester = await require_user(request)
    if request.match_info["user_id"] != requester.user_id:
        raise forbidden("Cannot set the presence of other users")
    body = await json_body(request)
    state = body.get("presence")
    if not isinstance(state, str):
        raise missing_param("presence is required")
    await request.app[HOMESERVER].presence.set(requester.user_id, state, body.get("status_msg"))
    return json_response({})


async def get_presence(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(await request.app[HOMESERVER].presence.get(requester.user_id, request.match_info["user_id"]))


add_client_route(routes, "PUT", "/presence/{user_id}/status", set_presence)
add_client_route(routes, "GET", "/presence/{user_id}/status", get_presence)


def _optional_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise invalid_param(f"{name} must be a non-negative integer")
    return int(raw)


async def events(request: web.Request) -> web.Response:
    """The deprecated r0 event stream (old_sync.yaml)."""
    requester = await require_user(request)
    timeout = _optional_int(request, "timeout") or 0
    _optional_int(request, "limit")  # checked as Synapse does; the stream hands out everything since `from`
    return json_response(await request.app[HOMESERVER].legacy_sync.events(
        requester, request.query.get("from"), timeout, request.query.get("room_id")))


async def initial_sync(request: web.Request) -> web.Response:
    requester = await require_user(request)
    archived = request.query.get("archived", "false") == "true"
    return json_response(await request.app[HOMESERVER].legacy_sync.initial_sync(
        requester, _optional_int(request, "limit"), archived))


async def room_initial_sync(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(await request.app[HOMESERVER].legacy_sync.room_initial_sync(
        requester, request.match_info["room_id"], _optional_int(request, "limit")))


add_client_route(routes, "GET", "/events", events)
add_client_route(routes, "GET", "/initialSync", initial_sync)
add_client_route(routes, "GET", "/rooms/{room_id}/initialSync", room_initial_sync)
