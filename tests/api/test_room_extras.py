"""Typing, receipts, read markers, tags and redactions, and how sync shows them."""

from __future__ import annotations

import pytest

from tests.api.helpers import Api
from tests.conftest import StartServer


@pytest.fixture
async def room(start_server: StartServer, http) -> tuple[Api, str, str, str]:  # noqa: ANN001
    api = Api(http, await start_server(enable_registration=True, enable_registration_without_verification=True))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    await api.call("POST", f"/rooms/{created['room_id']}/join", {}, token=bob)
    return api, created["room_id"], alice, bob


async def test_typing(room) -> None:  # noqa: ANN001
    api, room_id, alice, bob = room
    _, start = await api.call("GET", "/sync", token=bob)
    status, _ = await api.call("PUT", f"/rooms/{room_id}/typing/@alice:test.local", {"typing": True, "timeout": 400},
                               token=alice)
    assert status == 200
    _, synced = await api.call("GET", "/sync", token=bob, query={"since": start["next_batch"], "timeout": "2000"})
    (typing,) = synced["rooms"]["join"][room_id]["ephemeral"]["events"]
    assert typing == {"type": "m.typing", "content": {"user_ids": ["@alice:test.local"]}}
    _, expired = await api.call("GET", "/sync", token=bob, query={"since": synced["next_batch"], "timeout": "3000"})
    assert expired["rooms"]["join"][room_id]["ephemeral"]["events"] == [{"type": "m.typing", "content": {"user_ids": []}}]
    status, body = await api.call("PUT", f"/rooms/{room_id}/typing/@bob:test.local", {"typing": True}, token=alice)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("PUT", f"/rooms/{room_id}/typing/@alice:test.local", {"typing": "yes"}, token=alice)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_receipts_and_read_markers(room) -> None:  # noqa: ANN001
    api, room_id, alice, bob = room
    _, sent = await api.call("PUT", f"/rooms/{room_id}/send/m.room.message/1", {"body": "read me"}, token=alice)
    event_id = sent["event_id"]
    _, start = await api.call("GET", "/sync", token=alice)
    assert (await api.call("POST", f"/rooms/{room_id}/receipt/m.read/{event_id}", {}, token=bob))[0] == 200
    assert (await api.call("POST", f"/rooms/{room_id}/receipt/m.read.private/{event_id}", {}, token=bob))[0] == 200
    _, synced = await api.call("GET", "/sync", token=alice, query={"since": start["next_batch"]})
    receipts = [e for e in synced["rooms"]["join"][room_id]["ephemeral"]["events"] if e["type"] == "m.receipt"]
    assert list(receipts[0]["content"][event_id]) == ["m.read"]
    assert "@bob:test.local" in receipts[0]["content"][event_id]["m.read"]
    status, _ = await api.call("POST", f"/rooms/{room_id}/read_markers",
                               {"m.fully_read": event_id, "m.read": event_id}, token=bob)
    assert status == 200
    _, bobs = await api.call("GET", "/sync", token=bob)
    room_data = bobs["rooms"]["join"][room_id]["account_data"]["events"]
    assert {"type": "m.fully_read", "content": {"event_id": event_id}} in room_data
    # Receipts only move forward: one for an older event changes nothing and wakes nobody.
    _, before = await api.call("GET", "/sync", token=alice)
    _, older = await api.call("GET", f"/rooms/{room_id}/messages", token=bob, query={"dir": "b", "limit": "3"})
    earlier = [e["event_id"] for e in older["chunk"] if e["event_id"] != event_id][0]
    assert (await api.call("POST", f"/rooms/{room_id}/receipt/m.read/{earlier}", {}, token=bob))[0] == 200
    _, after = await api.call("GET", "/sync", token=alice, query={"since": before["next_batch"], "timeout": "300"})
    assert room_id not in after["rooms"]["join"]
    _, whole = await api.call("GET", "/sync", token=alice)
    receipts = [e for e in whole["rooms"]["join"][room_id]["ephemeral"]["events"] if e["type"] == "m.receipt"]
    assert "@bob:test.local" in receipts[0]["content"][event_id]["m.read"]
    status, body = await api.call("POST", f"/rooms/{room_id}/receipt/m.bogus/{event_id}", {}, token=bob)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await api.call("POST", f"/rooms/{room_id}/receipt/m.read/$nope", {}, token=bob)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_tags(room) -> None:  # noqa: ANN001
    api, room_id, alice, _bob = room
    base = f"/user/@alice:test.local/rooms/{room_id}/tags"
    assert (await api.call("PUT", f"{base}/m.favourite", {"order": 0.5}, token=alice))[0] == 200
    assert (await api.call("PUT", f"{base}/u.work", {}, token=alice))[0] == 200
    assert (await api.call("GET", base, token=alice))[1] == {"tags": {"m.favourite": {"order": 0.5}, "u.work": {}}}
    assert (await api.call("DELETE", f"{base}/u.work", token=alice))[0] == 200
    assert (await api.call("GET", base, token=alice))[1] == {"tags": {"m.favourite": {"order": 0.5}}}
    status, body = await api.call("PUT", f"{base}/x", {"order": "first"}, token=alice)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_redaction(room) -> None:  # noqa: ANN001
    api, room_id, alice, bob = room
    _, sent = await api.call("PUT", f"/rooms/{room_id}/send/m.room.message/1", {"body": "oops", "msgtype": "m.text"},
                             token=bob)
    status, body = await api.call("PUT", f"/rooms/{room_id}/redact/{sent['event_id']}/r1", {"reason": "typo"}, token=bob)
    assert status == 200 and body["event_id"].startswith("$")
    _, event = await api.call("GET", f"/rooms/{room_id}/event/{sent['event_id']}", token=alice)
    assert event["content"] == {}
    assert event["unsigned"]["redacted_because"]["content"] == {"reason": "typo", "redacts": sent["event_id"]}
    _, own = await api.call("PUT", f"/rooms/{room_id}/send/m.room.message/2", {"body": "alice's"}, token=alice)
    status, body = await api.call("PUT", f"/rooms/{room_id}/redact/{own['event_id']}/r2", {}, token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, _ = await api.call("PUT", f"/rooms/{room_id}/redact/{own['event_id']}/r3", {}, token=alice)
    assert status == 200
    status, body = await api.call("PUT", f"/rooms/{room_id}/redact/$unknown/r4", {}, token=alice)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    _, page = await api.call("GET", f"/rooms/{room_id}/messages", token=alice, query={"limit": "10"})
    redacted = [e for e in page["chunk"] if e["type"] == "m.room.message"]
    assert all(e["content"] == {} for e in redacted)
