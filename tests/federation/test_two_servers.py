"""Two of our servers federating over TLS on loopback: joins, messages, invites, leaves."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.api.helpers import Api
from tests.conftest import base_url
from tests.federation.conftest import StartFederating


async def wait_for_event(api: Api, token: str, room_id: str, predicate: Any, timeout: float = 20) -> dict[str, Any]:
    """Sync until an event of the room's timeline matches."""
    found: list[dict[str, Any]] = []

    def matches(body: dict[str, Any]) -> bool:
        room = body.get("rooms", {}).get("join", {}).get(room_id, {})
        found.extend(e for e in room.get("timeline", {}).get("events", []) if predicate(e))
        return bool(found)

    await sync_until(api, token, matches, timeout)
    return found[0]


async def say(sender: Api, sender_token: str, hearer: Api, hearer_token: str, room_id: str, body: str) -> None:
    """Send a text message and wait until the other side's sync has it, with that body."""
    status, sent = await sender.call("POST", f"/rooms/{room_id}/send/m.room.message",
                                     {"msgtype": "m.text", "body": body}, token=sender_token)
    assert status == 200, sent
    seen = await wait_for_event(hearer, hearer_token, room_id, lambda e: e["event_id"] == sent["event_id"])
    assert seen["content"]["body"] == body


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

    await say(api_b, bob, api_a, alice, room_id, "hello from b")

    status, sent = await api_a.call("PUT", f"/rooms/{room_id}/send/m.room.message/1",
                                    {"msgtype": "m.text", "body": "hello from a"}, token=alice)
    assert status == 200, sent
    seen = await wait_for_event(api_b, bob, room_id, lambda e: e["event_id"] == sent["event_id"])
    assert seen["sender"] == f"@alice:{a.config.server_name}"


async def sync_until(api: Api, token: str, predicate: Any, timeout: float = 20) -> dict[str, Any]:
    """Sync (incrementally) until a sync response matches."""
    since = None
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        query = {"timeout": "1000"} | ({"since": since} if since else {})
        status, body = await api.call("GET", "/sync", token=token, query=query)
        assert status == 200, body
        since = body["next_batch"]
        if predicate(body):
            return body
    raise AssertionError("sync never matched")


async def _pair(start_federating: StartFederating, https: aiohttp.ClientSession) -> tuple[Any, ...]:
    a, b = await start_federating(), await start_federating()
    api_a, api_b = Api(https, a), Api(https, b)
    alice = await api_a.register("alice")
    bob = await api_b.register("bob")
    return a, b, api_a, api_b, alice, bob


async def test_invites_both_ways_leave_and_ban(start_federating: StartFederating, https: aiohttp.ClientSession) -> None:
    a, b, api_a, api_b, alice, bob = await _pair(start_federating, https)
    status, created = await api_a.call("POST", "/createRoom", {"preset": "private_chat", "name": "Secret"},
                                       token=alice["access_token"])
    room_id = created["room_id"]
    status, body = await api_b.call("POST", f"/join/{room_id}", {}, token=bob["access_token"],
                                    query={"server_name": a.config.server_name})
    assert status == 403, body
    status, body = await api_a.call("POST", f"/rooms/{room_id}/invite", {"user_id": bob["user_id"]},
                                    token=alice["access_token"])
    assert status == 200, body
    invited = await sync_until(api_b, bob["access_token"], lambda s: room_id in s.get("rooms", {}).get("invite", {}))
    state = invited["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "content": {"name": "Secret"},
            "sender": alice["user_id"]} in state
    status, body = await api_b.call("POST", f"/join/{room_id}", {}, token=bob["access_token"])
    assert status == 200, body
    await wait_for_event(api_a, alice["access_token"], room_id,
                         lambda e: e["type"] == "m.room.member" and e["state_key"] == bob["user_id"]
                         and e["content"]["membership"] == "join")
    # Bob leaves; Alice sees it.
    status, body = await api_b.call("POST", f"/rooms/{room_id}/leave", {}, token=bob["access_token"])
    assert status == 200, body
    await wait_for_event(api_a, alice["access_token"], room_id,
                         lambda e: e["type"] == "m.room.member" and e["state_key"] == bob["user_id"]
                         and e["content"]["membership"] == "leave")

    # An invite from b's user to a's user, rejected.
    status, created = await api_b.call("POST", "/createRoom", {"preset": "private_chat"}, token=bob["access_token"])
    other_room = created["room_id"]
    status, body = await api_b.call("POST", f"/rooms/{other_room}/invite", {"user_id": alice["user_id"]},
                                    token=bob["access_token"])
    assert status == 200, body
    await sync_until(api_a, alice["access_token"], lambda s: other_room in s.get("rooms", {}).get("invite", {}))
    status, body = await api_a.call("POST", f"/rooms/{other_room}/leave", {}, token=alice["access_token"])
    assert status == 200, body
    await wait_for_event(api_b, bob["access_token"], other_room,
                         lambda e: e["type"] == "m.room.member" and e["state_key"] == alice["user_id"]
                         and e["content"]["membership"] == "leave")


