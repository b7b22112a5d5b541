"""Build the aiohttp application a listener serves, from its `resources`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from homeserver.config import ListenerConfig
from homeserver.http import (
    account_data,
    accounts,
    admin,
    devices,
    directory,
    discovery,
    e2ee,
    federation,
    media,
    profile,
    push,
    room_extras,
    rooms,
    server_keys,
    sync,
)
from homeserver.http.json import MAX_JSON_BODY
from homeserver.http.keys import HOMESERVER
from homeserver.http.middleware import access_log, cors, errors, make_forwarded_middleware

if TYPE_CHECKING:
    from homeserver.server import HomeServer

# Which route tables each listener resource name serves.
RESOURCE_ROUTES: dict[str, tuple[web.RouteTableDef, ...]] = {
    "client": (
        discovery.routes,
        accounts.routes,
        devices.routes,
        profile.routes,
        account_data.routes,
        admin.routes,
        rooms.routes,
        room_extras.routes,
        sync.routes,
        e2ee.routes,
        media.routes,
        directory.routes,
        push.routes,
    ),
    "federation": (server_keys.routes, directory.federation_routes, federation.routes),
    "keys": (server_keys.routes,),
    "media": (media.routes,),
    "health": (),
}


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK")


def build_app(hs: "HomeServer", listener: ListenerConfig) -> web.Application:
    app = web.Application(
        middlewares=[
            make_forwarded_middleware(listener.x_forwarded),
            access_log,
            cors,
            errors,
        ],
        client_max_size=MAX_JSON_BODY,
    )
    app[HOMESERVER] = hs
    app.router.add_get("/health", health)
    added: set[int] = set()
    for name in sorted(listener.resource_names):
        for table in RESOURCE_ROUTES[name]:
            if id(table) not in added:
                app.router.add_routes(table)
                added.add(id(table))
    return app
