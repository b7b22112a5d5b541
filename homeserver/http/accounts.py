"""Registration, login, logout, tokens, passwords, deactivation, capabilities.

Spec: client-server API registration.yaml, login.yaml, logout.yaml, refresh.yaml,
whoami.yaml, password_management.yaml, account_deactivation.yaml, capabilities.yaml,
registration_tokens.yaml, administrative_contact.yaml.
"""

from __future__ import annotations

from aiohttp import web

from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.errors import forbidden, missing_param
from homeserver.http.auth import client_paths, require_user
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import CLIENT_IP, HOMESERVER

routes = web.RouteTableDef()

THIRD_PARTY_CHANGES = (
    "/account/3pid", "/account/3pid/add", "/account/3pid/bind", "/account/3pid/delete",
    "/account/3pid/unbind", "/account/3pid/email/requestToken", "/account/3pid/msisdn/requestToken",
    "/account/password/email/requestToken", "/account/password/msisdn/requestToken",
    "/register/email/requestToken", "/register/msisdn/requestToken",
)


def _route(method: str, path: str):  # noqa: ANN202 - a decorator factory over routes
    def register(handler):  # noqa: ANN001, ANN202
        for full in client_paths(path):
            routes.route(method, full)(handler)
        return handler

    return register


@_route("POST", "/register")
async def register(request: web.Request) -> web.Response:
    body = await json_body(request)
    result = await request.app[HOMESERVER].accounts.register(
        "POST", "/register", body, request.query.get("kind", "user"), request[CLIENT_IP]
    )
    return json_response(result)


@_route("GET", "/register/available")
async def register_available(request: web.Request) -> web.Response:
    username = request.query.get("username")
    if not username:
        raise missing_param("username is required")
    await request.app[HOMESERVER].accounts.check_available(username)
    return json_response({"available": True})


@routes.get("/_matrix/client/v1/register/m.login.registration_token/validity")
async def registration_token_validity(request: web.Request) -> web.Response:
    token = request.query.get("token")
    if token is None:
        raise missing_param("token is required")
    accounts = request.app[HOMESERVER].accounts
    accounts.registrations.check(request[CLIENT_IP])
    return json_response({"valid": await accounts.token_valid(token)})


@_route("GET", "/login")
async def login_flows(request: web.Request) -> web.Response:
    return json_response({"flows": [{"type": "m.login.password"}]})


@_route("POST", "/login")
async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    return json_response(await request.app[HOMESERVER].accounts.login(body, request[CLIENT_IP]))


@_route("POST", "/refresh")
async def refresh(request: web.Request) -> web.Response:
    body = await json_body(request)
    token = body.get("refresh_token")
    if not isinstance(token, str):
        raise missing_param("refresh_token is required")
    return json_response(await request.app[HOMESERVER].sessions.refresh(token))


@_route("POST", "/logout")
async def logout(request: web.Request) -> web.Response:
    await request.app[HOMESERVER].accounts.logout(await require_user(request))
    return json_response({})


@_route("POST", "/logout/all")
async def logout_all(request: web.Request) -> web.Response:
    await request.app[HOMESERVER].accounts.logout_all(await require_user(request))
    return json_response({})


@_route("GET", "/account/whoami")
async def whoami(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(
        {"user_id": requester.user_id, "device_id": requester.device_id, "is_guest": requester.is_guest}
    )


@_route("POST", "/account/password")
async def change_password(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request)
    await request.app[HOMESERVER].accounts.change_password(requester, "POST", "/account/password", body)
    return json_response({})


@_route("POST", "/account/deactivate")
async def deactivate(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request)
    await request.app[HOMESERVER].accounts.deactivate(requester, "POST", "/account/deactivate", body)
    return json_response({"id_server_unbind_result": "no-support"})


@_route("GET", "/account/3pid")
async def third_party_ids(request: web.Request) -> web.Response:
    await require_user(request)
    return json_response({"threepids": []})


async def third_party_change(request: web.Request) -> web.Response:
    """Every change of third-party identifiers: not supported by this server (yet)."""
    raise forbidden("Third-party identifiers (email, phone) are not supported on this server")


for _path in THIRD_PARTY_CHANGES:
    for _full in client_paths(_path):
        routes.post(_full)(third_party_change)


@_route("GET", "/capabilities")
async def capabilities(request: web.Request) -> web.Response:
    await require_user(request)
    config = request.app[HOMESERVER].config
    return json_response(
        {
            "capabilities": {
                "m.change_password": {"enabled": True},
                "m.room_versions": {
                    "default": config.default_room_version,
                    "available": {v: "stable" for v in KNOWN_ROOM_VERSIONS},
                },
                "m.set_displayname": {"enabled": True},
                "m.set_avatar_url": {"enabled": True},
                "m.3pid_changes": {"enabled": False},
                "m.get_login_token": {"enabled": False},
            }
        }
    )

