"""Full-text search over room events, within the user's rooms and history."""

from __future__ import annotations

from tests.api.helpers import Api
from tests.conftest import StartServer

OPEN = {"enable_registration": True, "enable_registration_without_verification": True}


async def test_search(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    _, shared = await api.call("POST", "/createRoom", {"preset": "public_chat", "name": "Garden party"}, token=alice)
    _, mine = await api.call("POST", "/createRoom", {}, token=alice)
    await api.call("POST", f"/rooms/{shared['room_id']}/join", {}, token=bob)
    bodies = ["the tomatoes are ripe", "more tomatoes please", "cucumbers instead", "tomatoes tomatoes tomatoes"]
    for i, body in enumerate(bodies):
        await api.call("PUT", f"/rooms/{shared['room_id']}/send/m.room.message/{i}", {"msgtype": "m.text", "body": body},
                       token=alice)
    _, secret = await api.call("PUT", f"/rooms/{mine['room_id']}/send/m.room.message/s",
                               {"msgtype": "m.text", "body": "secret tomatoes"}, token=alice)

    def query(term: str, **extra: object) -> dict:
        return {"search_categories": {"room_events": {"search_term": term, **extra}}}

    _, found = await api.call("POST", "/search", query("tomatoes"), token=bob)
    events = found["search_categories"]["room_events"]
    assert events["count"] == 3
    assert [r["result"]["content"]["body"] for r in events["results"]][0] == "tomatoes tomatoes tomatoes"
    assert all(r["result"]["room_id"] == shared["room_id"] for r in events["results"])
    _, recent = await api.call("POST", "/search", query("tomatoes", order_by="recent", filter={"limit": 2},
                                                        event_context={"before_limit": 1, "after_limit": 1},
                                                        groupings={"group_by": [{"key": "room_id"}]}), token=alice)
    events = recent["search_categories"]["room_events"]
    assert [r["result"]["content"]["body"] for r in events["results"]] == ["secret tomatoes", "tomatoes tomatoes tomatoes"]
    assert "events_before" in events["results"][1]["context"]
    assert set(events["groups"]["room_id"]) == {mine["room_id"], shared["room_id"]}
    _, more = await api.call("POST", "/search", query("tomatoes", order_by="recent", filter={"limit": 2}), token=alice,
                             query={"next_batch": events["next_batch"]})
    assert [r["result"]["content"]["body"] for r in more["search_categories"]["room_events"]["results"]] == [
        "more tomatoes please", "the tomatoes are ripe"]
    _, by_name = await api.call("POST", "/search", query("garden", keys=["content.name"]), token=bob)
    assert by_name["search_categories"]["room_events"]["count"] == 1

    await api.call("PUT", f"/rooms/{mine['room_id']}/redact/{secret['event_id']}/r", {}, token=alice)
    _, after = await api.call("POST", "/search", query("secret"), token=alice)
    assert after["search_categories"]["room_events"]["count"] == 0
    for bad in ({"search_categories": []}, query(5), query("x", order_by="best"), query("x", keys=["sender"])):
        status, body = await api.call("POST", "/search", bad, token=alice)
        assert (status, body["errcode"]) == (400, "M_BAD_JSON"), bad
    status, body = await api.call("POST", "/search", query("x"), token=alice, query={"next_batch": "zz"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
