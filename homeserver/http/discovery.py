"""How clients and servers find out what we are: versions and .well-known.

Spec: client-server-api "Server Discovery" and `GET /_matrix/client/versions`.
"""

from __future__ import annotations

from aiohttp import web

from homeserver.errors import not_found
from homeserver.http.json import json_response
from homeserver.http.keys import HOMESERVER

routes = web.RouteTableDef()

# The versions Synapse advertises (clients use them for feature detection, and Element refuses a
# server listing none it knows). Every endpoint they require is served; what is not is optional
# (third-party lookups through application services, login tokens, the support well-known).
# v1.13 and later wait on what they add (extended profile fields, account locking/suspension).
SUPPORTED_SPEC_VERSIONS: tuple[str, ...] = (
    "r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1",
    "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12",
)
UNSTABLE_FEATURES: dict[str, bool] = {"org.matrix.msc3814": True}


@routes.get("/_matrix/client/versions")
async def versions(request: web.Request) -> web.Response:
    """`GET /_matrix/client/versions`: what a client may rely on."""
    return json_response(
        {"versions": list(SUPPORTED_SPEC_VERSIONS), "unstable_features": UNSTABLE_FEATURES}
    )


@routes.get("/.well-known/matrix/client")
async def well_known_client(request: web.Request) -> web.Response:
    """Client discovery, when `serve_client_wellknown` is on."""
    config = request.app[HOMESERVER].config
    if not config.serve_client_wellknown:
        raise not_found("No .well-known/matrix/client configured")
    return json_response({**config.extra_well_known_client_content, "m.homeserver": {"base_url": config.base_url}})


@routes.get("/.well-known/matrix/server")
async def well_known_server(request: web.Request) -> web.Response:
    """Federation delegation, when `serve_server_wellknown` is on (port 443 behind nginx)."""
    config = request.app[HOMESERVER].config
    if not config.serve_server_wellknown:
        raise not_found("No .well-known/matrix/server configured")
    host = config.server_name
    if ":" not in host.rsplit("]", 1)[-1]:
        host += ":443"
    return json_response({"m.server": host})
