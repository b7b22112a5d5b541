"""Two of our servers federating over TLS on loopback: joins, messages, invites, leaves."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.api.helpers import Api
from tests.federation.conftest import StartFederating


async def wait_for_event(api: Api, token: str, room_id: str, predicate: Any, timeout: float = 20) -> dict[str, Any]:
    """Sync until an event of the room's timeline matches."""
    since = None
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        query = {"timeout": "1000"} | ({"since": since} if since else {})
        status, body = await api.call("GET", "/sync", token=token, query=query)
        assert status == 200, body
        since = body["next_batch"]
        room = body.get("rooms", {}).get("join", {}).get(room_id, {})
        for event in room.get("timeline", {}).get("events", []):
            if predicate(event):
                return event
    raise AssertionError(f"no matching event in {room_id}")


async def test_join_and_talk_both_ways(start_federating: StartFederating, https: aiohttp.ClientSession) -> None:
    a, b = await start_federating(), await start_federating()
    api_a, api_b = Api(https, a), Api(https, b)
    alice = (await api_a.register("alice"))["access_token"]
    bob = (await api_b.register("bob"))["access_token"]
    status, created = await api_a.call("POST", "/createRoom", {"preset": "public_chat", "name": "Fed"}, token=alice)
    assert status == 200, created
    room_id = created["room_id"]
    status, joined = await api_b.call("POST", f"/join/{room_id}", {}, token=bob,
                                      query={"server_name": a.config.server_name})
    assert status == 200, joined
    status, name = await api_b.call("GET", f"/rooms/{room_id}/state/m.room.name/", token=bob)
    assert status == 200 and name == {"name": "Fed"}

    status, sent = await api_b.call("PUT", f"/rooms/{room_id}/send/m.room.message/1",
                                    {"msgtype": "m.text", "body": "hello from b"}, token=bob)
    assert status == 200, sent
    seen = await wait_for_event(api_a, alice, room_id, lambda e: e["event_id"] == sent["event_id"])
    assert seen["content"]["body"] == "hello from b"

    status, sent = await api_a.call("PUT", f"/rooms/{room_id}/send/m.room.message/1",
                                    {"msgtype": "m.text", "body": "hello from a"}, token=alice)
    assert status == 200, sent
    seen = await wait_for_event(api_b, bob, room_id, lambda e: e["event_id"] == sent["event_id"])
    assert seen["sender"] == f"@alice:{a.config.server_name}"
