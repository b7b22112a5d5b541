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
    # A sync with set_presence=offline leaves presence as it is (here: the unavailable alice chose).
    await api.call("GET", "/sync", token=alice, query={"set_presence": "offline"})
    status, body = await api.call("GET", "/presence/@alice:test.local/status", token=bob)
    assert body["presence"] == "unavailable"


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
    # The speaker, the user, and the heroes clients name this unnamed room after.
    assert members == {f"@{n}:test.local" for n in ("alice", "bob", "carol", "dave", "erin", "fred")}
    summary = joined["summary"]
    assert summary["m.joined_member_count"] == 7
    assert summary["m.heroes"] == ["@bob:test.local", "@carol:test.local", "@dave:test.local",
                                   "@erin:test.local", "@fred:test.local"]
    _, full = await api.call("GET", "/sync", token=tokens[0], query={"filter": '{"room":{"timeline":{"limit":5}}}'})
    assert len([e for e in full["rooms"]["join"][room]["state"]["events"] if e["type"] == "m.room.member"]) == 7
    status, body = await api.call("GET", "/sync", token=tokens[0],
                                  query={"filter": '{"room":{"state":{"lazy_load_members":"yes"}}}'})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


def _members(synced: dict, room: str) -> dict[str, str]:
    """state_key -> membership of the member events in a synced room's state section."""
    joined = synced["rooms"]["join"].get(room, {})
    return {e["state_key"].split(":")[0][1:]: e["content"]["membership"]
            for e in joined.get("state", {}).get("events", []) if e["type"] == "m.room.member"}


