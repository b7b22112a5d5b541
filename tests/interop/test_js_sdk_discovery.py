"""Element's check of a homeserver before login, done by matrix-js-sdk from npm: the server's
/versions must list a spec version the SDK supports, or Element refuses the server."""

from __future__ import annotations

from tests.conftest import StartServer, base_url
from tests.interop.js_runner import run_js


async def test_element_accepts_the_server(start_server: StartServer) -> None:
    hs = await start_server()
    verdict = await run_js("discovery.mjs", base_url(hs), timeout=60)
    assert verdict["state"] == "SUCCESS", verdict
    assert verdict["base_url"] == base_url(hs)
