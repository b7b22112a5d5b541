"""matrix-nio as the client: upload an image, fetch it and a thumbnail through the authenticated
media endpoints, and watch unread counts rise on a mention and fall after a read receipt."""

from __future__ import annotations

import io

import nio
from PIL import Image

from tests.conftest import StartServer, base_url


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(out, format="PNG")
    return out.getvalue()


async def test_nio_media_and_unread_counts(start_server: StartServer) -> None:
    hs = await start_server(enable_registration=True, enable_registration_without_verification=True)
    alice = nio.AsyncClient(base_url(hs), "@alice:test.local")
    bob = nio.AsyncClient(base_url(hs), "@bob:test.local")
    try:
        assert isinstance(await alice.register("alice", "alice password"), nio.RegisterResponse)
        assert isinstance(await bob.register("bob", "bob password"), nio.RegisterResponse)
        image = _png(640, 480)
        uploaded, _keys = await alice.upload(io.BytesIO(image), content_type="image/png", filename="cat.png",
                                             filesize=len(image))
        assert isinstance(uploaded, nio.UploadResponse), uploaded
        server, media_id = uploaded.content_uri.removeprefix("mxc://").split("/")
        assert server == "test.local"

        media = f"{base_url(hs)}/_matrix/client/v1/media"
        headers = {"Authorization": f"Bearer {alice.access_token}"}
        session = alice.client_session
        assert session is not None
        async with session.get(f"{media}/download/{server}/{media_id}", headers=headers) as resp:
            assert resp.status == 200 and await resp.read() == image
            assert resp.headers["Content-Type"] == "image/png"
            assert "cat.png" in resp.headers["Content-Disposition"]
        async with session.get(f"{media}/thumbnail/{server}/{media_id}", headers=headers,
                               params={"width": "96", "height": "96", "method": "scale"}) as resp:
            assert resp.status == 200
            thumbnail = Image.open(io.BytesIO(await resp.read()))
            assert thumbnail.size == (320, 240)  # the smallest configured scale size covering 96x96
        async with session.get(f"{media}/download/{server}/{media_id}") as resp:
            assert resp.status == 401

        created = await alice.room_create(name="Pets", invite=["@bob:test.local"])
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        assert isinstance(await bob.join(room_id), nio.JoinResponse)
        first = await bob.sync(timeout=0)
        assert first.rooms.join[room_id].unread_notifications.notification_count == 0

        sent = await alice.room_send(room_id, "m.room.message", {
            "msgtype": "m.image", "body": "cat.png", "url": uploaded.content_uri,
            "info": {"mimetype": "image/png", "w": 640, "h": 480, "size": len(image)},
        })
        assert isinstance(sent, nio.RoomSendResponse), sent
        mention = await alice.room_send(room_id, "m.room.message", {
            "msgtype": "m.text", "body": "bob, look", "m.mentions": {"user_ids": ["@bob:test.local"]},
        })
        assert isinstance(mention, nio.RoomSendResponse), mention
        synced = await bob.sync(timeout=0, since=first.next_batch)
        counts = synced.rooms.join[room_id].unread_notifications
        assert (counts.notification_count, counts.highlight_count) == (2, 1)

        read = await bob.room_read_markers(room_id, fully_read_event=mention.event_id, read_event=mention.event_id)
        assert isinstance(read, nio.RoomReadMarkersResponse), read
        synced = await bob.sync(timeout=0, since=synced.next_batch)
        counts = synced.rooms.join[room_id].unread_notifications
        assert (counts.notification_count, counts.highlight_count) == (0, 0)
    finally:
        await alice.close()
        await bob.close()
