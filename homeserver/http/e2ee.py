"""End-to-end encryption endpoints: keys, to-device, cross-signing, key backup (thin handlers)."""

from __future__ import annotations

from aiohttp import web

from homeserver.errors import invalid_param, missing_param
from homeserver.http.auth import add_client_route, require_user
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import HOMESERVER
from homeserver.services.rooms import parse_position

routes = web.RouteTableDef()


async def upload_keys(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(await request.app[HOMESERVER].e2ee.upload_keys(requester, await json_body(request)))


async def query_keys(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(await request.app[HOMESERVER].e2ee.query_keys(requester, await json_body(request)))


async def claim_keys(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(await request.app[HOMESERVER].e2ee.claim_keys(requester, await json_body(request)))


async def key_changes(request: web.Request) -> web.Response:
    requester = await require_user(request)
    if "from" not in request.query or "to" not in request.query:
        raise missing_param("from and to are required")
    (since, since_events), (upto, upto_events) = (_positions(request.query[k]) for k in ("from", "to"))
    return json_response(await request.app[HOMESERVER].e2ee.changes(requester, since, upto, since_events, upto_events))


def _positions(token: str) -> tuple[int, int | None]:
    """The device-list and events positions of a sync token (its sixth and first parts), or a
    plain device-list position."""
    parts = token[1:].split("_") if token.startswith("s") else []
    if len(parts) == 7 and parts[5].isdigit() and parts[0].isdigit():
        return int(parts[5]), int(parts[0])
    return parse_position(token), None


async def send_to_device(request: web.Request) -> web.Response:
    requester = await require_user(request)
    info = request.match_info
    await request.app[HOMESERVER].e2ee.send_to_device(requester, info["type"], info["txn"], await json_body(request))
    return json_response({})


async def upload_cross_signing(request: web.Request) -> web.Response:
    requester = await require_user(request)
    await request.app[HOMESERVER].e2ee.upload_cross_signing(
        requester, "POST", "/keys/device_signing/upload", await json_body(request)
    )
    return json_response({})


async def upload_signatures(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(await request.app[HOMESERVER].e2ee.upload_signatures(requester, await json_body(request)))


async def create_backup(request: web.Request) -> web.Response:
    requester = await require_user(request)
    version = await request.app[HOMESERVER].e2ee.create_backup(requester, await json_body(request))
    return json_response({"version": version})


async def get_backup(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(await request.app[HOMESERVER].e2ee.backup_info(requester, request.match_info.get("version")))


async def update_backup(request: web.Request) -> web.Response:
    requester = await require_user(request)
    await request.app[HOMESERVER].e2ee.update_backup(requester, request.match_info["version"], await json_body(request))
    return json_response({})


async def delete_backup(request: web.Request) -> web.Response:
    requester = await require_user(request)
    await request.app[HOMESERVER].e2ee.delete_backup(requester, request.match_info["version"])
    return json_response({})


async def room_keys(request: web.Request) -> web.Response:
    requester = await require_user(request)
    e2ee = request.app[HOMESERVER].e2ee
    info = request.match_info
    room_id, session_id = info.get("room_id"), info.get("session_id")
    version = request.query.get("version")
    if request.method == "GET":
        return json_response(await e2ee.get_room_keys(requester, version, room_id, session_id))
    if request.method == "DELETE":
        return json_response(await e2ee.delete_room_keys(requester, version, room_id, session_id))
    body = await json_body(request)
    if session_id is not None:
        rooms = {room_id: {"sessions": {session_id: body}}}
    elif room_id is not None:
        rooms = {room_id: body}
    else:
        if not isinstance(body.get("rooms"), dict):
            raise invalid_param("rooms must be an object")
        rooms = body["rooms"]
    return json_response(await e2ee.put_room_keys(requester, version, rooms))


add_client_route(routes, "POST", "/keys/upload", upload_keys)
add_client_route(routes, "POST", "/keys/query", query_keys)
add_client_route(routes, "POST", "/keys/claim", claim_keys)
add_client_route(routes, "GET", "/keys/changes", key_changes)
add_client_route(routes, "PUT", "/sendToDevice/{type}/{txn}", send_to_device)
add_client_route(routes, "POST", "/keys/device_signing/upload", upload_cross_signing)
add_client_route(routes, "POST", "/keys/signatures/upload", upload_signatures)
add_client_route(routes, "POST", "/room_keys/version", create_backup)
add_client_route(routes, "GET", "/room_keys/version", get_backup)
add_client_route(routes, "GET", "/room_keys/version/{version}", get_backup)
add_client_route(routes, "PUT", "/room_keys/version/{version}", update_backup)
add_client_route(routes, "DELETE", "/room_keys/version/{version}", delete_backup)
for _path in ("/room_keys/keys", "/room_keys/keys/{room_id}", "/room_keys/keys/{room_id}/{session_id}"):
    for _method in ("GET", "PUT", "DELETE"):
        add_client_route(routes, _method, _path, room_keys)


DEHYDRATED = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"


async def dehydrated_device(request: web.Request) -> web.Response:
    requester = await require_user(request)
    service = request.app[HOMESERVER].dehydrated_devices
    if request.method == "GET":
        return json_response(await service.get(requester))
    if request.method == "DELETE":
        return json_response(await service.delete(requester))
    return json_response(await service.put(requester, await json_body(request)))


async def dehydrated_device_events(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request) if request.can_read_body else {}
    return json_response(
        await request.app[HOMESERVER].dehydrated_devices.events(requester, request.match_info["device_id"], body)
    )


for _method in ("GET", "PUT", "DELETE"):
    routes.route(_method, DEHYDRATED)(dehydrated_device)
routes.post(DEHYDRATED + "/{device_id}/events")(dehydrated_device_events)
