"""Push rule conditions and the predefined rules, evaluated without a server."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.core import push_rules

ME = "@me:hs"
CTX = push_rules.PushContext(member_count=5, sender_power=0, notification_levels={})


def _actions(event: dict[str, Any], ctx: push_rules.PushContext = CTX, name: str | None = "Mia") -> list[Any]:
    flat = push_rules.flatten({"room_id": "!r:hs", "sender": "@you:hs", **event})
    return push_rules.evaluate(push_rules.default_rules(ME), flat, ctx, name, "!r:hs", "@you:hs")


def _message(body: str, **content: Any) -> dict[str, Any]:
    return {"type": "m.room.message", "content": {"msgtype": "m.text", "body": body, **content}}


def test_flatten_escapes_dots_in_keys() -> None:
    flat = push_rules.flatten({"content": {"m.mentions": {"room": True}, "a": {"b": 1}}})
    assert flat == {"content.m\\.mentions.room": True, "content.a.b": 1}


@pytest.mark.parametrize(("event", "ctx", "notify", "highlight"), [
    (_message("hello"), CTX, True, False),
    (_message("hello", msgtype="m.notice"), CTX, False, False),
    (_message("hi", **{"m.mentions": {"user_ids": [ME]}}), CTX, True, True),
    (_message("hi", **{"m.mentions": {"room": True}}), CTX, True, False),
    (_message("hi", **{"m.mentions": {"room": True}}),
     push_rules.PushContext(5, 50, {}), True, True),
    (_message("hi", **{"m.mentions": {"room": True}}),
     push_rules.PushContext(5, 10, {"room": 10}), True, True),
    (_message("Mia: lunch?"), CTX, True, False),
    (_message("hi", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}), CTX, False, False),
    ({"type": "m.reaction", "content": {}}, CTX, False, False),
    ({"type": "m.room.encrypted", "content": {}}, push_rules.PushContext(2, 0, {}), True, False),
    ({"type": "m.room.member", "state_key": ME, "content": {"membership": "invite"}}, CTX, True, False),
    ({"type": "m.room.member", "state_key": "@x:hs", "content": {"membership": "join"}}, CTX, False, False),
    ({"type": "m.room.tombstone", "state_key": "", "content": {}}, CTX, True, True),
    ({"type": "m.call.invite", "content": {}}, CTX, True, False),
])
def test_predefined_rules(event: dict[str, Any], ctx: push_rules.PushContext, notify: bool, highlight: bool) -> None:
    assert push_rules.notifies(_actions(event, ctx)) == (notify, highlight)


def test_display_name_condition_matches_whole_words() -> None:
    condition = {"kind": "contains_display_name"}
    assert push_rules.condition_holds(condition, push_rules.flatten(_message("Mia: lunch?")), CTX, "Mia")
    assert not push_rules.condition_holds(condition, push_rules.flatten(_message("Miami trip")), CTX, "Mia")
    assert not push_rules.condition_holds(condition, push_rules.flatten(_message("Mia")), CTX, None)


def test_one_to_one_rooms_ring_with_sound() -> None:
    actions = _actions(_message("hi"), push_rules.PushContext(2, 0, {}))
    assert {"set_tweak": "sound", "value": "default"} in actions


@pytest.mark.parametrize(("condition", "holds"), [
    ({"kind": "event_match", "key": "content.body", "pattern": "HEL*"}, True),
    ({"kind": "event_match", "key": "content.body", "pattern": "hel?"}, False),
    ({"kind": "event_match", "key": "content.missing", "pattern": "*"}, False),
    ({"kind": "event_property_is", "key": "content.n", "value": 1}, True),
    ({"kind": "event_property_is", "key": "content.flag", "value": 1}, False),
    ({"kind": "event_property_contains", "key": "content.tags", "value": "b"}, True),
    ({"kind": "room_member_count", "is": ">=5"}, True),
    ({"kind": "room_member_count", "is": "<5"}, False),
    ({"kind": "room_member_count", "is": "five"}, False),
    ({"kind": "unknown_kind"}, False),
])
def test_conditions(condition: dict[str, Any], holds: bool) -> None:
    flat = push_rules.flatten({"content": {"body": "hello", "n": 1, "flag": True, "tags": ["a", "b"]}})
    assert push_rules.condition_holds(condition, flat, CTX, None) is holds


def test_disabled_rules_are_skipped_and_user_rules_win() -> None:
    rules = push_rules.default_rules(ME)
    rules["content"] = [{"rule_id": "cake", "default": False, "enabled": True, "pattern": "cake",
                         "actions": ["notify", {"set_tweak": "highlight"}]}]
    flat = push_rules.flatten(_message("is there cake?"))
    assert push_rules.notifies(push_rules.evaluate(rules, flat, CTX, None, "!r:hs", "@you:hs")) == (True, True)
    rules["override"][0]["enabled"] = True
    assert push_rules.evaluate(rules, flat, CTX, None, "!r:hs", "@you:hs") == []


@pytest.mark.parametrize("event", [
    _message("hi", **{"m.mentions": {"user_ids": [ME]}}),
    _message("hi", **{"m.mentions": {"user_ids": ["@other:hs"]}}),
    {"type": "m.room.member", "state_key": ME, "content": {"membership": "invite"}},
    {"type": "m.room.member", "state_key": "@other:hs", "content": {"membership": "invite"}},
])
def test_shared_template_matches_filled_rules(event: dict[str, Any]) -> None:
    flat = push_rules.flatten({"room_id": "!r:hs", "sender": "@you:hs", **event})
    filled = push_rules.evaluate(push_rules.default_rules(ME), flat, CTX, None, "!r:hs", "@you:hs")
    shared = push_rules.evaluate(push_rules.DEFAULT_TEMPLATE, flat, CTX, None, "!r:hs", "@you:hs", ME)
    assert shared == filled
