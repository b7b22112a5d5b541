"""Media: uploads, downloads and thumbnails, authenticated and legacy (thin handlers)."""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from homeserver.errors import MatrixError, invalid_param
from homeserver.http.auth import require_user
from homeserver.http.json import json_response
from homeserver.http.keys import HOMESERVER
from homeserver.services.media import StoredFile

routes = web.RouteTableDef()
CHUNK = 64 * 1024


async def _chunks(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(CHUNK):
        yield chunk


def _upload_args(request: web.Request) -> tuple[str | None, str | None, int | None]:
    length = request.headers.get("Content-Length")
    return request.headers.get("Content-Type"), request.query.get("filename"), int(length) if length and length.isdigit() else None


async def upload(request: web.Request) -> web.Response:
    requester = await require_user(request)
    media_type, filename, length = _upload_args(request)
    uri = await request.app[HOMESERVER].media.upload(requester, _chunks(request), media_type, filename, length)
    return json_response({"content_uri": uri})


async def create(request: web.Request) -> web.Response:
    requester = await require_user(request)
    return json_response(await request.app[HOMESERVER].media.create(requester))


async def upload_to(request: web.Request) -> web.Response:
    requester = await require_user(request)
    media_type, filename, length = _upload_args(request)
    await request.app[HOMESERVER].media.upload_to(
        requester, request.match_info["server"], request.match_info["media_id"], _chunks(request), media_type,
        filename, length,
    )
    return json_response({})


def _file_response(stored: StoredFile) -> web.FileResponse:
    return web.FileResponse(stored.path, headers={"Content-Type": stored.media_type, **stored.headers()})


def _download(legacy: bool):  # noqa: ANN202
    async def handler(request: web.Request) -> web.StreamResponse:
        if not legacy:
            await require_user(request)
        info = request.match_info
        stored = await request.app[HOMESERVER].media.download(info["server"], info["media_id"], legacy,
                                                              info.get("filename"))
        return _file_response(stored)

    return handler


def _thumbnail(legacy: bool):  # noqa: ANN202
    async def handler(request: web.Request) -> web.StreamResponse:
        if not legacy:
            await require_user(request)
        query = request.query
        if not query.get("width", "").isdigit() or not query.get("height", "").isdigit():
            raise invalid_param("width and height must be positive integers")
        info = request.match_info
        stored = await request.app[HOMESERVER].media.thumbnail(
            info["server"], info["media_id"], int(query["width"]), int(query["height"]),
            query.get("method", "scale"), legacy,
        )
        return _file_response(stored)

    return handler


def _config(legacy: bool):  # noqa: ANN202
    async def handler(request: web.Request) -> web.Response:
        if not legacy:
            await require_user(request)
        return json_response({"m.upload.size": request.app[HOMESERVER].media.max_upload_size})

    return handler


async def preview_url(request: web.Request) -> web.Response:
    requester = await require_user(request)
    url = request.query.get("url")
    if not url:
        raise MatrixError(400, "M_MISSING_PARAM", "url is required")
    return json_response(await request.app[HOMESERVER].url_previews.preview(requester, url))


routes.post("/_matrix/media/v3/upload")(upload)
routes.post("/_matrix/media/r0/upload")(upload)
routes.post("/_matrix/media/v1/create")(create)
routes.put("/_matrix/media/v3/upload/{server}/{media_id}")(upload_to)
for _base, _legacy in (("/_matrix/client/v1/media", False), ("/_matrix/media/v3", True), ("/_matrix/media/r0", True)):
    routes.get(f"{_base}/download/{{server}}/{{media_id}}")(_download(_legacy))
    routes.get(f"{_base}/download/{{server}}/{{media_id}}/{{filename}}")(_download(_legacy))
    routes.get(f"{_base}/thumbnail/{{server}}/{{media_id}}")(_thumbnail(_legacy))
    routes.get(f"{_base}/config")(_config(_legacy))
    routes.get(f"{_base}/preview_url")(preview_url)
