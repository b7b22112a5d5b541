"""Push rules, notification counts in sync, /notifications and pushers."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from tests.api.helpers import Api
from tests.conftest import StartServer

OPEN = {"enable_registration": True, "enable_registration_without_verification": True}


def _ids(rules: list[dict[str, Any]]) -> list[str]:
    return [r["rule_id"] for r in rules]


async def test_push_rules_crud(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    _, rules = await api.call("GET", "/pushrules/", token=alice)
    override = rules["global"]["override"]
    assert _ids(override)[:2] == [".m.rule.master", ".m.rule.suppress_notices"]
    mention = next(r for r in override if r["rule_id"] == ".m.rule.is_user_mention")
    assert mention["conditions"][0]["value"] == "@alice:test.local"
    assert ".m.rule.message" in _ids(rules["global"]["underride"])

    cool = {"actions": ["notify"], "pattern": "cake"}
    assert (await api.call("PUT", "/pushrules/global/content/cake", cool, token=alice))[0] == 200
    assert (await api.call("PUT", "/pushrules/global/content/pie", cool, token=alice,
                           query={"before": "cake"}))[0] == 200
    _, content = await api.call("GET", "/pushrules/global/content/", token=alice)
    assert _ids(content) == ["pie", "cake"]
    # Without before/after a new rule comes first; after= puts it right behind its anchor.
    assert (await api.call("PUT", "/pushrules/global/content/tart", cool, token=alice))[0] == 200
    assert (await api.call("PUT", "/pushrules/global/content/flan", cool, token=alice,
                           query={"after": "pie"}))[0] == 200
    _, content = await api.call("GET", "/pushrules/global/content/", token=alice)
    assert _ids(content) == ["tart", "pie", "flan", "cake"]
    for extra in ("tart", "flan"):
        assert (await api.call("DELETE", f"/pushrules/global/content/{extra}", token=alice))[0] == 200
    _, rule = await api.call("GET", "/pushrules/global/content/cake", token=alice)
    assert rule == {"rule_id": "cake", "default": False, "enabled": True, "actions": ["notify"], "pattern": "cake"}
    assert (await api.call("PUT", "/pushrules/global/content/cake/enabled", {"enabled": False}, token=alice))[0] == 200
    assert (await api.call("GET", "/pushrules/global/content/cake/enabled", token=alice))[1] == {"enabled": False}
    assert (await api.call("PUT", "/pushrules/global/override/.m.rule.master/enabled", {"enabled": True},
                           token=alice))[0] == 200
    actions = {"actions": ["notify", {"set_tweak": "sound", "value": "bell"}]}
    assert (await api.call("PUT", "/pushrules/global/underride/.m.rule.message/actions", actions, token=alice))[0] == 200
    _, rules = await api.call("GET", "/pushrules/global/", token=alice)
    assert rules["override"][0]["enabled"] is True
    assert next(r for r in rules["underride"] if r["rule_id"] == ".m.rule.message")["actions"] == actions["actions"]

    # Clients learn about rule changes from account data in sync.
    _, synced = await api.call("GET", "/sync", token=alice)
    pushed = next(e for e in synced["account_data"]["events"] if e["type"] == "m.push_rules")
    assert _ids(pushed["content"]["global"]["content"]) == ["pie", "cake"]

    assert (await api.call("DELETE", "/pushrules/global/content/cake", token=alice))[0] == 200
    status, body = await api.call("GET", "/pushrules/global/content/cake", token=alice)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    for method, path, body, errcode in [
        ("DELETE", "/pushrules/global/override/.m.rule.master", None, "M_UNKNOWN"),
        ("PUT", "/pushrules/global/override/.mine", {"actions": []}, "M_INVALID_PARAM"),
        ("PUT", "/pushrules/global/content/x", {"actions": ["notify"]}, "M_BAD_JSON"),
        ("PUT", "/pushrules/global/content/x", {"actions": ["shout"], "pattern": "x"}, "M_BAD_JSON"),
        ("PUT", "/pushrules/global/content/x", {"actions": [], "pattern": "x"}, "M_UNKNOWN"),
        ("PUT", "/pushrules/global/sender/notauser", {"actions": []}, "M_INVALID_PARAM"),
        ("PUT", "/pushrules/device/content/x", {"actions": [], "pattern": "x"}, "M_INVALID_PARAM"),
        ("PUT", "/pushrules/global/content/pie/enabled", {"enabled": "yes"}, "M_BAD_JSON"),
        ("GET", "/pushrules/global/weird/", None, "M_INVALID_PARAM"),
        ("PUT", "/pushrules/", {"actions": []}, "M_UNRECOGNIZED"),
    ]:
        query = {"after": "missing"} if errcode == "M_UNKNOWN" and method == "PUT" else None
        status, answer = await api.call(method, path, body, token=alice, query=query)
        assert status in (400, 404) and answer["errcode"] == errcode, (method, path, answer)
    status, body = await api.call("PUT", "/user/@alice:test.local/account_data/m.push_rules", {}, token=alice)
    assert status == 405


async def test_unread_counts_and_notifications(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    carol = (await api.register("carol"))["access_token"]
    _, room = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room_id = room["room_id"]
    for token in (bob, carol):
        await api.call("POST", f"/rooms/{room_id}/join", {}, token=token)
    _, start = await api.call("GET", "/sync", token=bob)
    assert start["rooms"]["join"][room_id]["unread_notifications"] == {"notification_count": 0, "highlight_count": 0}

    async def send(txn: str, content: dict[str, Any], token: str = alice) -> str:
        status, body = await api.call("PUT", f"/rooms/{room_id}/send/m.room.message/{txn}", content, token=token)
        assert status == 200, body
        return body["event_id"]

    await send("1", {"msgtype": "m.text", "body": "hello all"})
    await send("2", {"msgtype": "m.notice", "body": "a bot speaks"})
    mention = await send("3", {"msgtype": "m.text", "body": "bob, look",
                               "m.mentions": {"user_ids": ["@bob:test.local"]}})
    await send("4", {"msgtype": "m.text", "body": "thread reply",
                     "m.relates_to": {"rel_type": "m.thread", "event_id": mention}})
    await send("5", {"msgtype": "m.text", "body": "my own message"}, token=bob)
    _, synced = await api.call("GET", "/sync", token=bob, query={"since": start["next_batch"]})
    counts = synced["rooms"]["join"][room_id]["unread_notifications"]
    assert counts == {"notification_count": 3, "highlight_count": 1}
    _, carol_sync = await api.call("GET", "/sync", token=carol)
    assert carol_sync["rooms"]["join"][room_id]["unread_notifications"] == {
        "notification_count": 4, "highlight_count": 0}

    threaded = '{"room": {"timeline": {"unread_thread_notifications": true}}}'
    _, by_thread = await api.call("GET", "/sync", token=bob, query={"filter": threaded})
    entry = by_thread["rooms"]["join"][room_id]
    assert entry["unread_notifications"] == {"notification_count": 2, "highlight_count": 1}
    assert entry["unread_thread_notifications"] == {mention: {"notification_count": 1, "highlight_count": 0}}

    _, listed = await api.call("GET", "/notifications", token=bob)
    bodies = [n["event"]["content"]["body"] for n in listed["notifications"]]
    assert bodies == ["thread reply", "bob, look", "hello all"]
    assert all(n["room_id"] == room_id and n["read"] is False for n in listed["notifications"])
    _, highlights = await api.call("GET", "/notifications", token=bob, query={"only": "highlight"})
    assert [n["event"]["event_id"] for n in highlights["notifications"]] == [mention]
    _, page = await api.call("GET", "/notifications", token=bob, query={"limit": "2"})
    _, rest = await api.call("GET", "/notifications", token=bob, query={"from": page["next_token"]})
    assert [n["event"]["content"]["body"] for n in rest["notifications"]] == ["hello all"]

    # A read receipt on the mention clears what came before it in the main timeline.
    assert (await api.call("POST", f"/rooms/{room_id}/receipt/m.read/{mention}", {}, token=bob))[0] == 200
    _, after = await api.call("GET", "/sync", token=bob, query={"since": synced["next_batch"]})
    assert after["rooms"]["join"][room_id]["unread_notifications"] == {"notification_count": 1, "highlight_count": 0}
    _, listed = await api.call("GET", "/notifications", token=bob)
    assert [n["read"] for n in listed["notifications"]] == [False, True, True]

    # Muting the room with a room rule stops further counts.
    await api.call("PUT", f"/pushrules/global/room/{room_id}", {"actions": []}, token=bob)
    await send("6", {"msgtype": "m.text", "body": "muted"})
    _, muted = await api.call("GET", "/sync", token=bob, query={"since": after["next_batch"]})
    assert muted["rooms"]["join"][room_id]["unread_notifications"]["notification_count"] == 1

    for query in ({"limit": "0"}, {"limit": "x"}, {"from": "nope"}):
        status, body = await api.call("GET", "/notifications", token=bob, query=query)
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), query


async def test_direct_messages_and_invites_notify(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    _, room = await api.call("POST", "/createRoom", {"preset": "trusted_private_chat", "invite": ["@bob:test.local"],
                                                     "is_direct": True}, token=alice)
    _, listed = await api.call("GET", "/notifications", token=bob)
    assert [n["event"]["type"] for n in listed["notifications"]] == ["m.room.member"]
    await api.call("POST", f"/rooms/{room['room_id']}/join", {}, token=bob)
    await api.call("PUT", f"/rooms/{room['room_id']}/send/m.room.message/1", {"msgtype": "m.text", "body": "hi"},
                   token=alice)
    _, listed = await api.call("GET", "/notifications", token=bob)
    sound = {"set_tweak": "sound", "value": "default"}
    assert listed["notifications"][0]["actions"] == ["notify", sound]


async def test_pushers(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    pusher = {"kind": "http", "app_id": "im.vector.app", "pushkey": "key1", "app_display_name": "Element",
              "device_display_name": "Phone", "lang": "en", "data": {"url": "https://push.example/_matrix/push/v1/notify"}}
    assert (await api.call("POST", "/pushers/set", pusher, token=alice))[0] == 200
    _, listed = await api.call("GET", "/pushers", token=alice)
    assert listed == {"pushers": [{k: v for k, v in pusher.items()}]}
    # The same app and key registered by another user moves to them unless `append` is set.
    assert (await api.call("POST", "/pushers/set", pusher, token=bob))[0] == 200
    assert (await api.call("GET", "/pushers", token=alice))[1] == {"pushers": []}
    assert (await api.call("POST", "/pushers/set", {**pusher, "append": True}, token=alice))[0] == 200
    assert len((await api.call("GET", "/pushers", token=bob))[1]["pushers"]) == 1
    assert (await api.call("POST", "/pushers/set", {**pusher, "kind": None}, token=alice))[0] == 200
    assert (await api.call("GET", "/pushers", token=alice))[1] == {"pushers": []}
    for bad, errcode in [
        ({k: v for k, v in pusher.items() if k != "pushkey"}, "M_MISSING_PARAM"),
        ({**pusher, "kind": "carrier-pigeon"}, "M_INVALID_PARAM"),
        ({**pusher, "data": {"url": "https://push.example/"}}, "M_INVALID_PARAM"),
        ({**pusher, "data": []}, "M_BAD_JSON"),
        ({**pusher, "app_id": 7}, "M_INVALID_PARAM"),
        ({**pusher, "pushkey": "k" * 513}, "M_INVALID_PARAM"),
    ]:
        status, body = await api.call("POST", "/pushers/set", bad, token=alice)
        assert (status, body["errcode"]) == (400, errcode), bad
    # A device's pushers go with it: logging out a phone, or changing the password from another
    # device (which logs the others out), stops its notifications.
    _, phone = await api.login("alice")
    assert (await api.call("POST", "/pushers/set", {**pusher, "pushkey": "phone"}, token=phone["access_token"]))[0] == 200
    assert (await api.call("POST", "/logout", {}, token=phone["access_token"]))[0] == 200
    assert (await api.call("GET", "/pushers", token=alice))[1] == {"pushers": []}
    _, tablet = await api.login("alice")
    assert (await api.call("POST", "/pushers/set", {**pusher, "pushkey": "tablet"}, token=tablet["access_token"]))[0] == 200
    assert (await api.call("POST", "/pushers/set", {**pusher, "pushkey": "desk"}, token=alice))[0] == 200
    status, body = await api.call("POST", "/account/password", {"new_password": "new one", "auth": {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "password"}},
        token=alice)
    assert status == 200, body
    assert [p["pushkey"] for p in (await api.call("GET", "/pushers", token=alice))[1]["pushers"]] == ["desk"]


async def test_http_pushers_reach_the_gateway(start_server: StartServer, http) -> None:  # noqa: ANN001
    """A loopback push gateway: a failed delivery is retried, rejected pushkeys lose their pusher."""
    received: list[dict[str, Any]] = []
    answers = [web.Response(status=503)]

    async def notify(request: web.Request) -> web.Response:
        received.append(await request.json())
        if answers:
            return answers.pop()
        devices = received[-1]["notification"]["devices"]
        return web.json_response({"rejected": [d["pushkey"] for d in devices if d["pushkey"] == "stale"]})

    gateway = web.Application()
    gateway.router.add_post("/_matrix/push/v1/notify", notify)
    runner = web.AppRunner(gateway)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/_matrix/push/v1/notify"
    try:
        hs = await start_server(**OPEN)
        hs.push_gateway.retry_delays = (0.05, 0.05)
        api = Api(http, hs)
        alice = (await api.register("alice"))["access_token"]
        bob = (await api.register("bob"))["access_token"]
        base = {"kind": "http", "app_id": "im.vector.app", "app_display_name": "Element",
                "device_display_name": "Phone", "lang": "en"}
        await api.call("POST", "/pushers/set", {**base, "pushkey": "phone", "data": {"url": url, "extra": 1}},
                       token=bob)
        await api.call("POST", "/pushers/set", {**base, "pushkey": "stale", "data": {"url": url,
                                                                                      "format": "event_id_only"}},
                       token=bob)
        _, room = await api.call("POST", "/createRoom", {"preset": "public_chat", "name": "Lobby"}, token=alice)
        await api.call("PUT", "/profile/@alice:test.local/displayname", {"displayname": "Alice"}, token=alice)
        await api.call("POST", f"/rooms/{room['room_id']}/join", {}, token=bob)
        _, sent = await api.call("PUT", f"/rooms/{room['room_id']}/send/m.room.message/1",
                                 {"msgtype": "m.text", "body": "hi @bob", "m.mentions": {"user_ids": ["@bob:test.local"]}},
                                 token=alice)
        for _ in range(100):
            if len(received) == 3 and len((await api.call("GET", "/pushers", token=bob))[1]["pushers"]) == 1:
                break
            await asyncio.sleep(0.05)
        assert [p["pushkey"] for p in (await api.call("GET", "/pushers", token=bob))[1]["pushers"]] == ["phone"]
        by_key = {r["notification"]["devices"][0]["pushkey"]: r["notification"] for r in received}
        assert len(received) == 3  # one retried after the 503
        full, short = by_key["phone"], by_key["stale"]
        assert full["event_id"] == sent["event_id"] and full["room_id"] == room["room_id"]
        assert (full["type"], full["sender"], full["sender_display_name"], full["room_name"]) == (
            "m.room.message", "@alice:test.local", "Alice", "Lobby")
        assert full["content"]["body"] == "hi @bob" and full["prio"] == "high"
        assert full["counts"] == {"unread": 1}
        assert full["devices"][0]["data"] == {"extra": 1}
        assert full["devices"][0]["tweaks"] == {"sound": "default", "highlight": True}
        assert set(short) == {"id", "event_id", "room_id", "counts", "prio", "devices"}
        assert short["devices"][0]["pushkey_ts"] > 0
        # Bob reads the message: his phone is told the badge is now 0 (once: a second receipt that
        # changes nothing sends nothing more).
        received.clear()
        await api.call("POST", f"/rooms/{room['room_id']}/receipt/m.read/{sent['event_id']}", {}, token=bob)
        await api.call("POST", f"/rooms/{room['room_id']}/receipt/m.read.private/{sent['event_id']}", {}, token=bob)
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        (badge,) = [r["notification"] for r in received]
        assert badge == {"id": "", "type": None, "sender": "", "counts": {"unread": 0},
                         "devices": [{"app_id": "im.vector.app", "pushkey": "phone",
                                      "pushkey_ts": badge["devices"][0]["pushkey_ts"], "data": {"extra": 1}}]}
        # A room without a name is named by its canonical alias.
        _, hall = await api.call("POST", "/createRoom", {"preset": "public_chat", "room_alias_name": "hall"},
                                 token=alice)
        await api.call("POST", f"/rooms/{hall['room_id']}/join", {}, token=bob)
        await api.call("PUT", f"/rooms/{hall['room_id']}/send/m.room.message/2",
                       {"msgtype": "m.text", "body": "hall", "m.mentions": {"user_ids": ["@bob:test.local"]}}, token=alice)
        for _ in range(100):
            named = [r["notification"] for r in received if r["notification"].get("room_id") == hall["room_id"]]
            if named:
                break
            await asyncio.sleep(0.05)
        assert named[0]["room_name"] == "#hall:test.local"
    finally:
        await runner.cleanup()
