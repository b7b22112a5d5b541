"""Synapse-compatible admin endpoints: shared-secret registration and registration tokens.

`/_synapse/admin/v1/register` lets Synapse's `register_new_matrix_user` and test
suites create accounts; `/_synapse/admin/v1/registration_tokens` manages the tokens
that `registration_requires_token` asks for (server admins only).
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from aiohttp import web

from homeserver.errors import MatrixError, bad_json, forbidden, invalid_param, not_found
from homeserver.http.auth import require_user
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import HOMESERVER
from homeserver.services.sessions import now_ms
from homeserver.storage import registration_tokens, users

routes = web.RouteTableDef()
_TOKEN_CHARS = string.ascii_letters + string.digits + "._~-"


@routes.get("/_synapse/admin/v1/register")
async def register_nonce(request: web.Request) -> web.Response:
    return json_response({"nonce": request.app[HOMESERVER].admin_registration.new_nonce()})


@routes.post("/_synapse/admin/v1/register")
async def register(request: web.Request) -> web.Response:
    body = await json_body(request)
    return json_response(await request.app[HOMESERVER].admin_registration.register(body))


async def require_admin(request: web.Request) -> None:
    requester = await require_user(request)
    user = await users.get_user(request.app[HOMESERVER].database.pool, requester.user_id)
    if user is None or not user["admin"]:
        raise forbidden("You are not a server admin")


def _optional_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise invalid_param(f"{key} must be a non-negative integer or null")
    return value


def _token_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("token", "uses_allowed", "pending", "completed", "expiry_time")}


@routes.get("/_synapse/admin/v1/registration_tokens")
async def list_tokens(request: web.Request) -> web.Response:
    await require_admin(request)
    rows = await registration_tokens.list_tokens(request.app[HOMESERVER].database.pool)
    valid = request.query.get("valid")
    if valid is not None:
        now = now_ms()
        want = valid == "true"
        rows = [r for r in rows if want == (
            (r["uses_allowed"] is None or r["completed"] < r["uses_allowed"])
            and (r["expiry_time"] is None or r["expiry_time"] > now)
        )]
    return json_response({"registration_tokens": [_token_json(r) for r in rows]})


@routes.post("/_synapse/admin/v1/registration_tokens/new")
async def new_token(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await json_body(request)
    token = body.get("token")
    uses_allowed = _optional_int(body, "uses_allowed")
    expiry_time = _optional_int(body, "expiry_time")
    if expiry_time is not None and expiry_time < now_ms():
        raise invalid_param("expiry_time must not be in the past")
    if token is None:
        length = _optional_int(body, "length") or 16
        if not 1 <= length <= 64:
            raise invalid_param("length must be between 1 and 64")
        token = "".join(secrets.choice(_TOKEN_CHARS) for _ in range(length))
    elif not isinstance(token, str) or not 1 <= len(token) <= 64 or any(c not in _TOKEN_CHARS for c in token):
        raise invalid_param("token must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '~' or '-'")
    pool = request.app[HOMESERVER].database.pool
    if not await registration_tokens.create_token(pool, token, uses_allowed, expiry_time):
        raise MatrixError(400, "M_INVALID_PARAM", f"Token already exists: {token}")
    row = await registration_tokens.get_token(pool, token)
    assert row is not None
    return json_response(_token_json(row))


@routes.get("/_synapse/admin/v1/registration_tokens/{token}")
async def get_token(request: web.Request) -> web.Response:
    await require_admin(request)
    row = await registration_tokens.get_token(request.app[HOMESERVER].database.pool, request.match_info["token"])
    if row is None:
        raise not_found("No such registration token")
    return json_response(_token_json(row))


@routes.put("/_synapse/admin/v1/registration_tokens/{token}")
async def update_token(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await json_body(request)
    unknown = set(body) - {"uses_allowed", "expiry_time"}
    if unknown:
        raise bad_json(f"Unknown fields: {', '.join(sorted(unknown))}")
    changes = {key: _optional_int(body, key) for key in body}
    row = await registration_tokens.update_token(
        request.app[HOMESERVER].database.pool, request.match_info["token"], changes
    )
    if row is None:
        raise not_found("No such registration token")
    return json_response(_token_json(row))


@routes.delete("/_synapse/admin/v1/registration_tokens/{token}")
async def delete_token(request: web.Request) -> web.Response:
    await require_admin(request)
    if not await registration_tokens.delete_token(request.app[HOMESERVER].database.pool, request.match_info["token"]):
        raise not_found("No such registration token")
    return json_response({})
