"""Federation with a real Synapse (from PyPI) on loopback, both ways."""

from __future__ import annotations

import itertools
from typing import Any, AsyncIterator

import aiohttp
import pytest

from homeserver.core.signing import sign_json
from tests.api.helpers import Api
from tests.api.test_e2ee import Device
from tests.federation.conftest import StartFederating, TlsFiles, free_port
from tests.federation.synapse_peer import SYNAPSE_AVAILABLE, SynapsePeer
from tests.federation.test_two_servers import say, sync_until, wait_for_event

pytestmark = pytest.mark.skipif(not SYNAPSE_AVAILABLE, reason="matrix-synapse is not installed")
_names = itertools.count()


@pytest.fixture(scope="module")
async def synapse(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> AsyncIterator[SynapsePeer]:
    peer = SynapsePeer(tmp_path_factory.mktemp("synapse"), free_port(), tls_files.cert, tls_files.key)
    await peer.start()
    yield peer
    await peer.stop()


def name(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


async def test_synapse_user_joins_our_room(
    start_federating: StartFederating, https: aiohttp.ClientSession, synapse: SynapsePeer
) -> None:
    ours = await start_federating()
    api, remote = Api(https, ours), Api(https, synapse.base_url)
    alice = (await api.register(name("alice")))["access_token"]
    bob = (await remote.register(name("bob")))["access_token"]
    status, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "name": "Ours"}, token=alice)
    assert status == 200, created
    room_id = created["room_id"]
    status, joined = await remote.call("POST", f"/join/{room_id}", {}, token=bob,
                                       query={"server_name": ours.config.server_name})
    assert status == 200, (joined, synapse.log()[-3000:])
    await say(remote, bob, api, alice, room_id, "hi from synapse")
    await say(api, alice, remote, bob, room_id, "hi from us")


async def test_our_user_joins_synapse_room(
    start_federating: StartFederating, https: aiohttp.ClientSession, synapse: SynapsePeer
) -> None:
    ours = await start_federating()
    api, remote = Api(https, ours), Api(https, synapse.base_url)
    alice = (await api.register(name("alice")))["access_token"]
    bob = (await remote.register(name("bob")))["access_token"]
    status, created = await remote.call("POST", "/createRoom", {"preset": "public_chat", "name": "Theirs"},
                                        token=bob)
    assert status == 200, created
    room_id = created["room_id"]
    status, joined = await api.call("POST", f"/join/{room_id}", {}, token=alice,
                                    query={"server_name": synapse.server_name})
    assert status == 200, joined
    status, state = await api.call("GET", f"/rooms/{room_id}/state/m.room.name/", token=alice)
    assert status == 200 and state == {"name": "Theirs"}
    await say(api, alice, remote, bob, room_id, "hi from us")
    await say(remote, bob, api, alice, room_id, "hi from synapse")


async def _room_with_both(
    api: Api, remote: Api, ours_name: str, alice: str, bob: str, preset: str = "public_chat"
) -> str:
    status, created = await api.call("POST", "/createRoom", {"preset": preset}, token=alice)
    assert status == 200, created
    room_id = created["room_id"]
    status, joined = await remote.call("POST", f"/join/{room_id}", {}, token=bob, query={"server_name": ours_name})
    assert status == 200, joined
    return room_id


