"""Knocking, restricted joins through another room's membership, and room upgrades."""

from __future__ import annotations

from tests.api.helpers import Api
from tests.conftest import StartServer

OPEN = {"enable_registration": True, "enable_registration_without_verification": True}


async def test_knock(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    _, created = await api.call("POST", "/createRoom", {"name": "Knock here", "initial_state": [
        {"type": "m.room.join_rules", "content": {"join_rule": "knock"}}]}, token=alice)
    room = created["room_id"]
    status, body = await api.call("POST", f"/knock/{room}", {"reason": "let me in"}, token=bob)
    assert (status, body) == (200, {"room_id": room})
    _, synced = await api.call("GET", "/sync", token=bob)
    knock_state = synced["rooms"]["knock"][room]["knock_state"]["events"]
    assert {"m.room.name", "m.room.member"} <= {e["type"] for e in knock_state}
    await api.call("POST", f"/rooms/{room}/invite", {"user_id": "@bob:test.local"}, token=alice)
    assert (await api.call("POST", f"/rooms/{room}/join", {}, token=bob))[0] == 200
    _, public = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    status, body = await api.call("POST", f"/knock/{public['room_id']}", {}, token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_restricted_join(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    carol = (await api.register("carol"))["access_token"]
    _, space = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    await api.call("POST", f"/rooms/{space['room_id']}/join", {}, token=bob)
    _, restricted = await api.call("POST", "/createRoom", {"initial_state": [{"type": "m.room.join_rules", "content": {
        "join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space["room_id"]}]}}]},
                                   token=alice)
    room = restricted["room_id"]
    assert (await api.call("POST", f"/rooms/{room}/join", {}, token=bob))[0] == 200
    _, member = await api.call("GET", f"/rooms/{room}/state/m.room.member/@bob:test.local", token=alice)
    assert member["join_authorised_via_users_server"] == "@alice:test.local"
    status, body = await api.call("POST", f"/rooms/{room}/join", {}, token=carol)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_upgrade(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "room_version": "10", "name": "Old",
                                                        "topic": "Topic"}, token=alice)
    old = created["room_id"]
    await api.call("POST", f"/rooms/{old}/join", {}, token=bob)
    status, body = await api.call("POST", f"/rooms/{old}/upgrade", {"new_version": "12"}, token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("POST", f"/rooms/{old}/upgrade", {"new_version": "99"}, token=alice)
    assert (status, body["errcode"]) == (400, "M_UNSUPPORTED_ROOM_VERSION")
    status, body = await api.call("POST", f"/rooms/{old}/upgrade", {"new_version": "12"}, token=alice)
    assert status == 200
    new = body["replacement_room"]
    _, tombstone = await api.call("GET", f"/rooms/{old}/state/m.room.tombstone/", token=alice)
    assert tombstone["replacement_room"] == new
    _, create = await api.call("GET", f"/rooms/{new}/state/m.room.create/", token=alice)
    assert create["predecessor"] == {"room_id": old} and create["room_version"] == "12"
    assert (await api.call("GET", f"/rooms/{new}/state/m.room.name/", token=alice))[1] == {"name": "Old"}
    assert (await api.call("GET", f"/rooms/{new}/state/m.room.topic/", token=alice))[1] == {"topic": "Topic"}
    status, body = await api.call("PUT", f"/rooms/{old}/send/m.room.message/x", {"body": "still here?"}, token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert (await api.call("POST", f"/rooms/{new}/join", {}, token=bob))[0] == 200


async def test_upgrade_to_a_version_with_server_room_ids_names_the_tombstone(
    start_server: StartServer, http  # noqa: ANN001
) -> None:
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "room_version": "10"}, token=alice)
    old = created["room_id"]
    status, body = await api.call("POST", f"/rooms/{old}/upgrade", {"new_version": "11"}, token=alice)
    assert status == 200
    new = body["replacement_room"]
    _, tombstone = await api.call("GET", f"/rooms/{old}/state/m.room.tombstone/", token=alice,
                                  query={"format": "event"})
    _, create = await api.call("GET", f"/rooms/{new}/state/m.room.create/", token=alice)
    assert create["predecessor"] == {"room_id": old, "event_id": tombstone["event_id"]}
    _, guest = await api.call("GET", f"/rooms/{new}/state/m.room.guest_access/", token=alice)
    assert guest == {"guest_access": "can_join"}


async def test_upgrade_moves_aliases_publication_and_bans(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    await api.register("mallory")
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "room_version": "10",
                                                        "room_alias_name": "lobby", "visibility": "public"},
                                token=alice)
    old = created["room_id"]
    await api.call("POST", f"/rooms/{old}/ban", {"user_id": "@mallory:test.local", "reason": "spam"}, token=alice)
    status, body = await api.call("POST", f"/rooms/{old}/upgrade", {"new_version": "11"}, token=alice)
    assert status == 200, body
    new = body["replacement_room"]
    _, found = await api.call("GET", "/directory/room/%23lobby:test.local", token=alice)
    assert found["room_id"] == new
    assert (await api.call("GET", f"/directory/list/room/{new}", token=alice))[1] == {"visibility": "public"}
    assert (await api.call("GET", f"/directory/list/room/{old}", token=alice))[1] == {"visibility": "private"}
    _, ban = await api.call("GET", f"/rooms/{new}/state/m.room.member/@mallory:test.local", token=alice)
    assert ban == {"membership": "ban", "reason": "spam"}
    _, alias = await api.call("GET", f"/rooms/{new}/state/m.room.canonical_alias/", token=alice)
    assert alias["alias"] == "#lobby:test.local"


async def test_upgrade_carries_tags_and_direct_rooms(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "room_version": "10"}, token=alice)
    old = created["room_id"]
    await api.call("POST", f"/rooms/{old}/join", {}, token=bob)
    await api.call("PUT", f"/user/@bob:test.local/rooms/{old}/tags/u.work", {"order": 0.5}, token=bob)
    await api.call("PUT", "/user/@alice:test.local/account_data/m.direct", {"@bob:test.local": [old]}, token=alice)
    await api.call("PUT", "/user/@bob:test.local/account_data/m.direct", {"@alice:test.local": [old, "!x:y"]},
                   token=bob)
    status, body = await api.call("POST", f"/rooms/{old}/upgrade", {"new_version": "11"}, token=alice)
    assert status == 200, body
    new = body["replacement_room"]
    # The upgrader's direct room moves at once; bob's tags and direct room when he follows.
    _, direct = await api.call("GET", "/user/@alice:test.local/account_data/m.direct", token=alice)
    assert direct == {"@bob:test.local": [old, new]}
    _, tags = await api.call("GET", f"/user/@bob:test.local/rooms/{new}/tags", token=bob)
    assert tags == {"tags": {}}
    await api.call("POST", f"/rooms/{new}/join", {}, token=bob)
    _, tags = await api.call("GET", f"/user/@bob:test.local/rooms/{new}/tags", token=bob)
    assert tags == {"tags": {"u.work": {"order": 0.5}}}
    _, direct = await api.call("GET", "/user/@bob:test.local/account_data/m.direct", token=bob)
    assert direct == {"@alice:test.local": [old, "!x:y", new]}
