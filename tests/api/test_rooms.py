"""Rooms on one server over real HTTP: create, membership, send, state, history, sync."""

from __future__ import annotations

import json

import asyncio

import pytest

from tests.api.helpers import Api
from tests.conftest import StartServer


@pytest.fixture
async def api(start_server: StartServer, http) -> Api:  # noqa: ANN001
    return Api(http, await start_server(enable_registration=True, enable_registration_without_verification=True))


async def users(api: Api, *names: str) -> list[str]:
    return [(await api.register(name))["access_token"] for name in names]


@pytest.mark.parametrize("version", [str(v) for v in range(1, 13)])
async def test_create_room_every_version(api: Api, version: str) -> None:
    (alice,) = await users(api, "alice")
    status, body = await api.call("POST", "/createRoom", {"room_version": version, "name": "Test", "topic": "T"},
                                  token=alice)
    assert status == 200, body
    room = body["room_id"]
    status, state = await api.call("GET", f"/rooms/{room}/state", token=alice)
    assert status == 200, state
    types = {e["type"] for e in state}
    assert {"m.room.create", "m.room.member", "m.room.power_levels", "m.room.join_rules",
            "m.room.history_visibility", "m.room.name", "m.room.topic"} <= types
    create = next(e for e in state if e["type"] == "m.room.create")
    assert create["content"]["room_version"] == version
    status, name = await api.call("GET", f"/rooms/{room}/state/m.room.name/", token=alice)
    assert name == {"name": "Test"}
    status, sent = await api.call("PUT", f"/rooms/{room}/send/m.room.message/t1", {"msgtype": "m.text", "body": "hi"},
                                  token=alice)
    assert status == 200 and sent["event_id"].startswith("$")


async def test_bad_create_room(api: Api) -> None:
    (alice,) = await users(api, "alice")
    for body, errcode in (({"room_version": "99"}, "M_UNSUPPORTED_ROOM_VERSION"),
                          ({"room_version": 10}, "M_BAD_JSON"),
                          ({"preset": "nope"}, "M_INVALID_PARAM"),
                          ({"invite": ["not-a-user"]}, "M_INVALID_PARAM"),
                          ({"name": 5}, "M_BAD_JSON"),
                          ({"initial_state": [{"type": "x"}]}, "M_BAD_JSON")):
        status, result = await api.call("POST", "/createRoom", body, token=alice)
        assert (status, result["errcode"]) == (400, errcode), body


@pytest.mark.parametrize("version", ["10", "12"])
async def test_failed_create_room_leaves_nothing(api: Api, version: str) -> None:
    """The room's first events, its alias and directory entry are one transaction."""
    (alice,) = await users(api, "alice")
    # Power levels given as strings: rejected by the authorization rules of rooms v10 and later.
    bad_levels = {"type": "m.room.power_levels", "content": {"users": {}, "ban": "50"}}
    for body, expected in [
        ({"room_alias_name": "garden", "visibility": "public", "initial_state": [bad_levels], "name": "Garden"},
         (403, "M_FORBIDDEN")),
        ({"room_alias_name": "garden", "topic": "x" * 70_000}, (413, "M_TOO_LARGE")),
    ]:
        status, result = await api.call("POST", "/createRoom", {**body, "room_version": version}, token=alice)
        assert (status, result["errcode"]) == expected, result
        assert (await api.call("GET", "/joined_rooms", token=alice))[1] == {"joined_rooms": []}
        assert (await api.call("GET", "/directory/room/%23garden:test.local"))[0] == 404
        assert (await api.call("GET", "/publicRooms"))[1]["chunk"] == []
    status, created = await api.call("POST", "/createRoom", {"room_alias_name": "garden", "room_version": version},
                                     token=alice)
    assert status == 200, created
    assert (await api.call("GET", "/directory/room/%23garden:test.local"))[1]["room_id"] == created["room_id"]