async def test_invites_redactions_typing_receipts_and_bans(
    start_federating: StartFederating, https: aiohttp.ClientSession, synapse: SynapsePeer
) -> None:
    ours = await start_federating()
    api, remote = Api(https, ours), Api(https, synapse.base_url)
    alice = await api.register(name("alice"))
    bob = await remote.register(name("bob"))
    a_token, b_token = alice["access_token"], bob["access_token"]

    # Our invite to a Synapse user, who joins.
    status, created = await api.call("POST", "/createRoom", {"preset": "private_chat", "name": "Inv"}, token=a_token)
    room_id = created["room_id"]
    status, body = await api.call("POST", f"/rooms/{room_id}/invite", {"user_id": bob["user_id"]}, token=a_token)
    assert status == 200, body
    await sync_until(remote, b_token, lambda s: room_id in s.get("rooms", {}).get("invite", {}))
    status, body = await remote.call("POST", f"/join/{room_id}", {}, token=b_token)
    assert status == 200, body

    # Synapse's invite to our user, who joins.
    status, created = await remote.call("POST", "/createRoom", {"preset": "private_chat", "name": "Theirs"},
                                        token=b_token)
    their_room = created["room_id"]
    status, body = await remote.call("POST", f"/rooms/{their_room}/invite", {"user_id": alice["user_id"]},
                                     token=b_token)
    assert status == 200, body
    invited = await sync_until(api, a_token, lambda s: their_room in s.get("rooms", {}).get("invite", {}))
    names = [e for e in invited["rooms"]["invite"][their_room]["invite_state"]["events"] if e["type"] == "m.room.name"]
    assert names and names[0]["content"] == {"name": "Theirs"}
    status, body = await api.call("POST", f"/join/{their_room}", {}, token=a_token)
    assert status == 200, body

    # Redactions both ways.
    status, sent = await remote.call("PUT", f"/rooms/{room_id}/send/m.room.message/r1",
                                     {"msgtype": "m.text", "body": "to be redacted"}, token=b_token)
    await wait_for_event(api, a_token, room_id, lambda e: e["event_id"] == sent["event_id"])
    status, redaction = await remote.call("PUT", f"/rooms/{room_id}/redact/{sent['event_id']}/x1", {}, token=b_token)
    assert status == 200, redaction
    await wait_for_event(api, a_token, room_id, lambda e: e["event_id"] == redaction["event_id"])
    status, event = await api.call("GET", f"/rooms/{room_id}/event/{sent['event_id']}", token=a_token)
    assert status == 200 and event["content"] == {}, event
    status, mine = await api.call("PUT", f"/rooms/{room_id}/send/m.room.message/r2",
                                  {"msgtype": "m.text", "body": "mine"}, token=a_token)
    status, redaction = await api.call("PUT", f"/rooms/{room_id}/redact/{mine['event_id']}/x2", {}, token=a_token)
    await wait_for_event(remote, b_token, room_id, lambda e: e["event_id"] == redaction["event_id"])
    status, event = await remote.call("GET", f"/rooms/{room_id}/event/{mine['event_id']}", token=b_token)
    assert status == 200 and event["content"] == {}, event

    # Typing and receipts both ways.
    def ephemeral(room: str, kind: str, check: Any) -> Any:
        return lambda s: any(e["type"] == kind and check(e) for e in s.get("rooms", {}).get("join", {}).get(room, {})
                             .get("ephemeral", {}).get("events", []))

    await remote.call("PUT", f"/rooms/{room_id}/typing/{bob['user_id']}", {"typing": True, "timeout": 20000},
                      token=b_token)
    await sync_until(api, a_token, ephemeral(room_id, "m.typing", lambda e: bob["user_id"] in e["content"]["user_ids"]))
    await api.call("PUT", f"/rooms/{room_id}/typing/{alice['user_id']}", {"typing": True, "timeout": 20000},
                   token=a_token)
    await sync_until(remote, b_token,
                     ephemeral(room_id, "m.typing", lambda e: alice["user_id"] in e["content"]["user_ids"]))
    await remote.call("POST", f"/rooms/{room_id}/receipt/m.read/{mine['event_id']}", {}, token=b_token)
    await sync_until(api, a_token, ephemeral(room_id, "m.receipt", lambda e: bob["user_id"] in e["content"]
                                             .get(mine["event_id"], {}).get("m.read", {})))
    await api.call("POST", f"/rooms/{room_id}/receipt/m.read/{sent['event_id']}", {}, token=a_token)
    await sync_until(remote, b_token, ephemeral(room_id, "m.receipt", lambda e: alice["user_id"] in e["content"]
                                                .get(sent["event_id"], {}).get("m.read", {})))

    # A ban on our side reaches Synapse, which then refuses the banned user's messages.
    status, body = await api.call("POST", f"/rooms/{room_id}/ban", {"user_id": bob["user_id"]}, token=a_token)
    assert status == 200, body
    await sync_until(remote, b_token, lambda s: room_id in s.get("rooms", {}).get("leave", {}))
    status, body = await remote.call("PUT", f"/rooms/{room_id}/send/m.room.message/b1",
                                     {"msgtype": "m.text", "body": "banned"}, token=b_token)
    assert status == 403, body


