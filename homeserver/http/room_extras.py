"""Typing, receipts, read markers, tags and redactions (client-server API typing.yaml,
receipts.yaml, read_markers.yaml, tags.yaml, redaction.yaml)."""

from __future__ import annotations

from aiohttp import web

from homeserver.errors import bad_json, forbidden
from homeserver.http.auth import add_client_route, require_user
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import HOMESERVER

routes = web.RouteTableDef()


async def typing(request: web.Request) -> web.Response:
    requester = await require_user(request)
    if request.match_info["user_id"] != requester.user_id:
        raise forbidden("Cannot set typing notifications for other users")
    body = await json_body(request)
    is_typing = body.get("typing")
    timeout = body.get("timeout", 30_000)
    if not isinstance(is_typing, bool):
        raise bad_json("typing must be a boolean")
    if is_typing and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0):
        raise bad_json("timeout must be a non-negative integer")
    hs = request.app[HOMESERVER]
    await hs.rooms.require_member(request.match_info["room"], requester.user_id)
    hs.typing.set_typing(request.match_info["room"], requester.user_id, is_typing, timeout)
    return json_response({})


async def receipt(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request) if request.can_read_body else {}
    info = request.match_info
    hs = request.app[HOMESERVER]
    if info["type"] == "m.fully_read":
        await hs.rooms.set_read_marker(requester, info["room"], info["event_id"])
    else:
        await hs.receipts.post(requester, info["room"], info["type"], info["event_id"], body.get("thread_id"))
    return json_response({})


async def read_markers(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request)
    hs = request.app[HOMESERVER]
    room_id = request.match_info["room"]
    for key in ("m.fully_read", "m.read", "m.read.private"):
        if key in body and not isinstance(body[key], str):
            raise bad_json(f"{key} must be an event id")
    if "m.fully_read" in body:
        await hs.rooms.set_read_marker(requester, room_id, body["m.fully_read"])
    for receipt_type in ("m.read", "m.read.private"):
        if receipt_type in body:
            await hs.receipts.post(requester, room_id, receipt_type, body[receipt_type], None)
    return json_response({})


async def get_tags(request: web.Request) -> web.Response:
    requester = await require_user(request)
    info = request.match_info
    tags = await request.app[HOMESERVER].account_data.tags(requester, info["user_id"], info["room"])
    return json_response({"tags": tags})


async def put_tag(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request)
    info = request.match_info
    await request.app[HOMESERVER].account_data.set_tag(requester, info["user_id"], info["room"], info["tag"], body)
    return json_response({})


async def delete_tag(request: web.Request) -> web.Response:
    requester = await require_user(request)
    info = request.match_info
    await request.app[HOMESERVER].account_data.set_tag(requester, info["user_id"], info["room"], info["tag"], None)
    return json_response({})


async def redact(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request) if request.can_read_body else {}
    info = request.match_info
    event_id = await request.app[HOMESERVER].rooms.redact(requester, info["room"], info["event_id"], info["txn"], body)
    return json_response({"event_id": event_id})


add_client_route(routes, "PUT", "/rooms/{room}/typing/{user_id}", typing)
add_client_route(routes, "POST", "/rooms/{room}/receipt/{type}/{event_id}", receipt)
add_client_route(routes, "POST", "/rooms/{room}/read_markers", read_markers)
add_client_route(routes, "GET", "/user/{user_id}/rooms/{room}/tags", get_tags)
add_client_route(routes, "PUT", "/user/{user_id}/rooms/{room}/tags/{tag}", put_tag)
add_client_route(routes, "DELETE", "/user/{user_id}/rooms/{room}/tags/{tag}", delete_tag)
add_client_route(routes, "PUT", "/rooms/{room}/redact/{event_id}/{txn}", redact)