async def test_lazy_loading_across_incremental_syncs(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    room, (alice, bob, carol, dave) = await setup(api, "alice", "bob", "carol", "dave")
    await api.call("PUT", f"/rooms/{room}/state/m.room.name", {"name": "named"}, token=alice)
    lazy = json.dumps({"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 5}}})
    redundant = json.dumps({"room": {"state": {"lazy_load_members": True, "include_redundant_members": True},
                                     "timeline": {"limit": 5}}})

    async def say(token: str, count: int = 1) -> None:
        for _ in range(count):
            await api.call("POST", f"/rooms/{room}/send/m.room.message", {"body": "x"}, token=token)

    await say(bob, 5)
    _, first = await api.call("GET", "/sync", token=alice, query={"filter": lazy})
    assert _members(first, room) == {"alice": "join", "bob": "join"}
    # A new speaker's membership comes once; the user's own and bob's (already sent) do not.
    await say(carol)
    await say(bob)
    _, second = await api.call("GET", "/sync", token=alice, query={"filter": lazy, "since": first["next_batch"]})
    assert _members(second, room) == {"carol": "join"}
    await say(carol)
    _, third = await api.call("GET", "/sync", token=alice, query={"filter": lazy, "since": second["next_batch"]})
    assert _members(third, room) == {}
    # Asked for, the redundant ones come anyway (never the user's own).
    await say(bob)
    await say(carol)
    _, again = await api.call("GET", "/sync", token=alice, query={"filter": redundant, "since": third["next_batch"]})
    assert _members(again, room) == {"bob": "join", "carol": "join"}
    # A gap: membership changes inside it come, with the memberships of whoever speaks after it.
    await api.call("POST", f"/rooms/{room}/leave", {}, token=carol)
    await say(bob, 6)
    await api.call("POST", f"/rooms/{room}/leave", {}, token=bob)
    await say(dave, 5)
    _, gappy = await api.call("GET", "/sync", token=alice, query={"filter": lazy, "since": again["next_batch"]})
    assert gappy["rooms"]["join"][room]["timeline"]["limited"] is True
    assert _members(gappy, room) == {"carol": "leave", "bob": "leave", "dave": "join"}
    # Another device of the same user has been sent nothing yet; a new initial sync starts over.
    _, login = await api.login("alice")
    await say(dave)
    _, other = await api.call("GET", "/sync", token=login["access_token"], query={"filter": lazy})
    assert _members(other, room) == {"alice": "join", "dave": "join"}
    _, restart = await api.call("GET", "/sync", token=alice, query={"filter": lazy})
    assert _members(restart, room) == {"alice": "join", "dave": "join"}
    await say(dave)
    _, after = await api.call("GET", "/sync", token=alice, query={"filter": lazy, "since": restart["next_batch"]})
    assert _members(after, room) == {}


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


async def test_incremental_sync_rooms_as_synapse_sends_them(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice, bob, carol = [(await api.register(n))["access_token"] for n in ("alice", "bob", "carol")]
    quiet = json.dumps({"room": {"timeline": {"types": []}, "state": {"types": ["test.state"]},
                                 "ephemeral": {"types": []}, "include_leave": True}})
    _, created = await api.call("POST", "/createRoom", {"preset": "private_chat"}, token=alice)
    room = created["room_id"]
    await api.call("PUT", f"/rooms/{room}/state/test.state", {"v": 1}, token=alice)
    _, first = await api.call("GET", "/sync", token=alice, query={"filter": quiet})
    assert len(first["rooms"]["join"][room]["state"]["events"]) == 1
    # Nothing the filter lets through changed: the room is left out (and the sync waits).
    await api.call("PUT", f"/rooms/{room}/state/m.room.member/@alice:test.local",
                   {"membership": "join", "displayname": "Alice"}, token=alice)
    _, nothing = await api.call("GET", "/sync", token=alice, query={"filter": quiet, "since": first["next_batch"]})
    assert room not in nothing["rooms"]["join"]

    # Invited, then joined and left between two syncs: the leave comes with the room's whole state.
    await api.call("POST", f"/rooms/{room}/invite", {"user_id": "@bob:test.local"}, token=alice)
    _, bob_first = await api.call("GET", "/sync", token=bob, query={"filter": quiet})
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    await api.call("POST", f"/rooms/{room}/leave", {}, token=bob)
    _, bob_next = await api.call("GET", "/sync", token=bob, query={"filter": quiet, "since": bob_first["next_batch"]})
    assert [e["content"] for e in bob_next["rooms"]["leave"][room]["state"]["events"]] == [{"v": 1}]

    # History visible to joined members only: carol's join, made while bob was away, is current
    # state and so still appears in bob's timeline when he comes back.
    await api.call("PUT", f"/rooms/{room}/state/m.room.history_visibility", {"history_visibility": "joined"},
                   token=alice)
    await api.call("POST", f"/rooms/{room}/invite", {"user_id": "@bob:test.local"}, token=alice)
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    _, before = await api.call("GET", "/sync", token=bob)
    await api.call("POST", f"/rooms/{room}/leave", {}, token=bob)
    await api.call("POST", f"/rooms/{room}/invite", {"user_id": "@carol:test.local"}, token=alice)
    await api.call("POST", f"/rooms/{room}/join", {}, token=carol)
    await api.call("POST", f"/rooms/{room}/invite", {"user_id": "@bob:test.local"}, token=alice)
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    _, back = await api.call("GET", "/sync", token=bob, query={"since": before["next_batch"]})
    timeline = back["rooms"]["join"][room]["timeline"]
    assert any(e["type"] == "m.room.member" and e["state_key"] == "@carol:test.local"
               and e["content"]["membership"] == "join" for e in timeline["events"])


async def test_newly_joined_room_in_incremental_sync(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice, bob = [(await api.register(n))["access_token"] for n in ("alice", "bob")]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room = created["room_id"]
    await api.call("GET", "/sync", token=alice)
    _, start = await api.call("GET", "/sync", token=bob)
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    _, joined = await api.call("GET", "/sync", token=bob, query={"since": start["next_batch"]})
    # All of the room's few events fit, yet the client has none of its history before: limited.
    assert joined["rooms"]["join"][room]["timeline"]["limited"] is True
    # Alice's presence has not changed since bob's last sync, but bob has just met her.
    assert [e["sender"] for e in joined["presence"]["events"] if e["sender"] != "@bob:test.local"] \
        == ["@alice:test.local"]


async def test_event_format_and_fields(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    _, created = await api.call("POST", "/createRoom", {}, token=alice)
    room = created["room_id"]
    await api.call("POST", f"/rooms/{room}/send/m.room.message", {"body": "hi", "a.b": 1, "x": 2}, token=alice)
    one = {"room": {"timeline": {"limit": 1}}}
    _, synced = await api.call("GET", "/sync", token=alice,
                               query={"filter": json.dumps({**one, "event_format": "federation"})})
    event = synced["rooms"]["join"][room]["timeline"]["events"][0]
    assert {"prev_events", "auth_events", "depth", "hashes", "signatures", "event_id", "unsigned"} <= set(event)
    assert event["content"]["body"] == "hi"
    _, synced = await api.call("GET", "/sync", token=alice, query={"filter": json.dumps(
        {**one, "event_fields": ["type", "content.body", "content.a\\.b"]})})
    assert synced["rooms"]["join"][room]["timeline"]["events"] == [
        {"type": "m.room.message", "content": {"body": "hi", "a.b": 1}}]
    assert all(set(e) <= {"type", "content"} for e in synced["rooms"]["join"][room]["state"]["events"])
    for bad in ({"event_format": "xml"}, {"event_fields": "type"}):
        status, body = await api.call("POST", "/user/@alice:test.local/filter", bad, token=alice)
        assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_presence_of_a_newly_joined_member(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice, bob = [(await api.register(n))["access_token"] for n in ("alice", "bob")]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    _, first = await api.call("GET", "/sync", token=alice)
    # Bob has never synced (no presence of his own yet): alice still hears of him, as offline.
    await api.call("POST", f"/rooms/{created['room_id']}/join", {}, token=bob)
    _, later = await api.call("GET", "/sync", token=alice, query={"since": first["next_batch"]})
    assert [(e["sender"], e["content"]["presence"]) for e in later["presence"]["events"]] \
        == [("@bob:test.local", "offline")]


async def test_timeline_filled_past_hidden_events(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice, bob, carol = [(await api.register(n))["access_token"] for n in ("alice", "bob", "carol")]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "initial_state": [
        {"type": "m.room.history_visibility", "content": {"history_visibility": "joined"}}]}, token=alice)
    room = created["room_id"]
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    _, before = await api.call("GET", "/sync", token=bob)
    await api.call("POST", f"/rooms/{room}/leave", {}, token=bob)
    await api.call("POST", f"/rooms/{room}/join", {}, token=carol)
    for i in range(25):
        await api.call("PUT", f"/rooms/{room}/send/m.room.message/m{i}", {"body": str(i)}, token=alice)
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    _, back = await api.call("GET", "/sync", token=bob, query={"since": before["next_batch"]})
    # The 25 messages bob may not see push carol's join (current state, so always shown) out of
    # the last ten events; the timeline reaches back past them for it.
    timeline = back["rooms"]["join"][room]["timeline"]
    members = [(e["state_key"], e["content"]["membership"]) for e in timeline["events"] if e["type"] == "m.room.member"]
    assert ("@carol:test.local", "join") in members and members[-1] == ("@bob:test.local", "join"), members
    assert all(e["type"] != "m.room.message" for e in timeline["events"])
