"""Push rules (client-server API "Push Notifications"): the predefined rules and their evaluation.

Pure: a rule set and an event in, actions out. Rules are evaluated in the
spec's order (override, content, room, sender, underride); the first enabled
rule whose conditions all hold decides. Event fields are flattened once per
event so that evaluating for a thousand members is cheap.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Iterable

KINDS = ("override", "content", "room", "sender", "underride")
ME = "[the user's Matrix ID]"

_NOTIFY_SOUND = ["notify", {"set_tweak": "sound", "value": "default"}]

DEFAULT_OVERRIDE: list[dict[str, Any]] = [
    {"rule_id": ".m.rule.master", "default": True, "enabled": False, "conditions": [], "actions": []},
    {"rule_id": ".m.rule.suppress_notices", "default": True, "enabled": True,
     "conditions": [{"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"}], "actions": []},
    {"rule_id": ".m.rule.invite_for_me", "default": True, "enabled": True,
     "conditions": [{"key": "type", "kind": "event_match", "pattern": "m.room.member"},
                    {"key": "content.membership", "kind": "event_match", "pattern": "invite"},
                    {"key": "state_key", "kind": "event_match", "pattern": ME}],
     "actions": _NOTIFY_SOUND},
    {"rule_id": ".m.rule.member_event", "default": True, "enabled": True,
     "conditions": [{"key": "type", "kind": "event_match", "pattern": "m.room.member"}], "actions": []},
    {"rule_id": ".m.rule.is_user_mention", "default": True, "enabled": True,
     "conditions": [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": ME}],
     "actions": [*_NOTIFY_SOUND, {"set_tweak": "highlight"}]},
    {"rule_id": ".m.rule.is_room_mention", "default": True, "enabled": True,
     "conditions": [{"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
                    {"kind": "sender_notification_permission", "key": "room"}],
     "actions": ["notify", {"set_tweak": "highlight"}]},
    {"rule_id": ".m.rule.tombstone", "default": True, "enabled": True,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.tombstone"},
                    {"kind": "event_match", "key": "state_key", "pattern": ""}],
     "actions": ["notify", {"set_tweak": "highlight"}]},
    {"rule_id": ".m.rule.reaction", "default": True, "enabled": True,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.reaction"}], "actions": []},
    {"rule_id": ".m.rule.room.server_acl", "default": True, "enabled": True,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.server_acl"},
                    {"kind": "event_match", "key": "state_key", "pattern": ""}], "actions": []},
    {"rule_id": ".m.rule.suppress_edits", "default": True, "enabled": True,
     "conditions": [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"}],
     "actions": []},
]
DEFAULT_UNDERRIDE: list[dict[str, Any]] = [
    {"rule_id": ".m.rule.call", "default": True, "enabled": True,
     "conditions": [{"key": "type", "kind": "event_match", "pattern": "m.call.invite"}],
     "actions": ["notify", {"set_tweak": "sound", "value": "ring"}]},
    {"rule_id": ".m.rule.encrypted_room_one_to_one", "default": True, "enabled": True,
     "conditions": [{"kind": "room_member_count", "is": "2"},
                    {"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"}],
     "actions": _NOTIFY_SOUND},
    {"rule_id": ".m.rule.room_one_to_one", "default": True, "enabled": True,
     "conditions": [{"kind": "room_member_count", "is": "2"},
                    {"kind": "event_match", "key": "type", "pattern": "m.room.message"}],
     "actions": _NOTIFY_SOUND},
    {"rule_id": ".m.rule.message", "default": True, "enabled": True,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.message"}], "actions": ["notify"]},
    {"rule_id": ".m.rule.encrypted", "default": True, "enabled": True,
     "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"}], "actions": ["notify"]},
]


def default_rules(user_id: str) -> dict[str, list[dict[str, Any]]]:
    """The predefined rules for a user, with their user id filled in."""
    def fill(rule: dict[str, Any]) -> dict[str, Any]:
        rule = copy.deepcopy(rule)
        for condition in rule["conditions"]:
            for field in ("pattern", "value"):
                if condition.get(field) == ME:
                    condition[field] = user_id
        return rule

    return {"override": [fill(r) for r in DEFAULT_OVERRIDE], "content": [], "room": [], "sender": [],
            "underride": [fill(r) for r in DEFAULT_UNDERRIDE]}


_SPLIT_KEY = re.compile(r"(?<!\\)\.")


def flatten(event: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys (dots in names escaped as `\\.`) to values, as conditions address them."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                escaped = str(key).replace("\\", "\\\\").replace(".", "\\.")
                walk(f"{prefix}.{escaped}" if prefix else escaped, inner)
        else:
            flat[prefix] = value

    walk("", event)
    return flat


@dataclass(frozen=True)
class PushContext:
    """What conditions read besides the event: the member count and the sender's power."""

    member_count: int
    sender_power: float
    notification_levels: dict[str, int]


