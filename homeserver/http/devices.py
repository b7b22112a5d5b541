"""Device management (client-server API device_management.yaml)."""

from __future__ import annotations

from aiohttp import web

from homeserver.http.auth import client_paths, require_user
from homeserver.http.json import json_body, json_response
from homeserver.http.keys import HOMESERVER

routes = web.RouteTableDef()


async def list_devices(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response({"devices": await request.app[HOMESERVER].accounts.list_devices(requester)})


async def get_device(request: web.Request) -> web.Response:
    requester = await require_user(request)
    device_id = request.match_info["device_id"]
    return json_response(await request.app[HOMESERVER].accounts.get_device(requester, device_id))


async def rename_device(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request)
    await request.app[HOMESERVER].accounts.rename_device(requester, request.match_info["device_id"], body)
    return json_response({})


async def delete_device(request: web.Request) -> web.Response:
    requester = await require_user(request)
    device_id = request.match_info["device_id"]
    body = await json_body(request) if request.can_read_body else {}
    accounts = request.app[HOMESERVER].accounts
    await accounts.get_device(requester, device_id)
    await accounts.delete_devices(requester, [device_id], "DELETE", f"/devices/{device_id}", body)
    return json_response({})


async def delete_devices(request: web.Request) -> web.Response:
    requester = await require_user(request)
    body = await json_body(request)
    await request.app[HOMESERVER].accounts.delete_devices(requester, None, "POST", "/delete_devices", body)
    return json_response({})


for _full in client_paths("/devices"):
    routes.get(_full)(list_devices)
for _full in client_paths("/devices/{device_id}"):
    routes.get(_full)(get_device)
    routes.put(_full)(rename_device)
    routes.delete(_full)(delete_device)
for _full in client_paths("/delete_devices"):
    routes.post(_full)(delete_devices)
