"""Presence, ignored users, lazy-loaded members and room summaries in sync."""

from __future__ import annotations

import json

from tests.api.helpers import Api
from tests.conftest import StartServer

OPEN = {"enable_registration": True, "enable_registration_without_verification": True}


async def setup(api: Api, *names: str) -> tuple[str, list[str]]:
    tokens = [(await api.register(n))["access_token"] for n in names]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=tokens[0])
    for token in tokens[1:]:
        await api.call("POST", f"/rooms/{created['room_id']}/join", {}, token=token)
    return created["room_id"], tokens


async def test_presence(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    _room, (alice, bob, carol) = await setup(api, "alice", "bob", "carol")
    loner = (await api.register("loner"))["access_token"]
    _, start = await api.call("GET", "/sync", token=bob)
    status, _ = await api.call("PUT", "/presence/@alice:test.local/status",
                               {"presence": "unavailable", "status_msg": "lunch"}, token=alice)
    assert status == 200
    status, body = await api.call("GET", "/presence/@alice:test.local/status", token=bob)
    assert body["presence"] == "unavailable" and body["status_msg"] == "lunch"
    _, synced = await api.call("GET", "/sync", token=bob, query={"since": start["next_batch"], "timeout": "1000"})
    alice_presence = [e for e in synced["presence"]["events"] if e["sender"] == "@alice:test.local"]
    assert alice_presence and alice_presence[-1]["content"]["status_msg"] == "lunch"
    # Alice's own syncs (set_presence=online by default) do not override the unavailable she chose.
    await api.call("GET", "/sync", token=alice)
    status, body = await api.call("GET", "/presence/@alice:test.local/status", token=bob)
    assert body["presence"] == "unavailable"
    status, body = await api.call("GET", "/presence/@alice:test.local/status", token=loner)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("PUT", "/presence/@alice:test.local/status", {"presence": "away"}, token=alice)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await api.call("PUT", "/presence/@bob:test.local/status", {"presence": "online"}, token=alice)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("GET", "/sync", token=carol, query={"set_presence": "sleepy"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


async def test_presence_switched_off(start_server: StartServer, http) -> None:  # noqa: ANN001
    from homeserver.config import PresenceConfig

    api = Api(http, await start_server(**OPEN, presence=PresenceConfig(enabled=False)))
    _room, (alice, bob) = await setup(api, "alice", "bob")
    await api.call("PUT", "/presence/@alice:test.local/status", {"presence": "online", "status_msg": "hi"}, token=alice)
    _, body = await api.call("GET", "/presence/@alice:test.local/status", token=bob)
    assert body == {"presence": "offline"}
    _, synced = await api.call("GET", "/sync", token=bob)
    assert synced["presence"]["events"] == []


async def test_ignored_users(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    room, (alice, bob) = await setup(api, "alice", "bob")
    await api.call("PUT", "/user/@alice:test.local/account_data/m.ignored_user_list",
                   {"ignored_users": {"@bob:test.local": {}}}, token=alice)
    await api.call("PUT", f"/rooms/{room}/send/m.room.message/1", {"body": "from bob"}, token=bob)
    await api.call("PUT", f"/rooms/{room}/send/m.room.message/2", {"body": "from alice"}, token=alice)
    _, page = await api.call("GET", f"/rooms/{room}/messages", token=alice)
    bodies = [e["content"].get("body") for e in page["chunk"] if e["type"] == "m.room.message"]
    assert bodies == ["from alice"]
    _, synced = await api.call("GET", "/sync", token=alice)
    timeline = synced["rooms"]["join"][room]["timeline"]["events"]
    assert "from bob" not in [e["content"].get("body") for e in timeline]


async def test_lazy_loading_and_heroes(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    room, tokens = await setup(api, "alice", "bob", "carol", "dave", "erin", "fred", "gina")
    for i in range(12):
        await api.call("PUT", f"/rooms/{room}/send/m.room.message/{i}", {"body": str(i)}, token=tokens[1])
    lazy = '{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":5}}}'
    _, synced = await api.call("GET", "/sync", token=tokens[0], query={"filter": lazy})
    joined = synced["rooms"]["join"][room]
    members = {e["state_key"] for e in joined["state"]["events"] if e["type"] == "m.room.member"}
    assert members == {"@alice:test.local", "@bob:test.local"}
    summary = joined["summary"]
    assert summary["m.joined_member_count"] == 7
    assert summary["m.heroes"] == ["@bob:test.local", "@carol:test.local", "@dave:test.local",
                                   "@erin:test.local", "@fred:test.local"]
    _, full = await api.call("GET", "/sync", token=tokens[0], query={"filter": '{"room":{"timeline":{"limit":5}}}'})
    assert len([e for e in full["rooms"]["join"][room]["state"]["events"] if e["type"] == "m.room.member"]) == 7
    status, body = await api.call("GET", "/sync", token=tokens[0],
                                  query={"filter": '{"room":{"state":{"lazy_load_members":"yes"}}}'})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_filters(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    room, (alice, bob) = await setup(api, "alice", "bob")
    _, other = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    await api.call("PUT", f"/rooms/{room}/send/m.room.message/1", {"body": "text"}, token=bob)
    await api.call("PUT", f"/rooms/{room}/send/m.reaction/2", {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": "$x", "key": "k"}}, token=alice)
    await api.call("PUT", "/user/@alice:test.local/account_data/m.direct", {}, token=alice)
    await api.call("PUT", "/user/@alice:test.local/account_data/com.example.x", {}, token=alice)
    definition = {
        "room": {"rooms": [room], "timeline": {"types": ["m.room.*"], "not_senders": ["@bob:test.local"]},
                 "state": {"types": ["m.room.create", "m.room.name"]}},
        "account_data": {"types": ["m.direct"]},
    }
    import json

    _, synced = await api.call("GET", "/sync", token=alice, query={"filter": json.dumps(definition)})
    assert set(synced["rooms"]["join"]) == {room}
    timeline = synced["rooms"]["join"][room]["timeline"]["events"]
    assert all(e["type"].startswith("m.room.") and e["sender"] != "@bob:test.local" for e in timeline)
    assert {e["type"] for e in synced["rooms"]["join"][room]["state"]["events"]} <= {"m.room.create", "m.room.name"}
    assert [e["type"] for e in synced["account_data"]["events"]] == ["m.direct"]
    _, page = await api.call("GET", f"/rooms/{room}/messages", token=alice, query={
        "filter": json.dumps({"types": ["m.room.message"], "lazy_load_members": True})})
    assert [e["content"]["body"] for e in page["chunk"]] == ["text"]
    assert [e["state_key"] for e in page["state"]] == ["@bob:test.local"]
    status, body = await api.call("GET", f"/rooms/{room}/messages", token=alice, query={"filter": "{nope"})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await api.call("POST", "/user/@alice:test.local/filter", {"room": {"timeline": {"types": "x"}}},
                                  token=alice)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    await api.call("POST", f"/rooms/{other['room_id']}/join", {}, token=bob)
    await api.call("POST", f"/rooms/{other['room_id']}/leave", {}, token=bob)
    _, with_leave = await api.call("GET", "/sync", token=bob, query={"filter": '{"room":{"include_leave":true}}'})
    assert other["room_id"] in with_leave["rooms"]["leave"]
    _, without = await api.call("GET", "/sync", token=bob)
    assert other["room_id"] not in without["rooms"]["leave"]


async def test_state_filtered_out_of_the_timeline_is_in_the_state(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    status, created = await api.call("POST", "/createRoom", {}, token=alice)
    room = created["room_id"]
    for key in ("changes", "stays"):
        await api.call("PUT", f"/rooms/{room}/state/test.state/{key}", {"v": 1}, token=alice)
    sync_filter = json.dumps({"room": {"timeline": {"types": ["filler"], "limit": 1},
                                       "state": {"types": ["test.state"]}}})
    status, first = await api.call("GET", "/sync", token=alice, query={"filter": sync_filter})
    state = first["rooms"]["join"][room]["state"]["events"]
    assert sorted(e["state_key"] for e in state) == ["changes", "stays"], state
    await api.call("PUT", f"/rooms/{room}/state/test.state/changes", {"v": 2}, token=alice)
    for i in range(3):
        await api.call("PUT", f"/rooms/{room}/send/filler/{i}", {}, token=alice)
    status, later = await api.call("GET", "/sync", token=alice, query={"filter": sync_filter,
                                                                       "since": first["next_batch"]})
    state = later["rooms"]["join"][room]["state"]["events"]
    assert [(e["state_key"], e["content"]) for e in state] == [("changes", {"v": 2})], state


async def test_new_display_name_is_no_new_join_in_incremental_sync(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    _, created = await api.call("POST", "/createRoom", {}, token=alice)
    room = created["room_id"]
    _, first = await api.call("GET", "/sync", token=alice)
    await api.call("PUT", f"/rooms/{room}/state/m.room.member/@alice:test.local",
                   {"membership": "join", "displayname": "boris"}, token=alice)
    await api.call("PUT", f"/rooms/{room}/send/m.room.message/1", {"msgtype": "m.text", "body": "x"}, token=alice)
    _, later = await api.call("GET", "/sync", token=alice, query={"since": first["next_batch"]})
    timeline = later["rooms"]["join"][room]["timeline"]
    assert [e["type"] for e in timeline["events"]] == ["m.room.member", "m.room.message"]
    assert timeline["limited"] is False
