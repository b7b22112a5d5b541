"""Push rules, notifications and pushers (thin handlers)."""

from __future__ import annotations

from aiohttp import web

from homeserver.core.push_rules import KINDS
from homeserver.errors import MatrixError, invalid_param
from homeserver.http.auth import add_client_route, require_user
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import HOMESERVER

routes = web.RouteTableDef()


async def all_rules(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response({"global": await request.app[HOMESERVER].push.ruleset(requester.user_id)})


async def scope_rules(request: web.Request) -> web.Response:
    requester = await require_user(request)
    if request.match_info["scope"] != "global":
        raise invalid_param("Only the global scope exists")
    return json_response(await request.app[HOMESERVER].push.ruleset(requester.user_id))


async def kind_rules(request: web.Request) -> web.Response:
    requester = await require_user(request)
    info = request.match_info
    if info["scope"] != "global" or info["kind"] not in KINDS:
        raise invalid_param("Unknown scope or kind")
    return json_response((await request.app[HOMESERVER].push.ruleset(requester.user_id))[info["kind"]])


async def rule(request: web.Request) -> web.Response:
    requester = await require_user(request)
    push = request.app[HOMESERVER].push
    info = request.match_info
    args = (requester, info["scope"], info["kind"], info["rule_id"])
    if request.method == "GET":
        return json_response(await push.get_rule(*args))
    if request.method == "DELETE":
        await push.delete_rule(*args)
        return json_response({})
    await push.put_rule(*args, await json_body(request), request.query.get("before"), request.query.get("after"))
    return json_response({})


async def rule_attribute(request: web.Request) -> web.Response:
    requester = await require_user(request)
    push = request.app[HOMESERVER].push
    info = request.match_info
    args = (requester, info["scope"], info["kind"], info["rule_id"])
    attribute = info["attribute"]
    if attribute not in ("enabled", "actions"):
        raise invalid_param("Unknown rule attribute")
    if request.method == "GET":
        found = await push.get_rule(*args)
        return json_response({attribute: found[attribute]})
    body = await json_body(request)
    if attribute == "enabled":
        await push.set_enabled(*args, body)
    else:
        await push.set_actions(*args, body)
    return json_response({})


async def notifications(request: web.Request) -> web.Response:
    requester = await require_user(request)
    raw_limit = request.query.get("limit", "20")
    if not raw_limit.isdigit() or int(raw_limit) < 1:
        raise invalid_param("limit must be a positive integer")
    result = await request.app[HOMESERVER].push.notifications(
        requester, request.query.get("from"), int(raw_limit), request.query.get("only")
    )
    return json_response(result)


async def pushers(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response({"pushers": await request.app[HOMESERVER].push.pushers(requester)})


async def set_pusher(request: web.Request) -> web.Response:
    requester = await require_user(request)
    await request.app[HOMESERVER].push.set_pusher(requester, await json_body(request))
    return json_response({})


async def incomplete_rule_path(request: web.Request) -> web.Response:
    """A push rule path without its scope, kind or rule id (Synapse answers 400)."""
    await require_user(request)
    raise MatrixError(400, "M_UNRECOGNIZED", "Push rule paths are /pushrules/<scope>/<kind>/<rule_id>")


add_client_route(routes, "GET", "/pushrules/", all_rules)
for _method in ("PUT", "DELETE"):
    add_client_route(routes, _method, "/pushrules/", incomplete_rule_path)
for _method in ("GET", "PUT", "DELETE"):
    add_client_route(routes, _method, "/pushrules/{scope}", incomplete_rule_path)
    add_client_route(routes, _method, "/pushrules/{scope}/{kind}", incomplete_rule_path)
for _method in ("PUT", "DELETE"):
    add_client_route(routes, _method, "/pushrules/{scope}/", incomplete_rule_path)
    add_client_route(routes, _method, "/pushrules/{scope}/{kind}/", incomplete_rule_path)
add_client_route(routes, "GET", "/pushrules/{scope}/", scope_rules)
add_client_route(routes, "GET", "/pushrules/{scope}/{kind}/", kind_rules)
for _method in ("GET", "PUT", "DELETE"):
    add_client_route(routes, _method, "/pushrules/{scope}/{kind}/{rule_id}", rule)
for _method in ("GET", "PUT"):
    add_client_route(routes, _method, "/pushrules/{scope}/{kind}/{rule_id}/{attribute}", rule_attribute)
add_client_route(routes, "GET", "/notifications", notifications)
add_client_route(routes, "GET", "/pushers", pushers)
add_client_route(routes, "POST", "/pushers/set", set_pusher)
