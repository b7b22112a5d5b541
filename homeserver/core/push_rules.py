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
from functools import lru_cache
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


DEFAULT_TEMPLATE: dict[str, list[dict[str, Any]]] = {
    "override": DEFAULT_OVERRIDE, "content": [], "room": [], "sender": [], "underride": DEFAULT_UNDERRIDE,
}


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


@lru_cache(maxsize=4096)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def _glob(pattern: str, value: str) -> bool:
    return _glob_regex(pattern).match(value) is not None


@lru_cache(maxsize=4096)
def _word_regex(pattern: str) -> re.Pattern[str]:
    """Globs matched against whole words of a body, as content rules and display names are."""
    inner = re.escape(pattern).replace(r"\*", r"\S*").replace(r"\?", r"\S")
    return re.compile(rf"(?:^|\W){inner}(?:$|\W)", re.IGNORECASE)


def _word_match(pattern: str, body: str) -> bool:
    return _word_regex(pattern).search(body) is not None


def condition_holds(
    condition: dict[str, Any], flat: dict[str, Any], ctx: PushContext, display_name: str | None, user_id: str = ""
) -> bool:
    """Whether a condition holds; the template's user-id placeholder stands for `user_id`."""
    kind = condition.get("kind")
    if kind == "event_match":
        value = flat.get(condition.get("key", ""))
        pattern = condition.get("pattern")
        if pattern == ME:
            return value == user_id
        return isinstance(value, str) and isinstance(pattern, str) and _glob(pattern, value)
    if kind == "event_property_is":
        value = flat.get(condition.get("key", ""), _MISSING)
        wanted = condition.get("value")
        return value is not _MISSING and type(value) is type(wanted) and value == wanted
    if kind == "event_property_contains":
        container = flat.get(condition.get("key", ""))
        wanted = condition.get("value")
        return isinstance(container, list) and (user_id if wanted == ME else wanted) in container
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


def _per_user(condition: dict[str, Any]) -> bool:
    """Conditions whose outcome depends on which member is evaluating."""
    return condition.get("kind") == "contains_display_name" or ME in (condition.get("pattern"), condition.get("value"))


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """An enabled rule split into what is the same for every member and what is not."""

    kind: str
    rule_id: str
    pattern: str | None
    shared: tuple[dict[str, Any], ...]
    per_user: tuple[dict[str, Any], ...]
    actions: tuple[Any, ...]


def compile_rules(rules: dict[str, list[dict[str, Any]]]) -> tuple[CompiledRule, ...]:
    """A rule set in evaluation order, done once per rule change rather than per event."""
    compiled = []
    for kind in KINDS:
        for rule in rules.get(kind, ()):
            if rule.get("enabled", True):
                conditions = rule.get("conditions", []) if kind in ("override", "underride") else []
                pattern = rule.get("pattern")
                compiled.append(CompiledRule(
                    kind, rule["rule_id"], pattern if isinstance(pattern, str) else None,
                    tuple(c for c in conditions if not _per_user(c)), tuple(c for c in conditions if _per_user(c)),
                    tuple(rule.get("actions", [])),
                ))
    return tuple(compiled)


DEFAULT_COMPILED = compile_rules(DEFAULT_TEMPLATE)
Prepared = list[tuple[tuple[dict[str, Any], ...], tuple[Any, ...]]]


def prepare(compiled: tuple[CompiledRule, ...], flat: dict[str, Any], ctx: PushContext, room_id: str,
            sender: str) -> Prepared:
    """Evaluate everything in a rule set that is the same for every member: what is left is, in
    order, the rules still in play with their per-member conditions (empty: the rule matches)."""
    prepared: Prepared = []
    body = flat.get("content.body")
    for rule in compiled:
        kind = rule.kind
        if kind == "content":
            holds = isinstance(body, str) and rule.pattern is not None and _word_match(rule.pattern, body)
        elif kind == "room":
            holds = rule.rule_id == room_id
        elif kind == "sender":
            holds = rule.rule_id == sender
        else:
            holds = all(condition_holds(c, flat, ctx, None) for c in rule.shared)
        if holds:
            prepared.append((rule.per_user, rule.actions))
            if not rule.per_user:
                return prepared
    return prepared


def evaluate_prepared(
    prepared: Prepared, flat: dict[str, Any], ctx: PushContext, display_name: str | None, user_id: str,
) -> list[Any]:
    """One member's actions from a prepared rule set: a few checks per member."""
    for pending, actions in prepared:
        if all(condition_holds(c, flat, ctx, display_name, user_id) for c in pending):
            return list(actions)
    return []


def evaluate(
    rules: dict[str, list[dict[str, Any]]], flat: dict[str, Any], ctx: PushContext, display_name: str | None,
    room_id: str, sender: str, user_id: str = "",
) -> list[Any]:
    """The actions of the first matching enabled rule (an empty list: do not notify)."""
    return evaluate_prepared(prepare(compile_rules(rules), flat, ctx, room_id, sender), flat, ctx, display_name, user_id)


def notifies(actions: Iterable[Any]) -> tuple[bool, bool]:
    """(notify, highlight) from an action list."""
    actions = list(actions)
    notify = "notify" in actions
    highlight = any(isinstance(a, dict) and a.get("set_tweak") == "highlight" and a.get("value", True) is not False
                    for a in actions)
    return notify, notify and highlight