_MEMBER_COUNT = re.compile(r"(==|<=|>=|<|>)?([0-9]+)\Z")


def _glob(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def _word_match(pattern: str, body: str) -> bool:
    regex = re.escape(pattern.lower()).replace(r"\*", r"\S*").replace(r"\?", r"\S")
    return re.search(rf"(^|\W){regex}($|\W)", body.lower()) is not None


def condition_holds(condition: dict[str, Any], flat: dict[str, Any], ctx: PushContext, display_name: str | None) -> bool:
    kind = condition.get("kind")
    if kind == "event_match":
        value = flat.get(condition.get("key", ""))
        pattern = condition.get("pattern")
        return isinstance(value, str) and isinstance(pattern, str) and _glob(pattern, value)
    if kind == "event_property_is":
        value = flat.get(condition.get("key", ""), _MISSING)
        wanted = condition.get("value")
        return value is not _MISSING and type(value) is type(wanted) and value == wanted
    if kind == "event_property_contains":
        container = flat.get(condition.get("key", ""))
        return isinstance(container, list) and condition.get("value") in container
    if kind == "contains_display_name":
        body = flat.get("content.body")
        return bool(display_name) and isinstance(body, str) and _word_match(display_name, body)  # type: ignore[arg-type]
    if kind == "room_member_count":
        match = _MEMBER_COUNT.match(str(condition.get("is", "")))
        if not match:
            return False
        op, number = match.group(1) or "==", int(match.group(2))
        return {"==": ctx.member_count == number, "<": ctx.member_count < number, ">": ctx.member_count > number,
                "<=": ctx.member_count <= number, ">=": ctx.member_count >= number}[op]
    if kind == "sender_notification_permission":
        return ctx.sender_power >= ctx.notification_levels.get(condition.get("key", ""), 50)
    return False


_MISSING = object()


def evaluate(
    rules: dict[str, list[dict[str, Any]]], flat: dict[str, Any], ctx: PushContext, display_name: str | None,
    room_id: str, sender: str,
) -> list[Any]:
    """The actions of the first matching enabled rule (an empty list: do not notify)."""
    for kind in KINDS:
        for rule in rules.get(kind, ()):
            if not rule.get("enabled", True):
                continue
            if kind == "content":
                body = flat.get("content.body")
                if isinstance(body, str) and isinstance(rule.get("pattern"), str) and _word_match(rule["pattern"], body):
                    return list(rule.get("actions", []))
                continue
            if kind == "room":
                if rule["rule_id"] == room_id:
                    return list(rule.get("actions", []))
                continue
            if kind == "sender":
                if rule["rule_id"] == sender:
                    return list(rule.get("actions", []))
                continue
            if all(condition_holds(c, flat, ctx, display_name) for c in rule.get("conditions", [])):
                return list(rule.get("actions", []))
    return []


def notifies(actions: Iterable[Any]) -> tuple[bool, bool]:
    """(notify, highlight) from an action list."""
    actions = list(actions)
    notify = "notify" in actions
    highlight = any(isinstance(a, dict) and a.get("set_tweak") == "highlight" and a.get("value", True) is not False
                    for a in actions)
    return notify, notify and highlight
