"""Relations: edits, threads, references, reactions; /relations, /threads, bundled aggregations."""

from __future__ import annotations

import pytest

from tests.api.helpers import Api
from tests.conftest import StartServer


@pytest.fixture
async def room(start_server: StartServer, http) -> tuple[Api, str, str, str]:  # noqa: ANN001
    api = Api(http, await start_server(enable_registration=True, enable_registration_without_verification=True))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    await api.call("POST", f"/rooms/{created['room_id']}/join", {}, token=bob)
    return api, created["room_id"], alice, bob


async def send(api: Api, room: str, token: str, txn: str, content: dict, event_type: str = "m.room.message") -> str:
    status, body = await api.call("PUT", f"/rooms/{room}/send/{event_type}/{txn}", content, token=token)
    assert status == 200, body
    return body["event_id"]


async def test_threads_edits_references(room) -> None:  # noqa: ANN001
    api, room_id, alice, bob = room
    root = await send(api, room_id, alice, "root", {"msgtype": "m.text", "body": "root"})
    replies = []
    for i in range(3):
        replies.append(await send(api, room_id, bob, f"t{i}", {"msgtype": "m.text", "body": f"reply {i}",
                                  "m.relates_to": {"rel_type": "m.thread", "event_id": root}}))
    edit = await send(api, room_id, alice, "edit", {"msgtype": "m.text", "body": "* root!", "m.new_content": {
        "msgtype": "m.text", "body": "root!"}, "m.relates_to": {"rel_type": "m.replace", "event_id": root}})
    reference = await send(api, room_id, bob, "ref", {"msgtype": "m.text", "body": "see",
                           "m.relates_to": {"rel_type": "m.reference", "event_id": root}})
    await send(api, room_id, bob, "react", {"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👍"}},
               "m.reaction")

    _, event = await api.call("GET", f"/rooms/{room_id}/event/{root}", token=alice)
    relations = event["unsigned"]["m.relations"]
    assert relations["m.thread"]["count"] == 3
    assert relations["m.thread"]["latest_event"]["event_id"] == replies[-1]
    assert relations["m.thread"]["current_user_participated"] is True
    assert relations["m.replace"]["event_id"] == edit
    assert relations["m.reference"] == {"chunk": [{"event_id": reference}]}

    base = f"/_matrix/client/v1/rooms/{room_id}/relations/{root}"
    _, all_children = await api.call("GET", base, token=alice)
    assert len(all_children["chunk"]) == 6
    _, thread = await api.call("GET", f"{base}/m.thread", token=alice, query={"limit": "2"})
    assert [e["event_id"] for e in thread["chunk"]] == [replies[2], replies[1]]
    _, rest = await api.call("GET", f"{base}/m.thread", token=alice, query={"limit": "2", "from": thread["next_batch"]})
    assert [e["event_id"] for e in rest["chunk"]] == [replies[0]]
    _, forwards = await api.call("GET", f"{base}/m.thread", token=alice, query={"dir": "f"})
    assert [e["event_id"] for e in forwards["chunk"]] == replies
    _, reactions = await api.call("GET", f"{base}/m.annotation/m.reaction", token=alice)
    assert len(reactions["chunk"]) == 1
    status, body = await api.call("GET", f"/_matrix/client/v1/rooms/{room_id}/relations/$nope", token=alice)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")

    other_root = await send(api, room_id, alice, "root2", {"msgtype": "m.text", "body": "second"})
    await send(api, room_id, alice, "t-other", {"msgtype": "m.text", "body": "x",
               "m.relates_to": {"rel_type": "m.thread", "event_id": other_root}})
    _, threads = await api.call("GET", f"/_matrix/client/v1/rooms/{room_id}/threads", token=bob)
    assert [e["event_id"] for e in threads["chunk"]] == [other_root, root]
    _, mine = await api.call("GET", f"/_matrix/client/v1/rooms/{room_id}/threads", token=bob,
                             query={"include": "participated"})
    assert [e["event_id"] for e in mine["chunk"]] == [root]

    await api.call("PUT", f"/rooms/{room_id}/redact/{replies[2]}/red", {}, token=bob)
    _, event = await api.call("GET", f"/rooms/{room_id}/event/{root}", token=alice)
    assert event["unsigned"]["m.relations"]["m.thread"]["count"] == 2