async def test_membership_lifecycle(api: Api) -> None:
    alice, bob, carol = await users(api, "alice", "bob", "carol")
    _, created = await api.call("POST", "/createRoom", {"preset": "private_chat", "invite": ["@bob:test.local"]},
                                token=alice)
    room = created["room_id"]
    status, body = await api.call("POST", f"/rooms/{room}/join", {}, token=carol)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("POST", f"/join/{room}", {}, token=bob)
    assert (status, body) == (200, {"room_id": room})
    _, joined = await api.call("GET", "/joined_rooms", token=bob)
    assert joined == {"joined_rooms": [room]}
    status, _ = await api.call("POST", f"/rooms/{room}/invite", {"user_id": "@carol:test.local"}, token=alice)
    assert status == 200
    status, _ = await api.call("POST", f"/rooms/{room}/join", {}, token=carol)
    assert status == 200
    _, members = await api.call("GET", f"/rooms/{room}/joined_members", token=alice)
    assert set(members["joined"]) == {"@alice:test.local", "@bob:test.local", "@carol:test.local"}
    assert members["joined"]["@bob:test.local"]["display_name"] == "bob"
    status, body = await api.call("POST", f"/rooms/{room}/kick", {"user_id": "@alice:test.local"}, token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert (await api.call("POST", f"/rooms/{room}/kick", {"user_id": "@carol:test.local", "reason": "bye"},
                           token=alice))[0] == 200
    assert (await api.call("POST", f"/rooms/{room}/ban", {"user_id": "@carol:test.local"}, token=alice))[0] == 200
    status, body = await api.call("POST", f"/rooms/{room}/join", {}, token=carol)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert (await api.call("POST", f"/rooms/{room}/unban", {"user_id": "@carol:test.local"}, token=alice))[0] == 200
    assert (await api.call("POST", f"/rooms/{room}/leave", {}, token=bob))[0] == 200
    _, joined = await api.call("GET", "/joined_rooms", token=bob)
    assert joined == {"joined_rooms": []}
    status, body = await api.call("POST", f"/rooms/{room}/invite", {}, token=alice)
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    assert (await api.call("POST", f"/rooms/{room}/forget", {}, token=bob))[0] == 200
    status, body = await api.call("POST", f"/rooms/{room}/forget", {}, token=alice)
    assert status == 400


async def test_sending_rules_and_transaction_ids(api: Api) -> None:
    alice, bob = await users(api, "alice", "bob")
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room = created["room_id"]
    status, body = await api.call("PUT", f"/rooms/{room}/send/m.room.message/1", {"body": "x"}, token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    _, first = await api.call("PUT", f"/rooms/{room}/send/m.room.message/same", {"body": "x"}, token=bob)
    _, again = await api.call("PUT", f"/rooms/{room}/send/m.room.message/same", {"body": "x"}, token=bob)
    assert first == again
    status, body = await api.call("PUT", f"/rooms/{room}/state/m.room.topic", {"topic": "t"}, token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("PUT", f"/rooms/{room}/send/m.room.message/big", {"body": "x" * 70000}, token=bob)
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
    status, body = await api.call("PUT", "/rooms/!nowhere:test.local/send/m.room.message/1", {"body": "x"}, token=bob)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await api.call("PUT", f"/rooms/{room}/send/m.room.message/2", raw=b"nope", token=bob)
    assert (status, body["errcode"]) == (400, "M_NOT_JSON")
    status, body = await api.call("GET", f"/rooms/{room}/state/m.room.topic/", token=bob)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_history_and_events(api: Api) -> None:
    alice, bob = await users(api, "alice", "bob")
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room = created["room_id"]
    ids = []
    for i in range(15):
        _, sent = await api.call("PUT", f"/rooms/{room}/send/m.room.message/m{i}", {"body": str(i)}, token=alice)
        ids.append(sent["event_id"])
    status, page = await api.call("GET", f"/rooms/{room}/messages", token=alice, query={"dir": "b", "limit": "5"})
    assert [e["content"]["body"] for e in page["chunk"]] == ["14", "13", "12", "11", "10"]
    assert page["chunk"][0]["unsigned"]["transaction_id"] == "m14"
    _, older = await api.call("GET", f"/rooms/{room}/messages", token=alice,
                              query={"dir": "b", "limit": "5", "from": page["end"]})
    assert [e["content"]["body"] for e in older["chunk"]] == ["9", "8", "7", "6", "5"]
    _, forward = await api.call("GET", f"/rooms/{room}/messages", token=alice,
                                query={"dir": "f", "limit": "3", "from": older["end"]})
    assert [e["content"]["body"] for e in forward["chunk"]] == ["5", "6", "7"]
    status, body = await api.call("GET", f"/rooms/{room}/messages", token=alice, query={"from": "garbage"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await api.call("GET", f"/rooms/{room}/messages", token=alice, query={"dir": "x"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, event = await api.call("GET", f"/rooms/{room}/event/{ids[3]}", token=alice)
    assert (status, event["content"]) == (200, {"body": "3"})
    status, body = await api.call("GET", f"/rooms/{room}/event/{ids[3]}", token=bob)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await api.call("GET", f"/rooms/{room}/messages", token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_sync_initial_incremental_and_long_poll(api: Api) -> None:
    alice, bob = await users(api, "alice", "bob")
    _, created = await api.call("POST", "/createRoom", {"preset": "private_chat", "name": "Chat",
                                                        "invite": ["@bob:test.local"]}, token=alice)
    room = created["room_id"]
    status, first = await api.call("GET", "/sync", token=bob)
    assert status == 200
    invite = first["rooms"]["invite"][room]["invite_state"]["events"]
    assert {"m.room.name", "m.room.member", "m.room.create", "m.room.join_rules"} <= {e["type"] for e in invite}
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    _, after_join = await api.call("GET", "/sync", token=bob, query={"since": first["next_batch"]})
    joined = after_join["rooms"]["join"][room]
    state_types = {e["type"] for e in joined["state"]["events"]} | {e["type"] for e in joined["timeline"]["events"]}
    assert {"m.room.create", "m.room.power_levels", "m.room.name"} <= state_types
    assert joined["summary"]["m.joined_member_count"] == 2

    async def send_later() -> None:
        await asyncio.sleep(0.3)
        await api.call("PUT", f"/rooms/{room}/send/m.room.message/lp", {"body": "wake up"}, token=alice)

    sender = asyncio.create_task(send_later())
    started = asyncio.get_running_loop().time()
    _, woken = await api.call("GET", "/sync", token=bob, query={"since": after_join["next_batch"], "timeout": "10000"})
    await sender
    assert asyncio.get_running_loop().time() - started < 5
    timeline = woken["rooms"]["join"][room]["timeline"]
    assert [e["content"].get("body") for e in timeline["events"]] == ["wake up"]
    assert timeline["limited"] is False and woken["rooms"]["join"][room]["state"]["events"] == []
    _, quiet = await api.call("GET", "/sync", token=bob, query={"since": woken["next_batch"], "timeout": "100"})
    assert quiet["rooms"]["join"] == {} and quiet["next_batch"] == woken["next_batch"]

    for i in range(12):
        await api.call("PUT", f"/rooms/{room}/send/m.room.message/burst{i}", {"body": f"b{i}"}, token=alice)
    await api.call("PUT", f"/rooms/{room}/state/m.room.topic", {"topic": "new topic"}, token=alice)
    for i in range(12):
        await api.call("PUT", f"/rooms/{room}/send/m.room.message/more{i}", {"body": f"c{i}"}, token=alice)
    _, burst = await api.call("GET", "/sync", token=bob, query={"since": woken["next_batch"]})
    timeline = burst["rooms"]["join"][room]["timeline"]
    assert timeline["limited"] is True and len(timeline["events"]) == 10
    assert [e["type"] for e in burst["rooms"]["join"][room]["state"]["events"]] == ["m.room.topic"]
    _, older = await api.call("GET", f"/rooms/{room}/messages", token=bob,
                              query={"dir": "b", "from": timeline["prev_batch"], "limit": "3"})
    assert [e["content"].get("body", e["type"]) for e in older["chunk"]] == ["c1", "c0", "m.room.topic"]


async def test_sync_filters_and_bad_input(api: Api) -> None:
    (alice,) = await users(api, "alice")
    status, created = await api.call("POST", "/user/@alice:test.local/filter",
                                     {"room": {"timeline": {"limit": 2}}}, token=alice)
    assert status == 200
    assert (await api.call("GET", f"/user/@alice:test.local/filter/{created['filter_id']}", token=alice))[1] == {
        "room": {"timeline": {"limit": 2}}}
    _, made = await api.call("POST", "/createRoom", {}, token=alice)
    _, whole = await api.call("GET", "/sync", token=alice)
    # A room's whole history in an initial sync: prev_batch pages back through it again (as Synapse's).
    timeline = whole["rooms"]["join"][made["room_id"]]["timeline"]
    assert timeline["limited"] is False and timeline["events"][0]["type"] == "m.room.create"
    _, again = await api.call("GET", f"/rooms/{made['room_id']}/messages", token=alice,
                              query={"dir": "b", "from": timeline["prev_batch"]})
    assert [e["event_id"] for e in again["chunk"]] == [e["event_id"] for e in reversed(timeline["events"])]
    _, past_the_start = await api.call("GET", f"/rooms/{made['room_id']}/messages", token=alice,
                                       query={"dir": "b", "from": again["end"]})
    assert past_the_start["chunk"] == [] and "end" not in past_the_start
    _, synced = await api.call("GET", "/sync", token=alice, query={"filter": created["filter_id"]})
    assert len(synced["rooms"]["join"][made["room_id"]]["timeline"]["events"]) == 2
    _, inline = await api.call("GET", "/sync", token=alice, query={"filter": '{"room":{"timeline":{"limit":1}}}'})
    assert len(inline["rooms"]["join"][made["room_id"]]["timeline"]["events"]) == 1
    # A limit of 0: no timeline, the state in full; type filters count before the limit.
    _, empty = await api.call("GET", "/sync", token=alice, query={"filter": '{"room":{"timeline":{"limit":0}}}'})
    room_sync = empty["rooms"]["join"][made["room_id"]]
    assert room_sync["timeline"]["events"] == [] and room_sync["timeline"]["limited"] is True
    assert any(e["type"] == "m.room.create" for e in room_sync["state"]["events"])
    await api.call("PUT", f"/rooms/{made['room_id']}/send/m.room.message/f1", {"msgtype": "m.text", "body": "x"},
                   token=alice)
    _, typed = await api.call("GET", "/sync", token=alice,
                              query={"filter": '{"room":{"timeline":{"limit":1,"types":["m.room.create"]}}}'})
    assert [e["type"] for e in typed["rooms"]["join"][made["room_id"]]["timeline"]["events"]] == ["m.room.create"]
    for query, errcode in (({"since": "bogus"}, "M_INVALID_PARAM"), ({"timeout": "-1"}, "M_INVALID_PARAM"),
                           ({"filter": "{nope"}, "M_BAD_JSON"), ({"filter": "999"}, "M_INVALID_PARAM"),
                           ({"filter": '{"room":{"timeline":{"limit":-1}}}'}, "M_BAD_JSON"),
                           ({"filter": '{"room":{"state":{"lazy_load_members":"true"}}}'}, "M_BAD_JSON"),
                           ({"filter": '{"room":{"state":{"include_redundant_members":1}}}'}, "M_BAD_JSON")):
        status, body = await api.call("GET", "/sync", token=alice, query=query)
        assert (status, body["errcode"]) == (400, errcode), query
    status, body = await api.call("POST", "/user/@bob:test.local/filter", {}, token=alice)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_deactivation_leaves_rooms(api: Api) -> None:
    alice, bob = await users(api, "alice", "bob")
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room = created["room_id"]
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    _, first = await api.call("POST", "/account/deactivate", {}, token=bob)
    status, _ = await api.call("POST", "/account/deactivate", {"auth": {
        "type": "m.login.password", "password": "password", "session": first["session"]}}, token=bob)
    assert status == 200
    _, members = await api.call("GET", f"/rooms/{room}/joined_members", token=alice)
    assert set(members["joined"]) == {"@alice:test.local"}


async def test_profile_changes_reach_rooms(api: Api) -> None:
    alice, bob = await users(api, "alice", "bob")
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room = created["room_id"]
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    await api.call("PUT", "/profile/@bob:test.local/displayname", {"displayname": "Bobby"}, token=bob)
    _, members = await api.call("GET", f"/rooms/{room}/joined_members", token=alice)
    assert members["joined"]["@bob:test.local"]["display_name"] == "Bobby"
    _, member = await api.call("GET", f"/rooms/{room}/state/m.room.member/@bob:test.local", token=alice)
    assert member == {"membership": "join", "displayname": "Bobby"}


async def test_members_filters_context_and_timestamps(api: Api) -> None:
    alice, bob, carol = await users(api, "alice", "bob", "carol")
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room = created["room_id"]
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    _, before_carol = await api.call("GET", "/sync", token=alice)
    ids = []
    for i in range(6):
        _, sent = await api.call("PUT", f"/rooms/{room}/send/m.room.message/c{i}", {"body": str(i)}, token=alice)
        ids.append(sent["event_id"])
    await api.call("POST", f"/rooms/{room}/invite", {"user_id": "@carol:test.local"}, token=alice)
    await api.call("POST", f"/rooms/{room}/leave", {}, token=bob)

    async def member_ids(**query: str) -> set[str]:
        status, body = await api.call("GET", f"/rooms/{room}/members", token=alice, query=query)
        assert status == 200, body
        return {e["state_key"] for e in body["chunk"]}

    assert await member_ids() == {"@alice:test.local", "@bob:test.local", "@carol:test.local"}
    assert await member_ids(membership="join") == {"@alice:test.local"}
    assert await member_ids(not_membership="leave") == {"@alice:test.local", "@carol:test.local"}
    assert await member_ids(at=before_carol["next_batch"]) == {"@alice:test.local", "@bob:test.local"}
    status, body = await api.call("GET", f"/rooms/{room}/members", token=alice, query={"membership": "dancing"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")

    status, context = await api.call("GET", f"/rooms/{room}/context/{ids[3]}", token=alice, query={"limit": "4"})
    assert status == 200
    assert context["event"]["content"] == {"body": "3"}
    assert [e["content"]["body"] for e in context["events_before"]] == ["2", "1"]
    assert [e["content"]["body"] for e in context["events_after"]] == ["4", "5"]
    assert any(e["type"] == "m.room.create" for e in context["state"])
    # With a filter: only the events it allows around the event, only their senders' memberships.
    await api.call("PUT", f"/rooms/{room}/send/m.room.message/c6", {"body": "6"}, token=alice)
    lazy = json.dumps({"lazy_load_members": True, "not_types": ["m.room.member"]})
    status, context = await api.call("GET", f"/rooms/{room}/context/{ids[5]}", token=alice,
                                     query={"limit": "4", "filter": lazy})
    assert status == 200, context
    assert [e["content"]["body"] for e in context["events_before"]] == ["4", "3"]
    assert [e["content"]["body"] for e in context["events_after"]] == ["6"]
    assert [(e["type"], e["state_key"]) for e in context["state"]] == [("m.room.member", "@alice:test.local")]
    status, body = await api.call("GET", f"/rooms/{room}/context/{ids[5]}", token=alice, query={"filter": "{"})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await api.call("GET", f"/rooms/{room}/context/$missing", token=alice)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")

    _, event = await api.call("GET", f"/rooms/{room}/event/{ids[2]}", token=alice)
    found = await api.call("GET", f"/_matrix/client/v1/rooms/{room}/timestamp_to_event", token=alice,
                           query={"ts": str(event["origin_server_ts"]), "dir": "f"})
    assert found[0] == 200 and found[1]["origin_server_ts"] >= event["origin_server_ts"]
    status, body = await api.call("GET", f"/_matrix/client/v1/rooms/{room}/timestamp_to_event", token=alice,
                                  query={"ts": "1", "dir": "b"})
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await api.call("GET", f"/_matrix/client/v1/rooms/{room}/timestamp_to_event", token=alice,
                                  query={"ts": "x", "dir": "f"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


@pytest.mark.parametrize(
    ("visibility", "sees_before_invite", "sees_between_invite_and_join"),
    [("shared", True, True), ("invited", False, True), ("joined", False, False), ("world_readable", True, True)],
)
async def test_history_visibility(
    api: Api, visibility: str, sees_before_invite: bool, sees_between_invite_and_join: bool
) -> None:
    alice, bob = await users(api, "alice", "bob")
    _, created = await api.call("POST", "/createRoom", {"preset": "private_chat", "initial_state": [
        {"type": "m.room.history_visibility", "content": {"history_visibility": visibility}}]}, token=alice)
    room = created["room_id"]
    await api.call("PUT", f"/rooms/{room}/send/m.room.message/1", {"body": "before invite"}, token=alice)
    await api.call("POST", f"/rooms/{room}/invite", {"user_id": "@bob:test.local"}, token=alice)
    await api.call("PUT", f"/rooms/{room}/send/m.room.message/2", {"body": "after invite"}, token=alice)
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    await api.call("PUT", f"/rooms/{room}/send/m.room.message/3", {"body": "after join"}, token=alice)
    _, page = await api.call("GET", f"/rooms/{room}/messages", token=bob, query={"limit": "50"})
    bodies = {e["content"].get("body") for e in page["chunk"] if e["type"] == "m.room.message"}
    assert ("before invite" in bodies) == sees_before_invite
    assert ("after invite" in bodies) == sees_between_invite_and_join
    assert "after join" in bodies


async def test_visibility_changes_are_seen_under_the_more_open_setting(api: Api) -> None:
    alice, bob = await users(api, "alice", "bob")
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room = created["room_id"]
    for visibility, body in (("joined", "1"), ("invited", "2"), ("shared", "3")):
        await api.call("PUT", f"/rooms/{room}/state/m.room.history_visibility", {"history_visibility": visibility},
                       token=alice)
        await api.call("POST", f"/rooms/{room}/send/m.room.message", {"body": body}, token=alice)
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    _, synced = await api.call("GET", "/sync", token=bob)
    seen = [e["content"].get("history_visibility", e["content"].get("body", e["type"]))
            for e in synced["rooms"]["join"][room]["timeline"]["events"]]
    # shared -> joined is seen (under shared), joined -> invited is not (bob was not invited), the
    # messages under joined and invited are not; invited -> shared is.
    assert seen[-4:] == ["joined", "shared", "3", "m.room.member"], seen


async def test_room_alias_on_creation_and_join_by_alias(api: Api) -> None:
    alice, bob = await users(api, "alice", "bob")
    status, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "room_alias_name": "lobby"},
                                     token=alice)
    assert status == 200
    _, canonical = await api.call("GET", f"/rooms/{created['room_id']}/state/m.room.canonical_alias/", token=alice)
    assert canonical == {"alias": "#lobby:test.local"}
    status, body = await api.call("POST", "/join/%23lobby:test.local", {}, token=bob)
    assert (status, body) == (200, {"room_id": created["room_id"]})
    status, body = await api.call("POST", "/createRoom", {"room_alias_name": "lobby"}, token=bob)
    assert (status, body["errcode"]) == (400, "M_ROOM_IN_USE")
    status, body = await api.call("POST", "/join/%23nowhere:test.local", {}, token=bob)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await api.call("POST", "/createRoom", {"room_alias_name": "bad:name"}, token=bob)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


async def test_message_rate_limit(start_server: StartServer, http) -> None:  # noqa: ANN001
    from homeserver.config import RateLimit

    api = Api(http, await start_server(enable_registration=True, enable_registration_without_verification=True,
                                       rc_message=RateLimit(0.001, 3)))
    (alice,) = await users(api, "alice")
    _, created = await api.call("POST", "/createRoom", {}, token=alice)
    statuses = []
    for i in range(5):
        status, body = await api.call("PUT", f"/rooms/{created['room_id']}/send/m.room.message/{i}", {"body": "x"},
                                      token=alice)
        statuses.append(status)
    assert statuses == [200, 200, 200, 429, 429]
    assert body["errcode"] == "M_LIMIT_EXCEEDED" and body["retry_after_ms"] > 0


async def test_state_as_event_post_send_and_join_content(api: Api) -> None:
    alice, bob = await users(api, "alice", "bob")
    status, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "name": "N"}, token=alice)
    room = created["room_id"]
    status, event = await api.call("GET", f"/rooms/{room}/state/m.room.name/", token=alice, query={"format": "event"})
    assert status == 200 and event["content"] == {"name": "N"} and event["type"] == "m.room.name" and "sender" in event
    status, body = await api.call("GET", f"/rooms/{room}/state/m.room.name/", token=alice, query={"format": "x"})
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    first = await api.call("POST", f"/rooms/{room}/send/m.room.message", {"msgtype": "m.text", "body": "a"}, token=alice)
    second = await api.call("POST", f"/rooms/{room}/send/m.room.message", {"msgtype": "m.text", "body": "a"},
                            token=alice)
    assert first[0] == second[0] == 200 and first[1]["event_id"] != second[1]["event_id"]
    status, _ = await api.call("POST", f"/join/{room}", {"foo": "bar", "reason": "hi"}, token=bob)
    assert status == 200
    status, member = await api.call("GET", f"/rooms/{room}/state/m.room.member/@bob:test.local", token=bob)
    assert member["foo"] == "bar" and member["reason"] == "hi" and member["membership"] == "join", member
    status, body = await api.call("POST", f"/join/{room}", {"reason": 5}, token=bob)
    assert status == 400 and body["errcode"] == "M_BAD_JSON"


async def test_repeated_state_and_join_make_no_new_event(api: Api) -> None:
    (alice,) = await users(api, "alice")
    status, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room = created["room_id"]
    first = await api.call("PUT", f"/rooms/{room}/state/m.room.topic/", {"topic": "t"}, token=alice)
    again = await api.call("PUT", f"/rooms/{room}/state/m.room.topic/", {"topic": "t"}, token=alice)
    changed = await api.call("PUT", f"/rooms/{room}/state/m.room.topic/", {"topic": "u"}, token=alice)
    assert first[1]["event_id"] == again[1]["event_id"] != changed[1]["event_id"]
    _, before = await api.call("GET", f"/rooms/{room}/messages", token=alice, query={"dir": "b", "limit": "50"})
    status, _ = await api.call("POST", f"/join/{room}", {}, token=alice)
    assert status == 200
    _, after = await api.call("GET", f"/rooms/{room}/messages", token=alice, query={"dir": "b", "limit": "50"})
    assert len(after["chunk"]) == len(before["chunk"])


async def test_kick_unban_and_redaction_checks_and_alias_cleanup(api: Api) -> None:
    alice, bob = await users(api, "alice", "bob")
    status, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "room_alias_name": "gone"},
                                     token=alice)
    room = created["room_id"]
    status, body = await api.call("POST", f"/rooms/{room}/kick", {"user_id": "@bob:test.local"}, token=alice)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")  # not in the room
    status, body = await api.call("POST", f"/rooms/{room}/unban", {"user_id": "@bob:test.local"}, token=alice)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")  # not banned
    await api.call("POST", f"/rooms/{room}/ban", {"user_id": "@bob:test.local"}, token=alice)
    status, body = await api.call("POST", f"/rooms/{room}/kick", {"user_id": "@bob:test.local"}, token=alice)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")  # banned: unban instead
    status, _ = await api.call("POST", f"/rooms/{room}/unban", {"user_id": "@bob:test.local"}, token=alice)
    assert status == 200

    status, other = await api.call("POST", "/createRoom", {}, token=alice)
    status, sent = await api.call("PUT", f"/rooms/{other['room_id']}/send/m.room.message/1",
                                  {"msgtype": "m.text", "body": "x"}, token=alice)
    status, body = await api.call("PUT", f"/rooms/{room}/redact/{sent['event_id']}/r1", {}, token=alice)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")

    status, _ = await api.call("DELETE", "/directory/room/%23gone:test.local", token=alice)
    assert status == 200
    status, canonical = await api.call("GET", f"/rooms/{room}/state/m.room.canonical_alias/", token=alice)
    assert status == 200 and "alias" not in canonical, canonical


async def test_floats_and_huge_integers_in_content_are_bad_json(api: Api) -> None:
    (alice,) = await users(api, "alice")
    status, created = await api.call("POST", "/createRoom", {}, token=alice)
    room = created["room_id"]
    for raw in (b'{"n": 1.5}', b'{"n": 9007199254740992}'):
        status, body = await api.call("PUT", f"/rooms/{room}/send/m.test/{raw[-4:].hex()}", raw=raw, token=alice)
        assert (status, body["errcode"]) == (400, "M_BAD_JSON"), raw
    for bad in ({"room": {"timeline": {"rooms": ["not_a_room_id"]}}},
                {"room": {"timeline": {"senders": ["not_a_user"]}}}):
        status, body = await api.call("POST", "/user/@alice:test.local/filter", bad, token=alice)
        assert (status, body["errcode"]) == (400, "M_BAD_JSON"), bad
    status, body = await api.call("GET", "/events", token=alice, query={"limit": "hello"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    for method, path in (("GET", "/pushrules/global"), ("PUT", "/pushrules/global"), ("GET", "/pushrules/global/room"),
                         ("PUT", "/pushrules/global/override/")):
        status, body = await api.call(method, path, {"actions": []} if method == "PUT" else None, token=alice)
        assert status == 400, (method, path, body)
