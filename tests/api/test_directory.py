"""Aliases, the public room list, TURN credentials, OpenID, reports, whois and small endpoints."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from tests.api.helpers import Api
from tests.conftest import StartServer

OPEN = {"enable_registration": True, "enable_registration_without_verification": True}


@pytest.fixture
async def api(start_server: StartServer, http) -> Api:  # noqa: ANN001
    return Api(http, await start_server(**OPEN, turn_uris=("turn:turn.test.local:3478",), turn_shared_secret="turnsecret",
                                        turn_user_lifetime=3_600_000))


async def test_aliases(api: Api) -> None:
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room = created["room_id"]
    assert (await api.call("PUT", "/directory/room/%23garden:test.local", {"room_id": room}, token=alice))[0] == 200
    status, body = await api.call("PUT", "/directory/room/%23garden:test.local", {"room_id": room}, token=alice)
    assert status == 409
    assert await api.call("GET", "/directory/room/%23garden:test.local") == (
        200, {"room_id": room, "servers": ["test.local"]})
    status, body = await api.call("PUT", "/directory/room/%23x:other.org", {"room_id": room}, token=alice)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await api.call("GET", "/directory/room/nonsense")
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    await api.call("POST", f"/rooms/{room}/join", {}, token=bob)
    assert (await api.call("GET", f"/rooms/{room}/aliases", token=bob))[1] == {"aliases": ["#garden:test.local"]}
    status, _ = await api.call("PUT", f"/rooms/{room}/state/m.room.canonical_alias",
                               {"alias": "#garden:test.local"}, token=alice)
    assert status == 200
    status, body = await api.call("PUT", f"/rooms/{room}/state/m.room.canonical_alias",
                                  {"alias": "#elsewhere:test.local"}, token=alice)
    assert (status, body["errcode"]) == (400, "M_BAD_ALIAS")
    status, body = await api.call("DELETE", "/directory/room/%23garden:test.local", token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert (await api.call("DELETE", "/directory/room/%23garden:test.local", token=alice))[0] == 200
    assert (await api.call("GET", "/directory/room/%23garden:test.local"))[0] == 404


async def test_public_rooms(api: Api) -> None:
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    rooms = []
    for i in range(3):
        _, created = await api.call("POST", "/createRoom", {"visibility": "public", "name": f"Public {i}",
                                                            "topic": "cats" if i == 1 else "dogs"}, token=alice)
        rooms.append(created["room_id"])
    _, private = await api.call("POST", "/createRoom", {"name": "Secret"}, token=alice)
    await api.call("POST", f"/rooms/{rooms[2]}/join", {}, token=bob)
    _, listed = await api.call("GET", "/publicRooms")
    assert listed["total_room_count_estimate"] == 3
    assert listed["chunk"][0]["room_id"] == rooms[2] and listed["chunk"][0]["num_joined_members"] == 2
    assert {r["name"] for r in listed["chunk"]} == {"Public 0", "Public 1", "Public 2"}
    assert private["room_id"] not in {r["room_id"] for r in listed["chunk"]}
    _, page = await api.call("GET", "/publicRooms", query={"limit": "2"})
    _, rest = await api.call("GET", "/publicRooms", query={"limit": "2", "since": page["next_batch"]})
    assert len(page["chunk"]) == 2 and len(rest["chunk"]) == 1 and "prev_batch" in rest
    _, found = await api.call("POST", "/publicRooms", {"filter": {"generic_search_term": "CATS"}}, token=bob)
    assert [r["room_id"] for r in found["chunk"]] == [rooms[1]]
    assert (await api.call("GET", f"/directory/list/room/{rooms[0]}"))[1] == {"visibility": "public"}
    status, body = await api.call("PUT", f"/directory/list/room/{rooms[0]}", {"visibility": "private"}, token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert (await api.call("PUT", f"/directory/list/room/{rooms[0]}", {"visibility": "private"}, token=alice))[0] == 200
    assert (await api.call("GET", "/publicRooms"))[1]["total_room_count_estimate"] == 2
    status, body = await api.call("GET", "/publicRooms", query={"since": "bogus"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await api.call("POST", "/publicRooms", {"filter": []}, token=bob)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_turn_openid_reports_whois(api: Api) -> None:
    alice = await api.register("alice")
    token = alice["access_token"]
    _, turn = await api.call("GET", "/voip/turnServer", token=token)
    expected = base64.b64encode(hmac.new(b"turnsecret", turn["username"].encode(), hashlib.sha1).digest()).decode()
    assert turn["password"] == expected and turn["username"].endswith(":@alice:test.local")
    assert turn["uris"] == ["turn:turn.test.local:3478"] and turn["ttl"] == 3600

    _, openid = await api.call("POST", "/user/@alice:test.local/openid/request_token", {}, token=token)
    assert openid["matrix_server_name"] == "test.local"
    assert await api.call("GET", "/_matrix/federation/v1/openid/userinfo",
                          query={"access_token": openid["access_token"]}) == (200, {"sub": "@alice:test.local"})
    status, body = await api.call("GET", "/_matrix/federation/v1/openid/userinfo", query={"access_token": "nope"})
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")

    _, created = await api.call("POST", "/createRoom", {}, token=token)
    room = created["room_id"]
    _, sent = await api.call("PUT", f"/rooms/{room}/send/m.room.message/1", {"body": "spam"}, token=token)
    assert (await api.call("POST", f"/rooms/{room}/report/{sent['event_id']}", {"reason": "spam", "score": -100},
                           token=token))[0] == 200
    assert (await api.call("POST", f"/rooms/{room}/report", {"reason": "bad room"}, token=token))[0] == 200
    assert (await api.call("POST", "/users/@alice:test.local/report", {"reason": "me"}, token=token))[0] == 200
    status, body = await api.call("POST", f"/rooms/{room}/report/$nope", {"reason": "x"}, token=token)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await api.call("POST", f"/rooms/{room}/report/{sent['event_id']}", {"score": 5}, token=token)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")

    _, whois = await api.call("GET", "/admin/whois/@alice:test.local", token=token)
    connections = whois["devices"][alice["device_id"]]["sessions"][0]["connections"]
    assert connections[0]["ip"] == "127.0.0.1"
    bob = (await api.register("bob"))["access_token"]
    status, body = await api.call("GET", "/admin/whois/@alice:test.local", token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert await api.call("GET", "/thirdparty/protocols", token=token) == (200, {})
    status, body = await api.call("GET", "/login/sso/redirect")
    assert (status, body["errcode"]) == (400, "M_UNRECOGNIZED")


async def test_turn_without_configuration(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    token = (await api.register("alice"))["access_token"]
    assert await api.call("GET", "/voip/turnServer", token=token) == (200, {})


async def test_publication_rules(start_server: StartServer, http) -> None:  # noqa: ANN001
    from homeserver.config import PublicationRule

    api = Api(http, await start_server(**OPEN, room_list_publication_rules=(
        PublicationRule("allow", user_id="@trusted:*"), PublicationRule("deny"))))
    trusted = (await api.register("trusted"))["access_token"]
    other = (await api.register("other"))["access_token"]
    assert (await api.call("POST", "/createRoom", {"visibility": "public"}, token=trusted))[0] == 200
    status, body = await api.call("POST", "/createRoom", {"visibility": "public"}, token=other)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_extra_well_known_content(start_server: StartServer, http) -> None:  # noqa: ANN001
    foci = {"org.matrix.msc4143.rtc_foci": [{"type": "livekit", "livekit_service_url": "https://lk.test.local"}]}
    api = Api(http, await start_server(serve_client_wellknown=True, extra_well_known_client_content=foci))
    _, body = await api.call("GET", "/.well-known/matrix/client")
    assert body["org.matrix.msc4143.rtc_foci"] == foci["org.matrix.msc4143.rtc_foci"]
    assert "m.homeserver" in body


async def test_user_directory(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    carol = (await api.register("carol"))["access_token"]
    await api.register("dave")
    await api.call("PUT", "/profile/@bob:test.local/displayname", {"displayname": "Bobby Tables"}, token=bob)
    _, private = await api.call("POST", "/createRoom", {"invite": ["@bob:test.local"]}, token=alice)
    await api.call("POST", f"/rooms/{private['room_id']}/join", {}, token=bob)
    _, public = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=carol)

    async def search(term: str, token: str = alice) -> list[str]:
        status, body = await api.call("POST", "/user_directory/search", {"search_term": term}, token=token)
        assert status == 200
        return [r["user_id"] for r in body["results"]]

    assert await search("tables") == ["@bob:test.local"]
    assert await search("carol") == ["@carol:test.local"]
    assert await search("dave") == []
    # A private room shows its members to each other, not to themselves (as Synapse).
    assert sorted(await search("o")) == ["@bob:test.local", "@carol:test.local"]
    assert await search("bob", token=bob) == []
    # A room anyone may join, or anyone may read, shows its members to everyone, themselves too.
    await api.call("PUT", f"/rooms/{private['room_id']}/state/m.room.join_rules", {"join_rule": "public"},
                   token=alice)
    assert await search("bob", token=bob) == ["@bob:test.local"]
    assert await search("tables", token=(await api.register("erin"))["access_token"]) == ["@bob:test.local"]
    await api.call("PUT", f"/rooms/{private['room_id']}/state/m.room.join_rules", {"join_rule": "invite"},
                   token=alice)
    assert await search("bob", token=bob) == []
    await api.call("PUT", f"/rooms/{private['room_id']}/state/m.room.history_visibility",
                   {"history_visibility": "world_readable"}, token=alice)
    assert await search("bob", token=bob) == ["@bob:test.local"]
    status, body = await api.call("POST", "/user_directory/search", {"search_term": 5}, token=alice)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    assert await search("carol", token=carol) == ["@carol:test.local"] and public["room_id"]


async def test_user_directory_search_all(start_server: StartServer, http) -> None:  # noqa: ANN001
    from homeserver.config import UserDirectoryConfig

    api = Api(http, await start_server(**OPEN, user_directory=UserDirectoryConfig(search_all_users=True)))
    alice = (await api.register("alice"))["access_token"]
    await api.register("loner")
    _, body = await api.call("POST", "/user_directory/search", {"search_term": "lon", "limit": 5}, token=alice)
    assert [r["user_id"] for r in body["results"]] == ["@loner:test.local"] and body["limited"] is False


async def test_room_summary_and_space_hierarchy(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    _, space = await api.call("POST", "/createRoom", {"preset": "public_chat", "name": "Space",
                                                      "creation_content": {"type": "m.space"}}, token=alice)
    _, child = await api.call("POST", "/createRoom", {"preset": "public_chat", "name": "Child"}, token=alice)
    _, hidden = await api.call("POST", "/createRoom", {"name": "Hidden"}, token=alice)
    for room, suggested in ((child["room_id"], True), (hidden["room_id"], False)):
        await api.call("PUT", f"/rooms/{space['room_id']}/state/m.space.child/{room}",
                       {"via": ["test.local"], "suggested": suggested}, token=alice)
    status, summary = await api.call("GET", f"/_matrix/client/v1/room_summary/{child['room_id']}", token=bob)
    assert status == 200 and summary["name"] == "Child" and summary["join_rule"] == "public"
    assert "membership" not in summary and summary["room_version"] == "12"
    status, summary = await api.call("GET", f"/_matrix/client/v1/room_summary/{hidden['room_id']}", token=bob)
    assert (status, summary["errcode"]) == (404, "M_NOT_FOUND")
    _, own = await api.call("GET", f"/_matrix/client/v1/room_summary/{hidden['room_id']}", token=alice)
    assert own["membership"] == "join"
    _, tree = await api.call("GET", f"/_matrix/client/v1/rooms/{space['room_id']}/hierarchy", token=bob)
    assert [r["room_id"] for r in tree["rooms"]] == [space["room_id"], child["room_id"]]
    assert tree["rooms"][0]["room_type"] == "m.space" and len(tree["rooms"][0]["children_state"]) == 2
    _, alices = await api.call("GET", f"/_matrix/client/v1/rooms/{space['room_id']}/hierarchy", token=alice,
                               query={"suggested_only": "true"})
    assert [r["room_id"] for r in alices["rooms"]] == [space["room_id"], child["room_id"]]
    _, paged = await api.call("GET", f"/_matrix/client/v1/rooms/{space['room_id']}/hierarchy", token=alice,
                              query={"limit": "1"})
    assert len(paged["rooms"]) == 1 and paged["next_batch"]
    status, body = await api.call("GET", f"/_matrix/client/v1/rooms/{hidden['room_id']}/hierarchy", token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
