"""Inbound federation refuses what it must: unsigned or forged requests, forged or unauthorised
PDUs, oversized transactions, servers denied by ACLs or by the domain whitelist."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from nacl.signing import SigningKey
from yarl import URL

from homeserver.core.event_builder import build_event, select_auth_events, sign_template
from homeserver.core.room_versions import get_room_version
from homeserver.core.events import Event
from homeserver.core.x_matrix import authorization_header
from homeserver.federation.client import FederationError
from homeserver.server import HomeServer
from homeserver.storage import events as event_store
from tests.api.helpers import Api
from tests.conftest import base_url
from tests.federation.conftest import StartFederating
from tests.federation.test_two_servers import wait_for_event


async def _signed(b: HomeServer, a: HomeServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A request from b to a through b's own federation client."""
    try:
        return 200, await b.federation_client.request(method, a.config.server_name, path, body=body)
    except FederationError as exc:
        return exc.status, exc.body


async def _raw(https: aiohttp.ClientSession, a: HomeServer, path: str, header: str | None) -> tuple[int, Any]:
    headers = {"Authorization": header} if header else {}
    async with https.get(URL(base_url(a) + path, encoded=True), headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def _room(a: HomeServer, b: HomeServer, https: aiohttp.ClientSession, **create: Any) -> tuple[str, dict, dict]:
    api_a, api_b = Api(https, a), Api(https, b)
    alice, bob = await api_a.register("alice"), await api_b.register("bob")
    status, created = await api_a.call("POST", "/createRoom", {"preset": "public_chat", **create},
                                       token=alice["access_token"])
    assert status == 200, created
    room_id = created["room_id"]
    status, body = await api_b.call("POST", f"/join/{room_id}", {}, token=bob["access_token"],
                                    query={"server_name": a.config.server_name})
    assert status == 200, body
    return room_id, alice, bob


async def _event_for(a: HomeServer, b: HomeServer, room_id: str, sender: str, event_type: str,
                     content: dict[str, Any], state_key: str | None = None, key: SigningKey | None = None) -> Event:
    """An event by one of b's users on a's current forward extremities, signed by b (or `key`)."""
    room = await a.event_store.require_room(room_id)
    extremities = await event_store.forward_extremities(a.database.pool, room.room_nid)
    state = await a.event_store.state_events(room, await event_store.current_state(a.database.pool, room.room_nid))
    prev = list((await a.event_store.events(room, extremities)).values())
    return build_event(
        room.version, server_name=b.config.server_name, signing_key=key or b.server_keys.signing_key,
        sender=sender, event_type=event_type, content=content, origin_server_ts=int(time.time() * 1000),
        room_id=room_id, prev_events=prev,
        auth_events=select_auth_events(room.version, event_type, sender, state_key, content, state),
        state_key=state_key,
    )


async def test_request_authentication(start_federating: StartFederating, https: aiohttp.ClientSession) -> None:
    a, b = await start_federating(), await start_federating()
    status, body = await _raw(https, a, "/_matrix/federation/v1/version", None)
    assert status == 200 and body["server"]["name"] == "homeserver"
    path = "/_matrix/federation/v1/query/profile?user_id=%40nobody%3A" + a.config.server_name
    status, body = await _raw(https, a, path, None)
    assert status == 401 and body["errcode"] == "M_UNAUTHORIZED"
    status, body = await _raw(https, a, path, "Bearer nonsense")
    assert status == 401 and body["errcode"] == "M_UNAUTHORIZED"
    key = b.server_keys.signing_key
    origin = b.config.server_name
    wrong_destination = authorization_header("GET", path, origin, "elsewhere.example", key)
    status, body = await _raw(https, a, path, wrong_destination)
    assert status == 401 and body["errcode"] == "M_UNAUTHORIZED"
    forged_key = SigningKey.generate()
    forged_key.version = key.version  # type: ignore[attr-defined]
    forged_key.alg = "ed25519"  # type: ignore[attr-defined]
    forged = authorization_header("GET", path, origin, a.config.server_name, forged_key)
    status, body = await _raw(https, a, path, forged)
    assert status == 401 and body["errcode"] == "M_UNAUTHORIZED", body
    other_path = authorization_header("GET", "/_matrix/federation/v1/version", origin, a.config.server_name, key)
    status, body = await _raw(https, a, path, other_path)
    assert status == 401 and body["errcode"] == "M_UNAUTHORIZED"
    unknown = authorization_header("GET", path, "127.0.0.1:1", a.config.server_name, key)
    status, body = await _raw(https, a, path, unknown)
    assert status == 401 and body["errcode"] == "M_UNAUTHORIZED"
    good = authorization_header("GET", path, origin, a.config.server_name, key)
    status, body = await _raw(https, a, path, good)
    assert status == 404 and body["errcode"] == "M_NOT_FOUND", body


async def test_domain_whitelist(start_federating: StartFederating, https: aiohttp.ClientSession) -> None:
    a = await start_federating(federation_domain_whitelist=("friend.example",))
    b = await start_federating()
    status, body = await _signed(b, a, "GET", "/_matrix/federation/v1/query/directory?room_alias=%23x%3Ay")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"


async def test_transactions_check_every_pdu(start_federating: StartFederating, https: aiohttp.ClientSession) -> None:
    a, b = await start_federating(), await start_federating()
    room_id, alice, bob = await _room(a, b, https)
    api_a = Api(https, a)

    status, body = await _signed(b, a, "PUT", "/_matrix/federation/v1/send/big", {
        "origin": b.config.server_name, "origin_server_ts": 0, "pdus": [{}] * 51, "edus": []})
    assert status == 400 and body["errcode"] == "M_BAD_JSON"
    status, body = await _signed(b, a, "PUT", "/_matrix/federation/v1/send/notjson", None)
    assert status == 400

    good = await _event_for(a, b, room_id, bob["user_id"], "m.room.message", {"msgtype": "m.text", "body": "good"})
    forged_key = SigningKey.generate()
    forged_key.version = b.server_keys.signing_key.version  # type: ignore[attr-defined]
    forged_key.alg = "ed25519"  # type: ignore[attr-defined]
    bad_signature = await _event_for(a, b, room_id, bob["user_id"], "m.room.message",
                                     {"msgtype": "m.text", "body": "forged"}, key=forged_key)
    tampered = await _event_for(a, b, room_id, bob["user_id"], "m.room.message",
                                {"msgtype": "m.text", "body": "original"})
    tampered_pdu = {**tampered.pdu, "content": {"msgtype": "m.text", "body": "changed in transit"}}
    # Bob may not change the room's name (power level 50 needed).
    unauthorised = await _event_for(a, b, room_id, bob["user_id"], "m.room.name", {"name": "mine now"}, "")
    # A user of a's server cannot be sent by b.
    impostor = await _event_for(a, b, room_id, alice["user_id"], "m.room.message", {"msgtype": "m.text", "body": "x"})
    status, body = await _signed(b, a, "PUT", "/_matrix/federation/v1/send/t1", {
        "origin": b.config.server_name, "origin_server_ts": 0, "edus": [],
        "pdus": [good.pdu, bad_signature.pdu, tampered_pdu, unauthorised.pdu, impostor.pdu]})
    assert status == 200, body
    results = body["pdus"]
    assert results[good.event_id] == {}
    assert "error" in results[bad_signature.event_id]
    assert results[tampered.event_id] == {}
    assert results[unauthorised.event_id] == {}  # processed: stored as rejected, no error (as Synapse)
    rejected = await a.database.pool.fetchval("SELECT rejected_reason FROM events WHERE event_id = $1",
                                              unauthorised.event_id)
    assert rejected is not None
    assert "error" in results[impostor.event_id]
    # Retried transaction: the same answer, nothing done twice.
    status, again = await _signed(b, a, "PUT", "/_matrix/federation/v1/send/t1", {
        "origin": b.config.server_name, "origin_server_ts": 0, "edus": [], "pdus": [good.pdu]})
    assert again == body

    await wait_for_event(api_a, alice["access_token"], room_id, lambda e: e["event_id"] == good.event_id)
    status, event = await api_a.call("GET", f"/rooms/{room_id}/event/{tampered.event_id}", token=alice["access_token"])
    assert status == 200 and event["content"] == {}, event  # kept in its redacted form
    status, name = await api_a.call("GET", f"/rooms/{room_id}/state/m.room.name/", token=alice["access_token"])
    assert status == 404, name
    status, event = await api_a.call("GET", f"/rooms/{room_id}/event/{unauthorised.event_id}",
                                     token=alice["access_token"])
    assert status == 404


async def test_membership_endpoints_refuse_bad_requests(
    start_federating: StartFederating, https: aiohttp.ClientSession
) -> None:
    a, b = await start_federating(), await start_federating()
    room_id, alice, bob = await _room(a, b, https)
    # make_join for a user of another server.
    status, body = await _signed(b, a, "GET", f"/_matrix/federation/v1/make_join/{room_id}/{alice['user_id']}?ver=12")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await _signed(b, a, "GET", f"/_matrix/federation/v1/make_join/{room_id}/@c:{b.config.server_name}?ver=1")
    assert status == 400 and body["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION" and body["room_version"] == "12"
    status, body = await _signed(b, a, "GET", f"/_matrix/federation/v1/make_join/!nope:x/@c:{b.config.server_name}?ver=12")
    assert status == 404
    status, template = await _signed(
        b, a, "GET", f"/_matrix/federation/v1/make_join/{room_id}/@carol:{b.config.server_name}?ver=12")
    assert status == 200 and template["event"]["content"] == {"membership": "join"}
    # The template as it came (unsigned, unhashed): refused as a forged event.
    status, body = await _signed(b, a, "PUT", f"/_matrix/federation/v2/send_join/{room_id}/$wrongid",
                                 template["event"])
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
    signed = sign_template(template["event"], get_room_version("12"), b.config.server_name,
                           b.server_keys.signing_key)
    status, body = await _signed(b, a, "PUT", f"/_matrix/federation/v2/send_join/{room_id}/$wrongid", signed.pdu)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON"), body
    # Invites for users that are not ours.
    status, body = await _signed(b, a, "PUT", f"/_matrix/federation/v2/invite/{room_id}/$x",
                                 {"room_version": "12", "event": {"type": "m.room.member"}})
    assert status == 400 and body["errcode"] in ("M_INVALID_PARAM", "M_BAD_JSON")
    status, body = await _signed(b, a, "PUT", f"/_matrix/federation/v2/invite/{room_id}/$x",
                                 {"room_version": "99", "event": {}})
    assert status == 400 and body["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION"


async def test_server_acl(start_federating: StartFederating, https: aiohttp.ClientSession) -> None:
    a, b = await start_federating(), await start_federating()
    room_id, alice, bob = await _room(a, b, https)
    api_a = Api(https, a)
    status, body = await api_a.call("PUT", f"/rooms/{room_id}/state/m.room.server_acl/", {
        "allow": ["*"], "deny": ["127.0.0.1"], "allow_ip_literals": True}, token=alice["access_token"])
    assert status == 200, body
    status, body = await _signed(
        b, a, "GET", f"/_matrix/federation/v1/make_join/{room_id}/@carol:{b.config.server_name}?ver=12")
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    event = await _event_for(a, b, room_id, bob["user_id"], "m.room.message", {"msgtype": "m.text", "body": "hi"})
    status, body = await _signed(b, a, "PUT", "/_matrix/federation/v1/send/acl", {
        "origin": b.config.server_name, "origin_server_ts": 0, "edus": [], "pdus": [event.pdu]})
    assert status == 200 and "error" in body["pdus"][event.event_id]
    status, body = await _signed(b, a, "GET", f"/_matrix/federation/v1/state_ids/{room_id}?event_id={event.event_id}")
    assert status == 403


async def test_notary_serves_keys_it_knows(start_federating: StartFederating, https: aiohttp.ClientSession) -> None:
    a, b = await start_federating(), await start_federating()
    async with https.get(base_url(a) + f"/_matrix/key/v2/query/{b.config.server_name}") as resp:
        body = await resp.json()
    assert resp.status == 200
    (document,) = body["server_keys"]
    assert document["server_name"] == b.config.server_name
    assert set(document["signatures"]) == {a.config.server_name, b.config.server_name}
    async with https.post(base_url(a) + "/_matrix/key/v2/query",
                          json={"server_keys": {a.config.server_name: {}}}) as resp:
        own = await resp.json()
    assert own["server_keys"][0]["server_name"] == a.config.server_name
    async with https.post(base_url(a) + "/_matrix/key/v2/query", json={"server_keys": []}) as resp:
        assert resp.status == 400


@pytest.mark.parametrize("version", ["1", "3", "10", "12"])
async def test_join_rooms_of_every_event_format(
    start_federating: StartFederating, https: aiohttp.ClientSession, version: str
) -> None:
    a, b = await start_federating(), await start_federating()
    room_id, alice, bob = await _room(a, b, https, room_version=version)
    api_b = Api(https, b)
    status, sent = await api_b.call("PUT", f"/rooms/{room_id}/send/m.room.message/1", {"msgtype": "m.text", "body": "v"},
                                    token=bob["access_token"])
    assert status == 200, sent
    await wait_for_event(Api(https, a), alice["access_token"], room_id, lambda e: e["event_id"] == sent["event_id"])


async def test_make_join_needs_our_users_in_the_room_make_leave_does_not(
    start_federating: StartFederating, https: aiohttp.ClientSession
) -> None:
    a, b = await start_federating(), await start_federating()
    room_id, alice, bob = await _room(a, b, https)
    await Api(https, a).call("POST", f"/rooms/{room_id}/leave", {}, token=alice["access_token"])
    carol = f"@carol:{b.config.server_name}"
    status, body = await _signed(b, a, "GET", f"/_matrix/federation/v1/make_join/{room_id}/{carol}?ver=12")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await _signed(b, a, "GET", f"/_matrix/federation/v1/make_leave/{room_id}/{bob['user_id']}")
    assert status == 200 and body["event"]["content"] == {"membership": "leave"}
