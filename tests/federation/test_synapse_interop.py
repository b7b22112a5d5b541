"""Federation with a real Synapse (from PyPI) on loopback, both ways."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest

from tests.api.helpers import Api
from tests.federation.conftest import StartFederating, TlsFiles, free_port
from tests.federation.synapse_peer import SYNAPSE_AVAILABLE, SynapsePeer
from tests.federation.test_two_servers import wait_for_event

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
    status, sent = await remote.call("PUT", f"/rooms/{room_id}/send/m.room.message/1",
                                     {"msgtype": "m.text", "body": "hi from synapse"}, token=bob)
    assert status == 200, sent
    seen = await wait_for_event(api, alice, room_id, lambda e: e["event_id"] == sent["event_id"])
    assert seen["content"]["body"] == "hi from synapse"
    status, sent = await api.call("PUT", f"/rooms/{room_id}/send/m.room.message/1",
                                  {"msgtype": "m.text", "body": "hi from us"}, token=alice)
    assert status == 200, sent
    seen = await wait_for_event(remote, bob, room_id, lambda e: e["event_id"] == sent["event_id"])
    assert seen["content"]["body"] == "hi from us"


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
    status, sent = await api.call("PUT", f"/rooms/{room_id}/send/m.room.message/1",
                                  {"msgtype": "m.text", "body": "hi from us"}, token=alice)
    assert status == 200, sent
    seen = await wait_for_event(remote, bob, room_id, lambda e: e["event_id"] == sent["event_id"])
    assert seen["content"]["body"] == "hi from us"
    status, sent = await remote.call("PUT", f"/rooms/{room_id}/send/m.room.message/1",
                                     {"msgtype": "m.text", "body": "hi from synapse"}, token=bob)
    assert status == 200, sent
    seen = await wait_for_event(api, alice, room_id, lambda e: e["event_id"] == sent["event_id"])
    assert seen["content"]["body"] == "hi from synapse"
