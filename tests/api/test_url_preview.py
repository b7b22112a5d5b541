"""URL previews: OpenGraph from a loopback page, its image stored as media, and the address
checks that keep previews from reaching private networks."""

from __future__ import annotations

import io
from typing import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from PIL import Image

from tests.api.helpers import Api
from tests.conftest import StartServer

OPEN = {"enable_registration": True, "enable_registration_without_verification": True}
PAGE = b"""<html><head><title>  Fallback
 title </title>
<meta property="og:title" content="A &amp; B">
<meta property="og:description" content="All about it">
<meta property="og:image" content="/cat.png">
</head><body><img src="/other.png"></body></html>"""


@pytest.fixture
async def site() -> AsyncIterator[str]:
    """A small web site on loopback: a page with OpenGraph tags, its image, a redirect, a big file."""
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(out, format="PNG")
    image = out.getvalue()
    def serve(make: Callable[[], web.StreamResponse]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(_request: web.Request) -> web.StreamResponse:
            return make()

        return handler

    async def moved(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/page")

    app = web.Application()
    app.router.add_get("/page", serve(lambda: web.Response(body=PAGE, content_type="text/html", charset="utf-8")))
    app.router.add_get("/cat.png", serve(lambda: web.Response(body=image, content_type="image/png")))
    app.router.add_get("/plain", serve(lambda: web.Response(body=b"<title>Only a title</title>",
                                                            content_type="text/html")))
    app.router.add_get("/moved", moved)
    app.router.add_get("/big", serve(lambda: web.Response(body=b"x" * 300_000, content_type="text/html")))
    app.router.add_get("/gone", serve(lambda: web.Response(status=404)))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_previews(start_server: StartServer, http, site: str) -> None:  # noqa: ANN001
    hs = await start_server(**OPEN, url_preview_enabled=True, url_preview_ip_range_whitelist=("127.0.0.1/32",),
                            max_spider_size="200K")
    api = Api(http, hs)
    token = (await api.register("alice"))["access_token"]
    preview = "/_matrix/client/v1/media/preview_url"
    status, og = await api.call("GET", preview, token=token, query={"url": f"{site}/page"})
    assert status == 200, og
    assert (og["og:title"], og["og:description"]) == ("A & B", "All about it")
    assert og["og:image"].startswith("mxc://test.local/") and og["og:image:type"] == "image/png"
    media_id = og["og:image"].rsplit("/", 1)[1]
    async with http.get(f"{api.base}/_matrix/client/v1/media/download/test.local/{media_id}",
                        headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200 and Image.open(io.BytesIO(await resp.read())).size == (40, 30)
    assert (await api.call("GET", preview, token=token, query={"url": f"{site}/moved"}))[1]["og:title"] == "A & B"
    assert (await api.call("GET", preview, token=token, query={"url": f"{site}/plain"}))[1] == {
        "og:title": "Only a title"}
    assert (await api.call("GET", "/_matrix/media/v3/preview_url", token=token,
                           query={"url": f"{site}/page"}))[0] == 200
    for query, expected in [
        ({"url": f"{site}/big"}, (502, "M_TOO_LARGE")),
        ({"url": f"{site}/gone"}, (502, "M_UNKNOWN")),
        ({"url": "ftp://example.org/"}, (400, "M_INVALID_PARAM")),
        ({}, (400, "M_MISSING_PARAM")),
    ]:
        status, body = await api.call("GET", preview, token=token, query=query)
        assert (status, body["errcode"]) == expected, query
    assert (await api.call("GET", preview, query={"url": f"{site}/page"}))[0] == 401


async def test_private_addresses_are_refused(start_server: StartServer, http, site: str) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN, url_preview_enabled=True))
    token = (await api.register("alice"))["access_token"]
    port = site.rsplit(":", 1)[1]
    for url in (f"{site}/page", f"http://localhost:{port}/page", f"http://[::1]:{port}/page",
                f"http://[::ffff:127.0.0.1]:{port}/page", f"http://10.1.2.3:{port}/page"):
        status, body = await api.call("GET", "/_matrix/client/v1/media/preview_url", token=token, query={"url": url})
        assert (status, body["errcode"]) == (403, "M_UNKNOWN"), (url, body)


async def test_previews_are_off_by_default(start_server: StartServer, http, site: str) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    token = (await api.register("alice"))["access_token"]
    status, body = await api.call("GET", "/_matrix/client/v1/media/preview_url", token=token,
                                  query={"url": f"{site}/page"})
    assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED")
