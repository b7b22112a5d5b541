"""The media repository over real HTTP: uploads, downloads, thumbnails, limits and safe headers."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.api.helpers import Api
from tests.conftest import StartServer, base_url


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), "red" if mode == "RGB" else 1).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def media(start_server: StartServer, http):  # noqa: ANN001, ANN201
    hs = await start_server(enable_registration=True, enable_registration_without_verification=True,
                            max_upload_size=200_000)
    api = Api(http, hs)
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    return http, base_url(hs), alice, bob


async def upload(http, base: str, token: str, data: bytes, content_type: str, name: str = "file") -> tuple[int, dict]:  # noqa: ANN001
    async with http.post(f"{base}/_matrix/media/v3/upload", data=data, params={"filename": name},
                         headers={"Authorization": f"Bearer {token}", "Content-Type": content_type}) as resp:
        return resp.status, await resp.json()


async def test_upload_download_thumbnail(media) -> None:  # noqa: ANN001
    http, base, alice, _bob = media
    image = png(1000, 800)
    status, body = await upload(http, base, alice, image, "image/png", "holiday photo.png")
    assert status == 200 and body["content_uri"].startswith("mxc://test.local/")
    media_id = body["content_uri"].rsplit("/", 1)[1]
    auth = {"Authorization": f"Bearer {alice}"}
    async with http.get(f"{base}/_matrix/client/v1/media/download/test.local/{media_id}", headers=auth) as resp:
        assert resp.status == 200 and await resp.read() == image
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["Content-Disposition"] == "inline; filename*=utf-8''holiday%20photo.png"
        assert "sandbox" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    async with http.get(f"{base}/_matrix/client/v1/media/download/test.local/{media_id}") as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (401, "M_MISSING_TOKEN")
    async with http.get(f"{base}/_matrix/media/v3/download/test.local/{media_id}") as resp:
        assert resp.status == 404
    for width, height, method, expected in ((32, 32, "crop", (32, 32)), (300, 200, "scale", (300, 240))):
        async with http.get(f"{base}/_matrix/client/v1/media/thumbnail/test.local/{media_id}", headers=auth,
                            params={"width": str(width), "height": str(height), "method": method}) as resp:
            assert resp.status == 200
            thumb = Image.open(io.BytesIO(await resp.read()))
            assert thumb.size == expected
    async with http.get(f"{base}/_matrix/client/v1/media/thumbnail/test.local/{media_id}", headers=auth,
                        params={"width": "x", "height": "1"}) as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (400, "M_INVALID_PARAM")
    async with http.get(f"{base}/_matrix/client/v1/media/config", headers=auth) as resp:
        assert await resp.json() == {"m.upload.size": 200_000}
    async with http.get(f"{base}/_matrix/client/v1/media/download/test.local/nonexistent", headers=auth) as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (404, "M_NOT_FOUND")


async def test_dangerous_types_and_bad_thumbnails(media) -> None:  # noqa: ANN001
    http, base, alice, _bob = media
    auth = {"Authorization": f"Bearer {alice}"}
    _, body = await upload(http, base, alice, b"<script>alert(1)</script>", "text/html", "page.html")
    media_id = body["content_uri"].rsplit("/", 1)[1]
    async with http.get(f"{base}/_matrix/client/v1/media/download/test.local/{media_id}", headers=auth) as resp:
        assert resp.headers["Content-Disposition"].startswith("attachment")
        assert "script-src 'none'" in resp.headers["Content-Security-Policy"]
    async with http.get(f"{base}/_matrix/client/v1/media/thumbnail/test.local/{media_id}", headers=auth,
                        params={"width": "32", "height": "32"}) as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (400, "M_INVALID_PARAM")
    _, body = await upload(http, base, alice, b"not really a png", "image/png")
    liar = body["content_uri"].rsplit("/", 1)[1]
    async with http.get(f"{base}/_matrix/client/v1/media/thumbnail/test.local/{liar}", headers=auth,
                        params={"width": "32", "height": "32"}) as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (400, "M_INVALID_PARAM")
    bomb = png(20000, 20000, mode="1")
    assert len(bomb) < 200_000
    _, body = await upload(http, base, alice, bomb, "image/png")
    bomb_id = body["content_uri"].rsplit("/", 1)[1]
    async with http.get(f"{base}/_matrix/client/v1/media/thumbnail/test.local/{bomb_id}", headers=auth,
                        params={"width": "32", "height": "32"}) as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (400, "M_TOO_LARGE")


async def test_upload_limit_is_enforced_while_streaming(media) -> None:  # noqa: ANN001
    http, base, alice, _bob = media
    status, body = await upload(http, base, alice, b"x" * 200_001, "application/octet-stream")
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")

    async def trickle():  # noqa: ANN202 - no Content-Length: the limit must hold while reading
        for _ in range(30):
            yield b"y" * 10_000

    async with http.post(f"{base}/_matrix/media/v3/upload", data=trickle(),
                         headers={"Authorization": f"Bearer {alice}", "Content-Type": "text/plain"}) as resp:
        assert resp.status == 413


async def test_asynchronous_upload(media) -> None:  # noqa: ANN001
    http, base, alice, bob = media
    auth = {"Authorization": f"Bearer {alice}"}
    async with http.post(f"{base}/_matrix/media/v1/create", headers=auth) as resp:
        created = await resp.json()
    media_id = created["content_uri"].rsplit("/", 1)[1]
    assert created["unused_expires_at"] > 0
    async with http.get(f"{base}/_matrix/client/v1/media/download/test.local/{media_id}", headers=auth) as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (504, "M_NOT_YET_UPLOADED")
    url = f"{base}/_matrix/media/v3/upload/test.local/{media_id}"
    async with http.put(url, data=b"later", headers={"Authorization": f"Bearer {bob}"}) as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (403, "M_FORBIDDEN")
    async with http.put(url, data=b"later", headers={**auth, "Content-Type": "text/plain"}) as resp:
        assert resp.status == 200
    async with http.put(url, data=b"again", headers=auth) as resp:
        assert (resp.status, (await resp.json())["errcode"]) == (409, "M_CANNOT_OVERWRITE_MEDIA")
    async with http.get(f"{base}/_matrix/client/v1/media/download/test.local/{media_id}", headers=auth) as resp:
        assert await resp.read() == b"later"


async def test_legacy_endpoints_serve_media_when_not_frozen(start_server: StartServer, http) -> None:  # noqa: ANN001
    hs = await start_server(enable_registration=True, enable_registration_without_verification=True,
                            enable_authenticated_media=False)
    api = Api(http, hs)
    token = (await api.register("alice"))["access_token"]
    _, body = await upload(http, base_url(hs), token, png(64, 64), "image/png")
    media_id = body["content_uri"].rsplit("/", 1)[1]
    async with http.get(f"{base_url(hs)}/_matrix/media/v3/download/test.local/{media_id}") as resp:
        assert resp.status == 200
    async with http.get(f"{base_url(hs)}/_matrix/media/v3/thumbnail/test.local/{media_id}",
                        params={"width": "32", "height": "32", "method": "crop"}) as resp:
        assert resp.status == 200