async def test_ban_redaction_typing_receipts(start_federating: StartFederating, https: aiohttp.ClientSession) -> None:
    a, b, api_a, api_b, alice, bob = await _pair(start_federating, https)
    carol = await api_b.register("carol")
    status, created = await api_a.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice["access_token"])
    room_id = created["room_id"]
    for user in (bob, carol):
        status, body = await api_b.call("POST", f"/join/{room_id}", {}, token=user["access_token"],
                                        query={"server_name": a.config.server_name})
        assert status == 200, body
    status, sent = await api_b.call("PUT", f"/rooms/{room_id}/send/m.room.message/1",
                                    {"msgtype": "m.text", "body": "oops"}, token=bob["access_token"])
    await wait_for_event(api_a, alice["access_token"], room_id, lambda e: e["event_id"] == sent["event_id"])
    # Bob redacts his own message on b; a applies it.
    status, redaction = await api_b.call("PUT", f"/rooms/{room_id}/redact/{sent['event_id']}/r1", {},
                                         token=bob["access_token"])
    assert status == 200, redaction
    await wait_for_event(api_a, alice["access_token"], room_id, lambda e: e["event_id"] == redaction["event_id"])
    status, event = await api_a.call("GET", f"/rooms/{room_id}/event/{sent['event_id']}", token=alice["access_token"])
    assert status == 200 and event["content"] == {}, event

    # Typing and a read receipt from b reach a's sync.
    status, _ = await api_b.call("PUT", f"/rooms/{room_id}/typing/{bob['user_id']}", {"typing": True, "timeout": 10000},
                                 token=bob["access_token"])
    assert status == 200

    def typing(s: dict[str, Any]) -> bool:
        events = s.get("rooms", {}).get("join", {}).get(room_id, {}).get("ephemeral", {}).get("events", [])
        return any(e["type"] == "m.typing" and bob["user_id"] in e["content"]["user_ids"] for e in events)

    await sync_until(api_a, alice["access_token"], typing)
    status, _ = await api_b.call("POST", f"/rooms/{room_id}/receipt/m.read/{redaction['event_id']}", {},
                                 token=bob["access_token"])
    assert status == 200

    def receipt(s: dict[str, Any]) -> bool:
        events = s.get("rooms", {}).get("join", {}).get(room_id, {}).get("ephemeral", {}).get("events", [])
        return any(e["type"] == "m.receipt" and bob["user_id"] in e["content"].get(redaction["event_id"], {})
                   .get("m.read", {}) for e in events)

    await sync_until(api_a, alice["access_token"], receipt)

    # Alice bans Bob: both servers agree he is banned and he can no longer send.
    status, body = await api_a.call("POST", f"/rooms/{room_id}/ban", {"user_id": bob["user_id"], "reason": "x"},
                                    token=alice["access_token"])
    assert status == 200, body
    await wait_for_event(api_b, carol["access_token"], room_id,
                         lambda e: e["type"] == "m.room.member" and e["state_key"] == bob["user_id"]
                         and e["content"]["membership"] == "ban")
    status, body = await api_b.call("PUT", f"/rooms/{room_id}/send/m.room.message/2",
                                    {"msgtype": "m.text", "body": "still here?"}, token=bob["access_token"])
    assert status == 403, body