async def test_encryption_keys_and_to_device_cross_servers(
    start_federating: StartFederating, https: aiohttp.ClientSession, synapse: SynapsePeer
) -> None:
    ours = await start_federating()
    api, remote = Api(https, ours), Api(https, synapse.base_url)
    alice_reg = await api.register(name("alice"))
    bob_reg = await remote.register(name("bob"))
    alice = Device(alice_reg["user_id"], alice_reg["device_id"], alice_reg["access_token"])
    bob = Device(bob_reg["user_id"], bob_reg["device_id"], bob_reg["access_token"])
    for device, server in ((alice, api), (bob, remote)):
        status, body = await server.call("POST", "/keys/upload", {
            "device_keys": device.device_keys(),
            "one_time_keys": {"signed_curve25519:AAAA": sign_json({"key": "otk" + device.device_id}, device.user_id,
                                                                   device.key)}}, token=device.token)
        assert status == 200, body
    room_id = await _room_with_both(api, remote, ours.config.server_name, alice.token, bob.token)
    await api.call("PUT", f"/rooms/{room_id}/state/m.room.encryption/", {"algorithm": "m.megolm.v1.aes-sha2"},
                   token=alice.token)

    # Each side sees the other's device keys and can claim a one-time key.
    status, keys = await api.call("POST", "/keys/query", {"device_keys": {bob.user_id: []}}, token=alice.token)
    assert status == 200 and keys["device_keys"][bob.user_id][bob.device_id]["keys"] == \
        bob.device_keys()["keys"], keys
    status, keys = await remote.call("POST", "/keys/query", {"device_keys": {alice.user_id: []}}, token=bob.token)
    assert status == 200 and alice.device_id in keys["device_keys"].get(alice.user_id, {}), keys
    status, claimed = await remote.call("POST", "/keys/claim", {"one_time_keys": {
        alice.user_id: {alice.device_id: "signed_curve25519"}}}, token=bob.token)
    assert status == 200 and "signed_curve25519:AAAA" in claimed["one_time_keys"][alice.user_id][alice.device_id]

    # A new device of ours shows up in Synapse's device_lists.changed, and Synapse sees its keys.
    status, login = await api.login(alice.user_id.split(":")[0][1:])
    second = Device(alice.user_id, login["device_id"], login["access_token"])
    status, body = await api.call("POST", "/keys/upload", {"device_keys": second.device_keys()}, token=second.token)
    assert status == 200, body
    await sync_until(remote, bob.token, lambda s: alice.user_id in s.get("device_lists", {}).get("changed", []))
    status, keys = await remote.call("POST", "/keys/query", {"device_keys": {alice.user_id: []}}, token=bob.token)
    assert second.device_id in keys["device_keys"][alice.user_id], keys

    # To-device messages both ways.
    status, _ = await remote.call("PUT", "/sendToDevice/m.room_key_request/t1", {
        "messages": {alice.user_id: {alice.device_id: {"hello": "from synapse"}}}}, token=bob.token)
    assert status == 200
    got = await sync_until(api, alice.token, lambda s: s.get("to_device", {}).get("events"))
    assert got["to_device"]["events"][0]["content"] == {"hello": "from synapse"}
    assert got["to_device"]["events"][0]["sender"] == bob.user_id
    status, _ = await api.call("PUT", "/sendToDevice/m.room_key_request/t1", {
        "messages": {bob.user_id: {"*": {"hello": "from us"}}}}, token=alice.token)
    assert status == 200
    got = await sync_until(remote, bob.token, lambda s: s.get("to_device", {}).get("events"))
    assert got["to_device"]["events"][0]["content"] == {"hello": "from us"}


async def _messages(api: Api, token: str, room_id: str) -> list[str]:
    status, page = await api.call("GET", f"/rooms/{room_id}/messages", token=token, query={"dir": "b", "limit": "50"})
    assert status == 200, page
    return [e["content"].get("body") for e in page["chunk"] if e["type"] == "m.room.message"]


async def test_catch_up_after_downtime_both_ways(
    start_federating: StartFederating, https: aiohttp.ClientSession, synapse: SynapsePeer
) -> None:
    ours = await start_federating()
    port, dsn = ours.bound_addresses[0][1], ours.config.database.dsn
    api, remote = Api(https, ours), Api(https, synapse.base_url)
    alice = await api.register(name("alice"))
    bob = await remote.register(name("bob"))
    a_token, b_token = alice["access_token"], bob["access_token"]
    room_id = await _room_with_both(api, remote, ours.config.server_name, a_token, b_token)
    await wait_for_event(api, a_token, room_id, lambda e: e["type"] == "m.room.member" and e["sender"] == bob["user_id"])

    # We are down while Synapse's user talks; once we are back, nothing is missing.
    await ours.stop()
    for i in range(5):
        status, _ = await remote.call("PUT", f"/rooms/{room_id}/send/m.room.message/down{i}",
                                      {"msgtype": "m.text", "body": f"while you were away {i}"}, token=b_token)
        assert status == 200
    ours = await start_federating(port=port, dsn=dsn)
    api = Api(https, ours)
    status, _ = await api.call("PUT", f"/rooms/{room_id}/send/m.room.message/back",
                               {"msgtype": "m.text", "body": "back"}, token=a_token)
    assert status == 200
    await wait_for_event(api, a_token, room_id, lambda e: e["content"].get("body") == "while you were away 4",
                         timeout=60)
    bodies = await _messages(api, a_token, room_id)
    assert all(f"while you were away {i}" in bodies for i in range(5)), bodies

    # Synapse is down while our user talks; our queue delivers everything when it is back.
    await synapse.stop()
    for i in range(3):
        status, _ = await api.call("PUT", f"/rooms/{room_id}/send/m.room.message/gone{i}",
                                   {"msgtype": "m.text", "body": f"queued {i}"}, token=a_token)
        assert status == 200
    await synapse.start()
    await wait_for_event(remote, b_token, room_id, lambda e: e["content"].get("body") == "queued 2", timeout=60)
    bodies = await _messages(remote, b_token, room_id)
    assert all(f"queued {i}" in bodies for i in range(3)), bodies
