"""The server-server API we serve: every endpoint authenticates its caller (X-Matrix) before it runs.

Handlers parse, call a federation service with the authenticated origin, and serialise.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from homeserver import __version__
from homeserver.core.ids import server_of
from homeserver.errors import bad_json, forbidden, invalid_param, missing_param, not_found, not_json
from homeserver.http.json import json_response
from homeserver.http.keys import HOMESERVER
from homeserver.services.media import StoredFile

routes = web.RouteTableDef()
FEDERATION = "/_matrix/federation"

FederationHandler = Callable[[web.Request, str], Awaitable[web.Response]]


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise not_json() from None


def authenticated(handler: FederationHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Run `handler` with the origin server of a correctly signed request."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.Response:
        body = await _body(request) if request.method in ("PUT", "POST") else None
        origin = await request.app[HOMESERVER].federation_auth.authenticate(
            request.method, request.raw_path, body, request.headers.getall("Authorization", [])
        )
        return await handler(request, origin)

    return wrapper


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_json("Content must be a JSON object.")
    return body


def _query(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if value is None:
        raise missing_param(f"Missing {name}")
    return value


@routes.get(FEDERATION + "/v1/version")
async def version(request: web.Request) -> web.Response:
    return json_response({"server": {"name": "homeserver", "version": __version__}})


@routes.put(FEDERATION + "/v1/send/{txn_id}")
@authenticated
async def send_transaction(request: web.Request, origin: str) -> web.Response:
    body = _object(await _body(request))
    hs = request.app[HOMESERVER]
    return json_response(await hs.federation_transactions.receive(origin, request.match_info["txn_id"], body))


@routes.get(FEDERATION + "/v1/event/{event_id}")
@authenticated
async def get_event(request: web.Request, origin: str) -> web.Response:
    hs = request.app[HOMESERVER]
    pdu = await hs.federation_events.event_for(origin, request.match_info["event_id"])
    return json_response({"origin": hs.config.server_name, "origin_server_ts": int(time.time() * 1000), "pdus": [pdu]})


@routes.get(FEDERATION + "/v1/state/{room_id}")
@authenticated
async def get_state(request: web.Request, origin: str) -> web.Response:
    hs = request.app[HOMESERVER]
    return json_response(await hs.federation_events.state(origin, request.match_info["room_id"],
                                                          _query(request, "event_id")))


@routes.get(FEDERATION + "/v1/state_ids/{room_id}")
@authenticated
async def get_state_ids(request: web.Request, origin: str) -> web.Response:
    hs = request.app[HOMESERVER]
    return json_response(await hs.federation_events.state_ids(origin, request.match_info["room_id"],
                                                              _query(request, "event_id")))


@routes.get(FEDERATION + "/v1/event_auth/{room_id}/{event_id}")
@authenticated
async def get_event_auth(request: web.Request, origin: str) -> web.Response:
    hs = request.app[HOMESERVER]
    return json_response(await hs.federation_events.event_auth(origin, request.match_info["room_id"],
                                                               request.match_info["event_id"]))


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid_param(f"{name} must be an integer") from None


@routes.get(FEDERATION + "/v1/backfill/{room_id}")
@authenticated
async def backfill(request: web.Request, origin: str) -> web.Response:
    hs = request.app[HOMESERVER]
    from_ids = request.query.getall("v", [])
    if not from_ids:
        raise missing_param("Missing v")
    return json_response(await hs.federation_events.backfill(
        origin, request.match_info["room_id"], from_ids, _int(request, "limit", 10)))


@routes.post(FEDERATION + "/v1/get_missing_events/{room_id}")
@authenticated
async def get_missing_events(request: web.Request, origin: str) -> web.Response:
    body = _object(await _body(request))
    earliest, latest = body.get("earliest_events", []), body.get("latest_events")
    if not isinstance(latest, list) or not isinstance(earliest, list):
        raise bad_json("earliest_events and latest_events must be lists of event ids")
    limit, min_depth = body.get("limit", 10), body.get("min_depth", 0)
    if not isinstance(limit, int) or not isinstance(min_depth, int):
        raise bad_json("limit and min_depth must be integers")
    hs = request.app[HOMESERVER]
    return json_response(await hs.federation_events.missing_events(
        origin, request.match_info["room_id"], [e for e in earliest if isinstance(e, str)],
        [e for e in latest if isinstance(e, str)], limit, min_depth))


def _make(membership: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    @authenticated
    async def make(request: web.Request, origin: str) -> web.Response:
        hs = request.app[HOMESERVER]
        versions = request.query.getall("ver", []) if membership != "leave" else None
        if membership == "join" and not versions:
            versions = ["1"]
        return json_response(await hs.federation_membership.make_membership(
            origin, request.match_info["room_id"], request.match_info["user_id"], membership, versions))

    return make


def _send(membership: str, v1: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
    @authenticated
    async def send(request: web.Request, origin: str) -> web.Response:
        hs = request.app[HOMESERVER]
        omit = request.query.get("omit_members", "false").lower() == "true"
        answer = await hs.federation_membership.send_membership(
            origin, request.match_info["room_id"], request.match_info["event_id"], _object(await _body(request)),
            membership, omit_members=omit and not v1)
        return json_response([200, answer] if v1 else answer)

    return send


for _membership in ("join", "leave", "knock"):
    routes.get(FEDERATION + f"/v1/make_{_membership}/{{room_id}}/{{user_id}}")(_make(_membership))
routes.put(FEDERATION + "/v1/send_join/{room_id}/{event_id}")(_send("join", True))
routes.put(FEDERATION + "/v2/send_join/{room_id}/{event_id}")(_send("join", False))
routes.put(FEDERATION + "/v1/send_leave/{room_id}/{event_id}")(_send("leave", True))
routes.put(FEDERATION + "/v2/send_leave/{room_id}/{event_id}")(_send("leave", False))
routes.put(FEDERATION + "/v1/send_knock/{room_id}/{event_id}")(_send("knock", False))


@routes.put(FEDERATION + "/v2/invite/{room_id}/{event_id}")
@authenticated
async def invite_v2(request: web.Request, origin: str) -> web.Response:
    hs = request.app[HOMESERVER]
    return json_response(await hs.federation_membership.receive_invite(
        origin, request.match_info["room_id"], request.match_info["event_id"], _object(await _body(request))))


@routes.put(FEDERATION + "/v1/invite/{room_id}/{event_id}")
@authenticated
async def invite_v1(request: web.Request, origin: str) -> web.Response:
    """The v1 form: the body is the event itself, the room version is 1 or 2."""
    hs = request.app[HOMESERVER]
    event = _object(await _body(request))
    unsigned = event.get("unsigned") if isinstance(event.get("unsigned"), dict) else {}
    answer = await hs.federation_membership.receive_invite(
        origin, request.match_info["room_id"], request.match_info["event_id"],
        {"room_version": "1", "event": event, "invite_room_state": unsigned.get("invite_room_state", [])})
    return json_response([200, answer])



@routes.get(FEDERATION + "/v1/query/profile")
@authenticated
async def query_profile(request: web.Request, origin: str) -> web.Response:
    hs = request.app[HOMESERVER]
    user_id = _query(request, "user_id")
    if server_of(user_id) != hs.config.server_name:
        raise invalid_param("Not a user of this server")
    profile = await hs.profiles.get(user_id)
    field = request.query.get("field")
    if field is not None:
        if field not in ("displayname", "avatar_url"):
            raise invalid_param("field must be displayname or avatar_url")
        profile = {k: v for k, v in profile.items() if k == field}
    return json_response(profile)


@routes.get(FEDERATION + "/v1/query/directory")
@authenticated
async def query_directory(request: web.Request, origin: str) -> web.Response:
    hs = request.app[HOMESERVER]
    alias = _query(request, "room_alias")
    if server_of(alias) != hs.config.server_name:
        raise not_found("Not an alias of this server")
    return json_response(await hs.directory.resolve(alias))


@routes.get(FEDERATION + "/v1/user/devices/{user_id}")
@authenticated
async def user_devices(request: web.Request, origin: str) -> web.Response:
    return json_response(await request.app[HOMESERVER].e2ee.user_devices(request.match_info["user_id"]))


@routes.post(FEDERATION + "/v1/user/keys/query")
@authenticated
async def user_keys_query(request: web.Request, origin: str) -> web.Response:
    hs = request.app[HOMESERVER]
    wanted = _object(await _body(request)).get("device_keys")
    if not isinstance(wanted, dict):
        raise bad_json("device_keys must map user ids to lists of device ids")
    local = {u: [d for d in devices if isinstance(d, str)] for u, devices in wanted.items()
             if server_of(u) == hs.config.server_name and isinstance(devices, list)}
    keys = await hs.e2ee.local_keys(local, None)
    return json_response({k: keys[k] for k in ("device_keys", "master_keys", "self_signing_keys")})


@routes.post(FEDERATION + "/v1/user/keys/claim")
@authenticated
async def user_keys_claim(request: web.Request, origin: str) -> web.Response:
    hs = request.app[HOMESERVER]
    wanted = _object(await _body(request)).get("one_time_keys")
    if not isinstance(wanted, dict):
        raise bad_json("one_time_keys must map users to devices to algorithms")
    return json_response({"one_time_keys": await hs.e2ee.claim_local(wanted)})


async def _public_rooms(request: web.Request, origin: str, body: dict[str, Any]) -> web.Response:
    hs = request.app[HOMESERVER]
    if not hs.config.allow_public_rooms_over_federation:
        raise forbidden("This server does not share its room directory over federation")
    limit = body.get("limit")
    since = body.get("since")
    search = body.get("filter", {}).get("generic_search_term") if isinstance(body.get("filter"), dict) else None
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise bad_json("limit must be an integer")
    return json_response(await hs.directory.public_rooms(
        limit, since if isinstance(since, str) else None, search if isinstance(search, str) else None, None))


@routes.get(FEDERATION + "/v1/publicRooms")
@authenticated
async def public_rooms_get(request: web.Request, origin: str) -> web.Response:
    query: dict[str, Any] = {"since": request.query.get("since")}
    if "limit" in request.query:
        query["limit"] = _int(request, "limit", 0)
    return await _public_rooms(request, origin, query)


@routes.post(FEDERATION + "/v1/publicRooms")
@authenticated
async def public_rooms_post(request: web.Request, origin: str) -> web.Response:
    return await _public_rooms(request, origin, _object(await _body(request)))


@routes.get(FEDERATION + "/v1/hierarchy/{room_id}")
@authenticated
async def hierarchy(request: web.Request, origin: str) -> web.Response:
    hs = request.app[HOMESERVER]
    suggested = request.query.get("suggested_only", "false").lower() == "true"
    return json_response(await hs.directory.federation_hierarchy(origin, request.match_info["room_id"], suggested))


async def _multipart_media(request: web.Request, stored: StoredFile) -> web.StreamResponse:
    """Federation media answer: an empty JSON metadata part, then the file (streamed)."""
    boundary = secrets.token_hex(16)
    response = web.StreamResponse(headers={"Content-Type": f"multipart/mixed; boundary={boundary}"})
    await response.prepare(request)
    media_headers = {"Content-Type": stored.media_type,
                     "Content-Disposition": stored.headers()["Content-Disposition"]}
    head = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n--{boundary}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in media_headers.items()) + "\r\n")
    await response.write(head.encode("latin-1"))
    loop = asyncio.get_running_loop()
    with await loop.run_in_executor(None, stored.path.open, "rb") as handle:
        while chunk := await loop.run_in_executor(None, handle.read, 65536):
            await response.write(chunk)
    await response.write(f"\r\n--{boundary}--\r\n".encode("latin-1"))
    await response.write_eof()
    return response


@routes.get(FEDERATION + "/v1/media/download/{media_id}")
@authenticated
async def media_download(request: web.Request, origin: str) -> web.StreamResponse:
    hs = request.app[HOMESERVER]
    stored = await hs.media.download(hs.config.server_name, request.match_info["media_id"], False)
    return await _multipart_media(request, stored)


@routes.get(FEDERATION + "/v1/media/thumbnail/{media_id}")
@authenticated
async def media_thumbnail(request: web.Request, origin: str) -> web.StreamResponse:
    hs = request.app[HOMESERVER]
    width, height = _int(request, "width", 0), _int(request, "height", 0)
    stored = await hs.media.thumbnail(hs.config.server_name, request.match_info["media_id"], width, height,
                                      request.query.get("method", "scale"), False)
    return await _multipart_media(request, stored)
