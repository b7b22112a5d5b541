"""The deprecated r0 event stream and initial syncs, still used by old clients and bridges."""

from __future__ import annotations

import asyncio

from tests.api.helpers import Api
from tests.conftest import StartServer

OPEN = {"enable_registration": True, "enable_registration_without_verification": True}


async def test_event_stream_and_initial_syncs(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    status, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "name": "Old"}, token=alice)
    room = created["room_id"]
    await api.call("PUT", f"/rooms/{room}/send/m.room.message/1", {"msgtype": "m.text", "body": "first"}, token=alice)

    status, initial = await api.call("GET", "/initialSync", token=alice, query={"limit": "5"})
    assert status == 200, initial
    (entry,) = initial["rooms"]
    assert entry["room_id"] == room and entry["membership"] == "join"
    assert entry["messages"]["chunk"][-1]["content"]["body"] == "first"
    assert {"type": "m.room.name", "content": {"name": "Old"}}.items() <= next(
        e for e in entry["state"] if e["type"] == "m.room.name").items()

    async def later() -> None:
        await asyncio.sleep(0.3)
        await api.call("PUT", f"/rooms/{room}/send/m.room.message/2", {"msgtype": "m.text", "body": "second"},
                       token=alice)

    task = asyncio.create_task(later())
    status, stream = await api.call("GET", "/events", token=alice, query={"from": initial["end"], "timeout": "5000"})
    await task
    assert status == 200 and [e["content"].get("body") for e in stream["chunk"]] == ["second"], stream
    assert stream["chunk"][0]["room_id"] == room and stream["start"] == initial["end"] and stream["end"]
    status, quiet = await api.call("GET", "/events", token=alice, query={"from": stream["end"], "timeout": "0"})
    assert status == 200 and quiet["chunk"] == []
    status, body = await api.call("GET", "/events", token=alice, query={"from": "nonsense"})
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"

    status, one = await api.call("GET", f"/rooms/{room}/initialSync", token=alice)
    assert status == 200 and one["membership"] == "join" and one["messages"]["chunk"][-1]["content"]["body"] == "second"
    # Not a member: only world-readable rooms can be looked into.
    status, body = await api.call("GET", f"/rooms/{room}/initialSync", token=bob)
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    # One room's stream: its events only (not the user's presence), for members only.
    _, other = await api.call("POST", "/createRoom", {}, token=alice)
    await api.call("PUT", f"/rooms/{other['room_id']}/send/m.room.message/o", {"body": "elsewhere"}, token=alice)
    await api.call("PUT", f"/rooms/{room}/send/m.room.message/3", {"msgtype": "m.text", "body": "third"}, token=alice)
    status, only = await api.call("GET", "/events", token=alice,
                                  query={"from": stream["end"], "timeout": "0", "room_id": room})
    assert status == 200 and [(e["room_id"], e["content"].get("body")) for e in only["chunk"]] == [(room, "third")]
    status, body = await api.call("GET", "/events", token=bob, query={"room_id": room, "timeout": "0"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    await api.call("PUT", f"/rooms/{room}/state/m.room.history_visibility/", {"history_visibility": "world_readable"},
                   token=alice)
    status, peeked = await api.call("GET", f"/rooms/{room}/initialSync", token=bob)
    assert status == 200 and "membership" not in peeked and peeked["messages"]["chunk"], peeked
    status, state = await api.call("GET", f"/rooms/{room}/state", token=bob)
    assert status == 200 and any(e["type"] == "m.room.name" for e in state)


async def test_initial_syncs_in_the_r0_shape(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room = created["room_id"]
    _, sent = await api.call("PUT", f"/rooms/{room}/send/m.room.message/1", {"body": "hi"}, token=alice)
    await api.call("POST", f"/rooms/{room}/receipt/m.read/{sent['event_id']}", {}, token=alice)
    await api.call("PUT", f"/user/@alice:test.local/rooms/{room}/tags/u.work", {}, token=alice)
    _, whole = await api.call("GET", "/initialSync", token=alice)
    (entry,) = whole["rooms"]
    # Events carry user_id and age at the top level; presence names its user in the content.
    assert all(e["user_id"] == e["sender"] and "age" in e for e in entry["messages"]["chunk"] + entry["state"])
    assert [e["content"]["user_id"] for e in whole["presence"]] == ["@alice:test.local"]
    _, one = await api.call("GET", f"/rooms/{room}/initialSync", token=alice)
    assert all(e["user_id"] == e["sender"] for e in one["messages"]["chunk"] + one["state"])
    assert [(e["content"]["user_id"], e["content"]["presence"]) for e in one["presence"]] \
        == [("@alice:test.local", "online")]
    (receipt,) = one["receipts"]
    assert receipt["room_id"] == room and "@alice:test.local" in receipt["content"][sent["event_id"]]["m.read"]
    assert one["account_data"] == [{"type": "m.tag", "content": {"tags": {"u.work": {}}}}]