async def test_profiles_aliases_and_keys_across_servers(
    start_federating: StartFederating, https: aiohttp.ClientSession
) -> None:
    a, b, api_a, api_b, alice, bob = await _pair(start_federating, https)
    status, _ = await api_a.call("PUT", f"/profile/{alice['user_id']}/displayname", {"displayname": "Alice A"},
                                 token=alice["access_token"])
    assert status == 200
    status, profile = await api_b.call("GET", f"/profile/{alice['user_id']}", token=bob["access_token"])
    assert status == 200 and profile["displayname"] == "Alice A", profile
    status, created = await api_a.call("POST", "/createRoom", {"preset": "public_chat", "room_alias_name": "lobby"},
                                       token=alice["access_token"])
    alias = f"#lobby:{a.config.server_name}"
    status, found = await api_b.call("GET", f"/directory/room/{alias.replace('#', '%23')}", token=bob["access_token"])
    assert status == 200 and found["room_id"] == created["room_id"] and a.config.server_name in found["servers"]
    status, joined = await api_b.call("POST", f"/join/{alias.replace('#', '%23')}", {}, token=bob["access_token"])
    assert status == 200 and joined["room_id"] == created["room_id"], joined
    # Each finds the other in the user directory now they share a room, by the name the other's
    # membership carries.
    status, found_users = await api_b.call("POST", "/user_directory/search", {"search_term": "alice a"},
                                           token=bob["access_token"])
    assert status == 200 and found_users["results"] == [{"user_id": alice["user_id"], "display_name": "Alice A"}]
    for _ in range(100):
        _, found_users = await api_a.call("POST", "/user_directory/search", {"search_term": "bob"},
                                          token=alice["access_token"])
        if found_users["results"]:
            break
        await asyncio.sleep(0.1)
    assert [r["user_id"] for r in found_users["results"]] == [bob["user_id"]]
    status, missing = await api_b.call("GET", f"/directory/room/%23nothing:{a.config.server_name}",
                                       token=bob["access_token"])
    assert status == 404 and missing["errcode"] == "M_NOT_FOUND"
    # Keys of a user on the other server.
    status, _ = await api_a.call("POST", "/keys/upload", {"one_time_keys": {"signed_curve25519:AAA": {"key": "k1"}}},
                                 token=alice["access_token"])
    assert status == 200
    status, claimed = await api_b.call("POST", "/keys/claim", {"one_time_keys": {
        alice["user_id"]: {alice["device_id"]: "signed_curve25519"}}}, token=bob["access_token"])
    assert status == 200 and claimed["one_time_keys"] == {
        alice["user_id"]: {alice["device_id"]: {"signed_curve25519:AAA": {"key": "k1"}}}}, claimed


async def test_remote_media_fetched_once_and_thumbnailed(
    start_federating: StartFederating, https: aiohttp.ClientSession
) -> None:
    import io

    from PIL import Image

    a, b, api_a, api_b, alice, bob = await _pair(start_federating, https)
    image = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 30, 30)).save(image, "PNG")
    async with https.post(f"{base_url(a)}/_matrix/media/v3/upload", data=image.getvalue(),
                          params={"filename": "red.png"},
                          headers={"Authorization": f"Bearer {alice['access_token']}",
                                   "Content-Type": "image/png"}) as resp:
        assert resp.status == 200
        uploaded = await resp.json()
    server, media_id = uploaded["content_uri"][len("mxc://"):].split("/")
    url = f"{base_url(b)}/_matrix/client/v1/media/download/{server}/{media_id}"
    for _ in range(2):
        async with https.get(url, headers={"Authorization": f"Bearer {bob['access_token']}"}) as resp:
            assert resp.status == 200
            assert await resp.read() == image.getvalue()
            assert "red.png" in resp.headers["Content-Disposition"]
    rows = await b.database.pool.fetch("SELECT media_id FROM remote_media")
    assert [r["media_id"] for r in rows] == [media_id]
    async with https.get(f"{base_url(b)}/_matrix/client/v1/media/thumbnail/{server}/{media_id}",
                         params={"width": "32", "height": "32", "method": "crop"},
                         headers={"Authorization": f"Bearer {bob['access_token']}"}) as resp:
        assert resp.status == 200 and resp.content_type in ("image/jpeg", "image/png")
    async with https.get(f"{base_url(b)}/_matrix/client/v1/media/download/{server}/nosuchmedia",
                         headers={"Authorization": f"Bearer {bob['access_token']}"}) as resp:
        assert resp.status == 404
    async with https.get(f"{base_url(b)}/_matrix/client/v1/media/download/{server}/..%2F..%2Fetc",
                         headers={"Authorization": f"Bearer {bob['access_token']}"}) as resp:
        assert resp.status == 404


