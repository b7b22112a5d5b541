"""Two matrix-nio clients: create a room, invite, join, talk, sync, page back through history."""

from __future__ import annotations

import nio
import pytest

from tests.conftest import StartServer, base_url


@pytest.fixture
async def clients(start_server: StartServer):  # noqa: ANN201
    hs = await start_server(enable_registration=True, enable_registration_without_verification=True)
    alice = nio.AsyncClient(base_url(hs), "@alice:test.local")
    bob = nio.AsyncClient(base_url(hs), "@bob:test.local")
    assert isinstance(await alice.register("alice", "alice password"), nio.RegisterResponse)
    assert isinstance(await bob.register("bob", "bob password"), nio.RegisterResponse)
    yield alice, bob
    await alice.close()
    await bob.close()


async def test_two_clients_talk(clients) -> None:  # noqa: ANN001
    alice, bob = clients
    created = await alice.room_create(name="Lunch", topic="Where?", invite=["@bob:test.local"])
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id

    synced = await bob.sync(timeout=0)
    assert isinstance(synced, nio.SyncResponse), synced
    assert room_id in synced.rooms.invite
    joined = await bob.join(room_id)
    assert isinstance(joined, nio.JoinResponse), joined

    for i in range(5):
        sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"hello {i}"})
        assert isinstance(sent, nio.RoomSendResponse), sent
    reply = await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hi alice"})
    assert isinstance(reply, nio.RoomSendResponse)

    synced = await alice.sync(timeout=0, full_state=True)
    assert isinstance(synced, nio.SyncResponse), synced
    room = alice.rooms[room_id]
    assert room.name == "Lunch" and room.topic == "Where?"
    assert set(room.users) == {"@alice:test.local", "@bob:test.local"}
    bodies = [e.body for e in synced.rooms.join[room_id].timeline.events if isinstance(e, nio.RoomMessageText)]
    assert bodies[-1] == "hi alice"

    page = await bob.room_messages(room_id, start=synced.next_batch, limit=3)
    assert isinstance(page, nio.RoomMessagesResponse), page
    assert [e.body for e in page.chunk] == ["hi alice", "hello 4", "hello 3"]
    older = await bob.room_messages(room_id, start=page.end, limit=3)
    assert [e.body for e in older.chunk] == ["hello 2", "hello 1", "hello 0"]

    typing = await alice.room_typing(room_id, True, timeout=10_000)
    assert isinstance(typing, nio.RoomTypingResponse), typing
    receipt = await alice.room_read_markers(room_id, fully_read_event=reply.event_id, read_event=reply.event_id)
    assert isinstance(receipt, nio.RoomReadMarkersResponse), receipt
    since = bob.next_batch
    synced = await bob.sync(timeout=2000, since=since)
    ephemeral = synced.rooms.join[room_id].ephemeral
    assert any(isinstance(e, nio.TypingNoticeEvent) and "@alice:test.local" in e.users for e in ephemeral)
    assert any(isinstance(e, nio.ReceiptEvent) and any(r.user_id == "@alice:test.local" for r in e.receipts)
               for e in ephemeral)

    redacted = await bob.room_redact(room_id, reply.event_id, reason="wrong room")
    assert isinstance(redacted, nio.RoomRedactResponse), redacted
    synced = await alice.sync(timeout=2000, since=alice.next_batch)
    redactions = [e for e in synced.rooms.join[room_id].timeline.events if isinstance(e, nio.RedactionEvent)]
    assert redactions and redactions[0].redacts == reply.event_id
    page = await alice.room_messages(room_id, start=alice.next_batch, limit=5)
    original = next(e for e in page.chunk if e.event_id == reply.event_id)
    assert isinstance(original, nio.RedactedEvent)

    members = await alice.joined_members(room_id)
    assert isinstance(members, nio.JoinedMembersResponse)
    assert {m.user_id for m in members.members} == {"@alice:test.local", "@bob:test.local"}
