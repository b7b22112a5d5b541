"""Rooms: creation, membership, sending, state, history (thin handlers over `services.rooms`)."""

from __future__ import annotations

import json
import secrets

from aiohttp import web

from homeserver.errors import bad_json, invalid_param, missing_param
from homeserver.http.auth import add_client_route, require_user
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import HOMESERVER
from homeserver.services.filters import EventFilter

routes = web.RouteTableDef()


async def create_room(request: web.Request) -> web.Response:
    requester = await require_user(request)
    room_id = await request.app[HOMESERVER].rooms.create_room(requester, await json_body(request))
    return json_response({"room_id": room_id})


async def join(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request) if request.can_read_body else {}
    via = request.query.getall("via", []) + request.query.getall("server_name", [])
    room_id = await request.app[HOMESERVER].rooms.join(requester, request.match_info["room"], body, via)
    return json_response({"room_id": room_id})


def _membership_handler(membership: str, needs_target: bool, action: str | None = None):  # noqa: ANN202
    async def handler(request: web.Request) -> web.Response:
        requester = await require_user(request)
        body = await json_body(request) if request.can_read_body else {}
        target = requester.user_id
        if needs_target:
            target = body.get("user_id")
            if not isinstance(target, str):
                raise missing_param("user_id is required")
        await request.app[HOMESERVER].rooms.change_membership(
            requester, request.match_info["room"], target, membership, body, action or membership
        )
        return json_response({})

    return handler


async def knock(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request) if request.can_read_body else {}
    via = request.query.getall("via", []) + request.query.getall("server_name", [])
    room_id = await request.app[HOMESERVER].rooms.knock(requester, request.match_info["room"], body, via)
    return json_response({"room_id": room_id})


async def upgrade(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request)
    new_room = await request.app[HOMESERVER].rooms.upgrade(requester, request.match_info["room"], body)
    return json_response({"replacement_room": new_room})


async def forget(request: web.Request) -> web.Response:
    requester = await require_user(request)
    await request.app[HOMESERVER].rooms.forget(requester, request.match_info["room"])
    return json_response({})