async def test_backfill_when_paginating_past_the_join(
    start_federating: StartFederating, https: aiohttp.ClientSession
) -> None:
    a, b, api_a, api_b, alice, bob = await _pair(start_federating, https)
    status, created = await api_a.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice["access_token"])
    room_id = created["room_id"]
    for i in range(15):
        await api_a.call("PUT", f"/rooms/{room_id}/send/m.room.message/h{i}", {"msgtype": "m.text", "body": f"old {i}"},
                         token=alice["access_token"])
    status, body = await api_b.call("POST", f"/join/{room_id}", {}, token=bob["access_token"],
                                    query={"server_name": a.config.server_name})
    assert status == 200, body
    bodies: list[str] = []
    token = None
    for _ in range(10):
        query = {"dir": "b", "limit": "8"} | ({"from": token} if token else {})
        status, page = await api_b.call("GET", f"/rooms/{room_id}/messages", token=bob["access_token"], query=query)
        assert status == 200, page
        bodies += [e["content"]["body"] for e in page["chunk"] if e["type"] == "m.room.message"]
        if "end" not in page:
            break
        token = page["end"]
    assert bodies == [f"old {i}" for i in reversed(range(15))], bodies
    types = []
    status, page = await api_b.call("GET", f"/rooms/{room_id}/messages", token=bob["access_token"],
                                    query={"dir": "b", "limit": "100", "from": token})
    types = [e["type"] for e in page["chunk"]]
    assert status == 200 and ("m.room.create" in types or not page["chunk"]), page


async def test_remote_device_lists_are_kept_while_a_room_is_shared(
    start_federating: StartFederating, https: aiohttp.ClientSession
) -> None:
    a, b, api_a, api_b, alice, bob = await _pair(start_federating, https)
    carol = await api_b.register("carol")
    status, created = await api_a.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice["access_token"])
    status, _ = await api_b.call("POST", f"/join/{created['room_id']}", {}, token=bob["access_token"],
                                 query={"server_name": a.config.server_name})
    assert status == 200

    def device(user: dict[str, Any], device_id: str) -> dict[str, Any]:
        return {"user_id": user["user_id"], "device_id": device_id, "algorithms": ["m.megolm.v1.aes-sha2"],
                "keys": {f"ed25519:{device_id}": f"key-of-{device_id}"}}

    for user in (bob, carol):
        await api_b.call("POST", "/keys/upload", {"device_keys": device(user, user["device_id"])},
                         token=user["access_token"])

    async def bobs_devices() -> tuple[set[str], dict[str, Any]]:
        status, found = await api_a.call("POST", "/keys/query", {"device_keys": {bob["user_id"]: []}},
                                         token=alice["access_token"])
        assert status == 200, found
        return set(found["device_keys"].get(bob["user_id"], {})), found["failures"]

    assert await bobs_devices() == ({bob["device_id"]}, {})
    # A new device of bob's reaches alice's server as a device-list update, which its copy follows.
    _, phone = await api_b.login("bob")
    await api_b.call("POST", "/keys/upload", {"device_keys": device(bob, phone["device_id"])},
                     token=phone["access_token"])
    for _ in range(100):
        if (await bobs_devices())[0] == {bob["device_id"], phone["device_id"]}:
            break
        await asyncio.sleep(0.1)
    assert await bobs_devices() == ({bob["device_id"], phone["device_id"]}, {})
    # Bob cross-signs the phone: the signature reaches alice's copy with the device's next update.
    from homeserver.core.signing import sign_json
    from tests.api.test_e2ee import cross_signing_keys

    master, ssk, _usk, _master_key, ssk_key, _usk_key = cross_signing_keys(bob["user_id"])
    await api_b.call("POST", "/keys/device_signing/upload", {"master_key": master, "self_signing_key": ssk},
                     token=bob["access_token"])
    signed = sign_json(device(bob, phone["device_id"]), bob["user_id"], ssk_key)
    status, uploaded = await api_b.call("POST", "/keys/signatures/upload",
                                        {bob["user_id"]: {phone["device_id"]: signed}}, token=bob["access_token"])
    assert (status, uploaded["failures"]) == (200, {})
    signer = f"ed25519:{ssk_key.version}"
    for _ in range(100):
        _, found = await api_a.call("POST", "/keys/query", {"device_keys": {bob["user_id"]: [phone["device_id"]]}},
                                    token=alice["access_token"])
        phone_keys = found["device_keys"][bob["user_id"]][phone["device_id"]]
        if signer in phone_keys.get("signatures", {}).get(bob["user_id"], {}):
            break
        await asyncio.sleep(0.1)
    assert signer in phone_keys["signatures"][bob["user_id"]], phone_keys
    assert found["self_signing_keys"][bob["user_id"]]["keys"] == ssk["keys"]
    # An update that does not follow the change alice's server has (a gap): its copy is not
    # patched but fetched again, so the ghost device it names never shows.
    await a.e2ee.remote_keys_changed(bob["user_id"], "m.device_list_update", {
        "user_id": bob["user_id"], "device_id": "GHOST", "stream_id": 10**9, "prev_id": [10**9 - 1],
        "deleted": False, "keys": device(bob, "GHOST")})
    assert await bobs_devices() == ({bob["device_id"], phone["device_id"]}, {})
    # Alice's server leaves the room (its last member there leaves) and joins again: the copy, no
    # longer kept current meanwhile, is dropped and fetched anew.
    await api_a.call("POST", f"/rooms/{created['room_id']}/leave", {}, token=alice["access_token"])
    assert await a.database.pool.fetchval(
        "SELECT count(*) FROM remote_device_lists WHERE user_id = $1", bob["user_id"]) == 0
    await api_a.call("POST", f"/join/{created['room_id']}", {}, token=alice["access_token"],
                     query={"server_name": b.config.server_name})
    assert await bobs_devices() == ({bob["device_id"], phone["device_id"]}, {})
    # Bob's server goes down: alice still has his keys (a room is shared, so the copy is current);
    # carol, who shares no room with her, cannot be asked about.
    await b.stop()
    assert await bobs_devices() == ({bob["device_id"], phone["device_id"]}, {})
    status, found = await api_a.call("POST", "/keys/query", {"device_keys": {carol["user_id"]: []}},
                                     token=alice["access_token"])
    assert status == 200 and b.config.server_name in found["failures"], found


