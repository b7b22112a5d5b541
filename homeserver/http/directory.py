"""Aliases, the public room list, TURN credentials, OpenID, reports, whois and other small endpoints."""

from __future__ import annotations

from aiohttp import web

from homeserver.errors import MatrixError, bad_json, forbidden, invalid_param
from homeserver.http.auth import access_token, add_client_route, require_user
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import HOMESERVER
from homeserver.storage import users

routes = web.RouteTableDef()
federation_routes = web.RouteTableDef()


async def put_alias(request: web.Request) -> web.Response:
    requester = await require_user(request)
    await request.app[HOMESERVER].directory.create_alias(requester, request.match_info["alias"], await json_body(request))
    return json_response({})


async def get_alias(request: web.Request) -> web.Response:
    return json_response(await request.app[HOMESERVER].directory.resolve(request.match_info["alias"]))


async def delete_alias(request: web.Request) -> web.Response:
    requester = await require_user(request)
    await request.app[HOMESERVER].directory.delete_alias(requester, request.match_info["alias"])
    return json_response({})


async def room_aliases(request: web.Request) -> web.Response:
    requester = await require_user(request)
    found = await request.app[HOMESERVER].directory.room_aliases(requester, request.match_info["room"])
    return json_response({"aliases": found})


async def get_visibility(request: web.Request) -> web.Response:
    visibility = await request.app[HOMESERVER].directory.visibility(request.match_info["room"])
    return json_response({"visibility": visibility})


async def put_visibility(request: web.Request) -> web.Response:
    requester = await require_user(request)
    await request.app[HOMESERVER].directory.set_visibility(requester, request.match_info["room"],
                                                          await json_body(request))
    return json_response({})


def _limit(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise invalid_param("limit must be a non-negative integer")


async def public_rooms_get(request: web.Request) -> web.Response:
    query = request.query
    result = await request.app[HOMESERVER].directory.public_rooms(
        _limit(query.get("limit")), query.get("since"), None, query.get("server")
    )
    return json_response(result)


async def public_rooms_post(request: web.Request) -> web.Response:
    await require_user(request)
    body = await json_body(request)
    search_filter = body.get("filter", {})
    if not isinstance(search_filter, dict):
        raise bad_json("filter must be an object")
    term = search_filter.get("generic_search_term")
    if term is not None and not isinstance(term, str):
        raise bad_json("generic_search_term must be a string")
    since = body.get("since")
    if since is not None and not isinstance(since, str):
        raise bad_json("since must be a string")
    result = await request.app[HOMESERVER].directory.public_rooms(
        _limit(body.get("limit")), since, term, request.query.get("server")
    )
    return json_response(result)


async def search_users(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(await request.app[HOMESERVER].directory.search_users(requester, await json_body(request)))


async def room_summary(request: web.Request) -> web.Response:
    requester_id = (await require_user(request)).user_id if access_token(request) else None
    return json_response(await request.app[HOMESERVER].directory.room_summary(requester_id, request.match_info["room"]))


async def hierarchy(request: web.Request) -> web.Response:
    requester = await require_user(request)
    query = request.query
    for key in ("limit", "max_depth"):
        if key in query and not query[key].isdigit():
            raise invalid_param(f"{key} must be a non-negative integer")
    suggested = query.get("suggested_only", "false")
    if suggested not in ("true", "false"):
        raise invalid_param("suggested_only must be true or false")
    result = await request.app[HOMESERVER].directory.hierarchy(
        requester, request.match_info["room"], suggested == "true",
        int(query["max_depth"]) if "max_depth" in query else None, max(1, min(int(query.get("limit", "50")), 100)),
        query.get("from"),
    )
    return json_response(result)


async def turn_server(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(request.app[HOMESERVER].directory.turn_server(requester))


async def openid_token(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(await request.app[HOMESERVER].directory.openid_token(requester, request.match_info["user_id"]))


async def openid_userinfo(request: web.Request) -> web.Response:
    token = request.query.get("access_token")
    if not token:
        raise MatrixError(401, "M_MISSING_TOKEN", "access_token is required")
    return json_response(await request.app[HOMESERVER].directory.openid_userinfo(token))


async def report_event(request: web.Request) -> web.Response:
    requester = await require_user(request)
    info = request.match_info
    await request.app[HOMESERVER].directory.report(requester, await json_body(request), info["room"],
                                                  info.get("event_id"))
    return json_response({})


async def report_user(request: web.Request) -> web.Response:
    requester = await require_user(request)
    await request.app[HOMESERVER].directory.report(requester, await json_body(request),
                                                  target_user=request.match_info["user_id"])
    return json_response({})


async def whois(request: web.Request) -> web.Response:
    requester = await require_user(request)
    hs = request.app[HOMESERVER]
    user_id = request.match_info["user_id"]
    caller = await users.get_user(hs.database.pool, requester.user_id)
    if user_id != requester.user_id and not (caller and caller["admin"]):
        raise forbidden("Only server admins may look up other users")
    await hs.sessions.flush_last_seen()
    found = await hs.accounts.whois_devices(user_id)
    return json_response({"user_id": user_id, "devices": found})


async def thirdparty_protocols(request: web.Request) -> web.Response:
    await require_user(request)
    return json_response({})


async def sso_not_configured(request: web.Request) -> web.Response:
    raise MatrixError(400, "M_UNRECOGNIZED", "Single sign-on is not configured on this server")


add_client_route(routes, "PUT", "/directory/room/{alias}", put_alias)
add_client_route(routes, "GET", "/directory/room/{alias}", get_alias)
add_client_route(routes, "DELETE", "/directory/room/{alias}", delete_alias)
add_client_route(routes, "GET", "/rooms/{room}/aliases", room_aliases)
add_client_route(routes, "GET", "/directory/list/room/{room}", get_visibility)
add_client_route(routes, "PUT", "/directory/list/room/{room}", put_visibility)
add_client_route(routes, "GET", "/publicRooms", public_rooms_get)
add_client_route(routes, "POST", "/publicRooms", public_rooms_post)
add_client_route(routes, "GET", "/voip/turnServer", turn_server)
add_client_route(routes, "POST", "/user_directory/search", search_users)
add_client_route(routes, "POST", "/user/{user_id}/openid/request_token", openid_token)
add_client_route(routes, "POST", "/rooms/{room}/report/{event_id}", report_event)
add_client_route(routes, "POST", "/rooms/{room}/report", report_event)
add_client_route(routes, "POST", "/users/{user_id}/report", report_user)
add_client_route(routes, "GET", "/admin/whois/{user_id}", whois)
add_client_route(routes, "GET", "/thirdparty/protocols", thirdparty_protocols)
add_client_route(routes, "GET", "/login/sso/redirect", sso_not_configured)
add_client_route(routes, "GET", "/login/sso/redirect/{idp}", sso_not_configured)
routes.get("/_matrix/client/v1/room_summary/{room}")(room_summary)
routes.get("/_matrix/client/unstable/im.nheko.summary/rooms/{room}/summary")(room_summary)
routes.get("/_matrix/client/unstable/im.nheko.summary/summary/{room}")(room_summary)
routes.get("/_matrix/client/v1/rooms/{room}/hierarchy")(hierarchy)
federation_routes.get("/_matrix/federation/v1/openid/userinfo")(openid_userinfo)