async def joined_rooms(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response({"joined_rooms": await request.app[HOMESERVER].rooms.joined_rooms(requester)})


async def send(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request)
    info = request.match_info
    # `POST .../send/{type}` (no transaction id) is Synapse's older form: each call sends anew.
    txn_id = info.get("txn") or "post-" + secrets.token_urlsafe(16)
    event_id = await request.app[HOMESERVER].rooms.send(requester, info["room"], info["type"], txn_id, body)
    return json_response({"event_id": event_id})


async def put_state(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request)
    info = request.match_info
    event_id = await request.app[HOMESERVER].rooms.set_state(
        requester, info["room"], info["type"], info.get("state_key", ""), body
    )
    return json_response({"event_id": event_id})


async def get_state(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(await request.app[HOMESERVER].rooms.state(requester, request.match_info["room"]))


async def get_state_event(request: web.Request) -> web.Response:
    requester = await require_user(request)
    info = request.match_info
    whole = request.query.get("format", "content")
    if whole not in ("content", "event"):
        raise invalid_param("format must be 'content' or 'event'")
    content = await request.app[HOMESERVER].rooms.state_event(
        requester, info["room"], info["type"], info.get("state_key", ""), whole_event=whole == "event"
    )
    return json_response(content)


async def members(request: web.Request) -> web.Response:
    requester = await require_user(request)
    query = request.query
    for key in ("membership", "not_membership"):
        if key in query and query[key] not in ("join", "invite", "knock", "leave", "ban"):
            raise invalid_param(f"{key} must be one of join, invite, knock, leave, ban")
    chunk = await request.app[HOMESERVER].rooms.members(
        requester, request.match_info["room"], query.get("at"), query.get("membership"), query.get("not_membership")
    )
    return json_response({"chunk": chunk})


def _int_query(request: web.Request, key: str, default: int | None = None) -> int:
    raw = request.query.get(key)
    if raw is None:
        if default is None:
            raise missing_param(f"{key} is required")
        return default
    if not raw.isdigit():
        raise invalid_param(f"{key} must be a non-negative integer")
    return int(raw)


def _event_filter(request: web.Request) -> EventFilter | None:
    """The `filter` query parameter of /messages and /context (a RoomEventFilter as JSON)."""
    if "filter" not in request.query:
        return None
    try:
        definition = json.loads(request.query["filter"])
    except ValueError:
        raise bad_json("filter is not valid JSON") from None
    return EventFilter.parse(definition, "filter")


async def context(request: web.Request) -> web.Response:
    requester = await require_user(request)
    limit = min(_int_query(request, "limit", 10), 100)
    result = await request.app[HOMESERVER].rooms.context(
        requester, request.match_info["room"], request.match_info["event_id"], limit, _event_filter(request)
    )
    return json_response(result)


async def timestamp_to_event(request: web.Request) -> web.Response:
    requester = await require_user(request)
    direction = request.query.get("dir")
    if direction not in ("f", "b"):
        raise invalid_param("dir must be 'f' or 'b'")
    result = await request.app[HOMESERVER].rooms.timestamp_to_event(
        requester, request.match_info["room"], _int_query(request, "ts"), direction == "f"
    )
    return json_response(result)


async def joined_members(request: web.Request) -> web.Response:
    requester = await require_user(request)
    joined = await request.app[HOMESERVER].rooms.joined_members(requester, request.match_info["room"])
    return json_response({"joined": joined})


async def get_event(request: web.Request) -> web.Response:
    requester = await require_user(request)
    info = request.match_info
    return json_response(await request.app[HOMESERVER].rooms.event(requester, info["room"], info["event_id"]))


async def messages(request: web.Request) -> web.Response:
    requester = await require_user(request)
    direction = request.query.get("dir", "b")
    if direction not in ("b", "f"):
        raise invalid_param("dir must be 'b' or 'f'")
    raw_limit = request.query.get("limit", "10")
    if not raw_limit.isdigit():
        raise invalid_param("limit must be a non-negative integer")
    result = await request.app[HOMESERVER].rooms.messages(
        requester, request.match_info["room"], request.query.get("from"), direction, int(raw_limit),
        request.query.get("to"), _event_filter(request),
    )
    return json_response(result)


add_client_route(routes, "POST", "/createRoom", create_room)
add_client_route(routes, "POST", "/join/{room}", join)
add_client_route(routes, "POST", "/rooms/{room}/join", join)
add_client_route(routes, "POST", "/rooms/{room}/invite", _membership_handler("invite", True))
add_client_route(routes, "POST", "/rooms/{room}/leave", _membership_handler("leave", False))
add_client_route(routes, "POST", "/rooms/{room}/kick", _membership_handler("leave", True, "kick"))
add_client_route(routes, "POST", "/rooms/{room}/ban", _membership_handler("ban", True))
add_client_route(routes, "POST", "/rooms/{room}/unban", _membership_handler("leave", True, "unban"))
add_client_route(routes, "POST", "/rooms/{room}/forget", forget)
add_client_route(routes, "POST", "/knock/{room}", knock)
add_client_route(routes, "POST", "/rooms/{room}/upgrade", upgrade)
add_client_route(routes, "GET", "/joined_rooms", joined_rooms)
add_client_route(routes, "PUT", "/rooms/{room}/send/{type}/{txn}", send)
add_client_route(routes, "POST", "/rooms/{room}/send/{type}", send)
add_client_route(routes, "PUT", "/rooms/{room}/state/{type}", put_state)
add_client_route(routes, "PUT", "/rooms/{room}/state/{type}/{state_key:.*}", put_state)
add_client_route(routes, "GET", "/rooms/{room}/state", get_state)
add_client_route(routes, "GET", "/rooms/{room}/state/{type}", get_state_event)
add_client_route(routes, "GET", "/rooms/{room}/state/{type}/{state_key:.*}", get_state_event)
add_client_route(routes, "GET", "/rooms/{room}/members", members)
add_client_route(routes, "GET", "/rooms/{room}/joined_members", joined_members)
add_client_route(routes, "GET", "/rooms/{room}/event/{event_id}", get_event)
async def relations(request: web.Request) -> web.Response:
    requester = await require_user(request)
    direction = request.query.get("dir", "b")
    if direction not in ("b", "f"):
        raise invalid_param("dir must be 'b' or 'f'")
    info = request.match_info
    result = await request.app[HOMESERVER].rooms.relations(
        requester, info["room"], info["event_id"], info.get("rel_type"), info.get("event_type"),
        request.query.get("from"), request.query.get("to"), max(1, min(_int_query(request, "limit", 50), 1000)),
        direction,
    )
    return json_response(result)


async def threads(request: web.Request) -> web.Response:
    requester = await require_user(request)
    include = request.query.get("include", "all")
    if include not in ("all", "participated"):
        raise invalid_param("include must be 'all' or 'participated'")
    result = await request.app[HOMESERVER].rooms.threads(
        requester, request.match_info["room"], include == "participated", request.query.get("from"),
        max(1, min(_int_query(request, "limit", 50), 1000)),
    )
    return json_response(result)


async def search(request: web.Request) -> web.Response:
    requester = await require_user(request)
    result = await request.app[HOMESERVER].rooms.search(requester, await json_body(request),
                                                        request.query.get("next_batch"))
    return json_response(result)


add_client_route(routes, "GET", "/rooms/{room}/messages", messages)
add_client_route(routes, "POST", "/search", search)
for _suffix in ("", "/{rel_type}", "/{rel_type}/{event_type}"):
    routes.get("/_matrix/client/v1/rooms/{room}/relations/{event_id}" + _suffix)(relations)
routes.get("/_matrix/client/v1/rooms/{room}/threads")(threads)
add_client_route(routes, "GET", "/rooms/{room}/context/{event_id}", context)
routes.get("/_matrix/client/v1/rooms/{room}/timestamp_to_event")(timestamp_to_event)