async def test_rejoin_after_leaving(start_federating: StartFederating, https: aiohttp.ClientSession) -> None:
    """A server whose last user left keeps a stale copy of the room: a new invite still reaches its
    user, and their join goes through the servers still in the room."""
    a, b, api_a, api_b, alice, bob = await _pair(start_federating, https)
    _, created = await api_a.call("POST", "/createRoom", {"preset": "private_chat"}, token=alice["access_token"])
    room = created["room_id"]
    for attempt in range(2):
        status, body = await api_a.call("POST", f"/rooms/{room}/invite", {"user_id": bob["user_id"]},
                                        token=alice["access_token"])
        assert status == 200, body
        await sync_until(api_b, bob["access_token"], lambda s: room in s["rooms"]["invite"])
        status, body = await api_b.call("POST", f"/join/{room}", {}, token=bob["access_token"])
        assert status == 200, (attempt, body)
        status, sent = await api_a.call("PUT", f"/rooms/{room}/send/m.room.message/m{attempt}",
                                        {"msgtype": "m.text", "body": f"welcome back {attempt}"},
                                        token=alice["access_token"])
        seen = await wait_for_event(api_b, bob["access_token"], room, lambda e: e["event_id"] == sent["event_id"])
        assert seen["content"]["body"] == f"welcome back {attempt}"
        status, sent = await api_b.call("PUT", f"/rooms/{room}/send/m.room.message/r{attempt}",
                                        {"msgtype": "m.text", "body": f"thanks {attempt}"}, token=bob["access_token"])
        assert status == 200, sent
        await wait_for_event(api_a, alice["access_token"], room, lambda e: e["event_id"] == sent["event_id"])
        status, _ = await api_b.call("POST", f"/rooms/{room}/leave", {}, token=bob["access_token"])
        assert status == 200
        await wait_for_event(api_a, alice["access_token"], room,
                             lambda e: e.get("state_key") == bob["user_id"] and e["content"]["membership"] == "leave")


async def test_a_join_through_one_server_reaches_the_others(
    start_federating: StartFederating, https: aiohttp.ClientSession
) -> None:
    a, b, api_a, api_b, alice, bob = await _pair(start_federating, https)
    c = await start_federating()
    api_c = Api(https, c)
    carol = await api_c.register("carol")
    _, created = await api_a.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice["access_token"])
    room = created["room_id"]
    status, body = await api_c.call("POST", f"/join/{room}", {}, token=carol["access_token"],
                                    query={"server_name": a.config.server_name})
    assert status == 200, body
    status, body = await api_b.call("POST", f"/join/{room}", {}, token=bob["access_token"],
                                    query={"server_name": a.config.server_name})
    assert status == 200, body
    # Bob's server sent its join to alice's only; hers passes it on, so carol's hears of it now,
    # not when some later event happens to point at it.
    seen = await wait_for_event(api_c, carol["access_token"], room,
                                lambda e: e.get("state_key") == bob["user_id"] and e["type"] == "m.room.member")
    assert seen["content"]["membership"] == "join"
