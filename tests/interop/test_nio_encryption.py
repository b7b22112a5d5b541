"""Real end-to-end encryption with matrix-nio and its vodozemac crypto: two users in an encrypted
room decrypt each other's messages (device keys, one-time key claims, olm to-device key sharing)."""

from __future__ import annotations

from pathlib import Path

import pytest

nio = pytest.importorskip("nio")
pytest.importorskip("vodozemac")

from tests.conftest import StartServer, base_url  # noqa: E402


async def encrypted_client(url: str, name: str, store: Path) -> "nio.AsyncClient":
    store.mkdir()
    client = nio.AsyncClient(url, f"@{name}:test.local", store_path=str(store),
                             config=nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
    registered = await client.register(name, f"{name} password")
    assert isinstance(registered, nio.RegisterResponse), registered
    await client.close()
    client = nio.AsyncClient(url, f"@{name}:test.local", store_path=str(store),
                             config=nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
    logged_in = await client.login(f"{name} password", device_name=f"{name} device")
    assert isinstance(logged_in, nio.LoginResponse), logged_in
    if client.should_upload_keys:
        uploaded = await client.keys_upload()
        assert isinstance(uploaded, nio.KeysUploadResponse), uploaded
    return client


async def test_encrypted_room(start_server: StartServer, tmp_path: Path) -> None:
    hs = await start_server(enable_registration=True, enable_registration_without_verification=True)
    url = base_url(hs)
    alice = await encrypted_client(url, "alice", tmp_path / "alice")
    bob = await encrypted_client(url, "bob", tmp_path / "bob")
    try:
        created = await alice.room_create(
            invite=["@bob:test.local"],
            initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        await bob.sync(timeout=0)
        assert isinstance(await bob.join(room_id), nio.JoinResponse)
        await alice.sync(timeout=0)
        await bob.sync(timeout=0)

        sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "secret hello"},
                                     ignore_unverified_devices=True)
        assert isinstance(sent, nio.RoomSendResponse), sent
        decrypted = None
        for _ in range(5):
            synced = await bob.sync(timeout=2000)
            assert isinstance(synced, nio.SyncResponse), synced
            room = synced.rooms.join.get(room_id)
            for event in room.timeline.events if room else []:
                if isinstance(event, nio.RoomMessageText) and event.body == "secret hello":
                    decrypted = event
            if decrypted:
                break
        assert decrypted is not None, "bob could not decrypt alice's message"
        assert decrypted.decrypted

        reply = await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "secret reply"},
                                    ignore_unverified_devices=True)
        assert isinstance(reply, nio.RoomSendResponse), reply
        got_reply = False
        for _ in range(5):
            synced = await alice.sync(timeout=2000)
            room = synced.rooms.join.get(room_id)
            got_reply |= any(isinstance(e, nio.RoomMessageText) and e.body == "secret reply"
                             for e in (room.timeline.events if room else []))
            if got_reply:
                break
        assert got_reply, "alice could not decrypt bob's reply"
        raw = await hs.database.pool.fetchval(
            "SELECT json FROM events WHERE event_id = $1", sent.event_id
        )
        assert "secret hello" not in raw and "m.megolm.v1.aes-sha2" in raw
    finally:
        await alice.close()
        await bob.close()
