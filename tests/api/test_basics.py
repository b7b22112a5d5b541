"""HTTP basics over real loopback HTTP: discovery, CORS, JSON errors, limits, health, TLS."""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import verify_signed_json
from unpaddedbase64 import decode_base64

from homeserver.config import ListenerConfig, ListenerResource
from homeserver.http import app as http_app
from homeserver.http.json import MAX_JSON_BODY
from homeserver.signing_key_file import load_signing_key
from tests.conftest import StartServer, base_url


async def test_versions(server, http: aiohttp.ClientSession) -> None:
    async with http.get(base_url(server) + "/_matrix/client/versions") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert isinstance(body["versions"], list)
    assert isinstance(body["unstable_features"], dict)


async def test_health(server, http: aiohttp.ClientSession) -> None:
    async with http.get(base_url(server) + "/health") as resp:
        assert (resp.status, await resp.text()) == (200, "OK")


async def test_well_known_off_by_default(server, http: aiohttp.ClientSession) -> None:
    for path in ("/.well-known/matrix/client", "/.well-known/matrix/server"):
        async with http.get(base_url(server) + path) as resp:
            assert resp.status == 404
            assert (await resp.json())["errcode"] == "M_NOT_FOUND"


async def test_well_known_from_config(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    hs = await start_server(
        public_baseurl="https://matrix.test.local",
        serve_client_wellknown=True,
        serve_server_wellknown=True,
    )
    async with http.get(base_url(hs) + "/.well-known/matrix/client") as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert await resp.json() == {"m.homeserver": {"base_url": "https://matrix.test.local/"}}
    async with http.get(base_url(hs) + "/.well-known/matrix/server") as resp:
        assert await resp.json() == {"m.server": "test.local:443"}


async def test_cors_on_every_response_and_preflight(server, http: aiohttp.ClientSession) -> None:
    url = base_url(server) + "/_matrix/client/v3/rooms/!r:x/send/m.room.message/1"
    async with http.options(url, headers={"Origin": "https://app.element.io",
                                          "Access-Control-Request-Method": "PUT"}) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        methods = {m.strip() for m in resp.headers["Access-Control-Allow-Methods"].split(",")}
        assert {"GET", "POST", "PUT", "DELETE", "OPTIONS"} <= methods
        headers = {h.strip() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"X-Requested-With", "Content-Type", "Authorization"} <= headers
    async with http.get(base_url(server) + "/nowhere") as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_unknown_endpoint_and_wrong_method(server, http: aiohttp.ClientSession) -> None:
    async with http.get(base_url(server) + "/_matrix/client/v3/nothing_here") as resp:
        assert resp.status == 404
        assert await resp.json() == {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}
    async with http.delete(base_url(server) + "/_matrix/client/versions") as resp:
        assert resp.status == 405
        assert (await resp.json())["errcode"] == "M_UNRECOGNIZED"


@pytest.fixture
def extra_routes(monkeypatch: pytest.MonkeyPatch) -> web.RouteTableDef:
    """Test-only routes served on the client resource (a crash, a JSON echo, a slow one)."""
    from homeserver.http.json import json_body, json_response

    routes = web.RouteTableDef()

    @routes.get("/_test/crash")
    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail")

    @routes.post("/_test/echo")
    async def echo(request: web.Request) -> web.Response:
        return json_response(await json_body(request))

    @routes.get("/_test/slow")
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return json_response({"done": True})

    monkeypatch.setitem(
        http_app.RESOURCE_ROUTES, "client", (*http_app.RESOURCE_ROUTES["client"], routes)
    )
    return routes


async def test_crash_is_a_json_500_without_details(
    extra_routes, start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    hs = await start_server()
    async with http.get(base_url(hs) + "/_test/crash") as resp:
        assert resp.status == 500
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body == {"errcode": "M_UNKNOWN", "error": "Internal server error"}


async def test_bad_json_bodies(extra_routes, start_server: StartServer, http: aiohttp.ClientSession) -> None:
    hs = await start_server()
    url = base_url(hs) + "/_test/echo"
    async with http.post(url, data=b"{not json") as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (400, "M_NOT_JSON")
    async with http.post(url, data=b"[1, 2]") as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (400, "M_BAD_JSON")
    async with http.post(url, data=b'{"a": 1}') as resp:
        assert (resp.status, await resp.json()) == (200, {"a": 1})
    async with http.post(url, data=b" " * (MAX_JSON_BODY + 1)) as resp:
        assert resp.status == 413
        assert (await resp.json())["errcode"] == "M_TOO_LARGE"


async def test_graceful_shutdown_finishes_in_flight_requests(
    extra_routes, start_server: StartServer, http: aiohttp.ClientSession
) -> None:
    hs = await start_server()
    url = base_url(hs)
    request = asyncio.create_task(http.get(url + "/_test/slow"))
    await asyncio.sleep(0.3)
    stopping = asyncio.create_task(hs.stop())
    resp = await request
    assert resp.status == 200
    assert await resp.json() == {"done": True}
    await stopping
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(url + "/health"):
            pass


async def test_server_key_document(server, http: aiohttp.ClientSession) -> None:
    async with http.get(base_url(server) + "/_matrix/key/v2/server") as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["server_name"] == "test.local"
    assert doc["old_verify_keys"] == {}
    ((key_id, key),) = doc["verify_keys"].items()
    on_disk = load_signing_key(server.config.signing_key_file)
    assert key_id == f"ed25519:{on_disk.version}"
    verify_key = decode_verify_key_bytes(key_id, decode_base64(key["key"]))
    assert verify_key.encode() == on_disk.verify_key.encode()
    verify_signed_json(doc, "test.local", verify_key)
    import time

    assert doc["valid_until_ts"] > time.time() * 1000 + 3600_000


async def test_access_log_redacts_tokens_and_honours_x_forwarded(
    start_server: StartServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    hs = await start_server(
        listeners=(ListenerConfig(port=0, x_forwarded=True, resources=(ListenerResource(("client",)),)),)
    )
    caplog.set_level(logging.INFO, logger="homeserver.access")
    async with http.get(
        base_url(hs) + "/_matrix/client/versions?access_token=syt_secret&x=1",
        headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.1", "X-Forwarded-Proto": "https"},
    ) as resp:
        assert resp.status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "homeserver.access"]
    assert len(lines) == 1
    assert "ip=203.0.113.7 method=GET path=/_matrix/client/versions?access_token=<redacted>&x=1 status=200" in lines[0]
    assert "syt_secret" not in caplog.text


async def test_x_forwarded_ignored_unless_configured(
    server, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="homeserver.access")
    async with http.get(base_url(server) + "/health", headers={"X-Forwarded-For": "203.0.113.7"}):
        pass
    assert "ip=127.0.0.1 " in caplog.text
    assert "203.0.113.7" not in caplog.text


async def test_listener_resources_select_routes(start_server: StartServer, http: aiohttp.ClientSession) -> None:
    hs = await start_server(listeners=(ListenerConfig(port=0, resources=(ListenerResource(("keys",)),)),))
    async with http.get(base_url(hs) + "/_matrix/key/v2/server") as resp:
        assert resp.status == 200
    async with http.get(base_url(hs) + "/_matrix/client/versions") as resp:
        assert resp.status == 404


async def test_direct_tls_listener(start_server: StartServer, tmp_path: Path, http: aiohttp.ClientSession) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ed25519", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    hs = await start_server(listeners=(ListenerConfig(
        port=0, tls=True, tls_certificate_path=cert, tls_private_key_path=key,
        resources=(ListenerResource(("client", "federation")),),
    ),))
    ctx = ssl.create_default_context(cafile=str(cert))
    async with http.get(base_url(hs, "https") + "/_matrix/key/v2/server", ssl=ctx) as resp:
        assert resp.status == 200
    with pytest.raises(aiohttp.ClientError):
        async with http.get(base_url(hs, "http") + "/health"):
            pass
