"""Push rules per user, evaluation of every new event for the room's local members, unread counts,
`/notifications` and pushers (client-server API pushrules.yaml, notifications.yaml, pusher.yaml).

Rule sets are cached per user; most members run the shared predefined rules only, so
an event is flattened once and each member costs a few condition checks.
Notifications for users with HTTP pushers go to `PushGateway`.
"""

from __future__ import annotations

import json
from typing import Any

from homeserver.config import Config
from homeserver.services.account_data import AccountData
from homeserver.core import push_rules
from homeserver.core.ids import is_valid_user_id, server_of
from homeserver.core.power_levels import user_level
from homeserver.core.room_versions import get_room_version
from homeserver.errors import MatrixError, bad_json, invalid_param, not_found
from homeserver.services.events import EventStore, Persisted
from homeserver.services.push_gateway import PushGateway
from homeserver.services.rooms import client_event
from homeserver.services.sessions import Requester
from homeserver.storage import events as event_store
from homeserver.storage import push as push_store
from homeserver.storage.database import Database

MAX_NOTIFICATIONS_PAGE = 100


def _validate_actions(actions: Any) -> list[Any]:
    if not isinstance(actions, list):
        raise bad_json("actions must be a list")
    for action in actions:
        if isinstance(action, str):
            if action not in ("notify", "dont_notify", "coalesce"):
                raise bad_json(f"Unknown action {action!r}")
        elif not (isinstance(action, dict) and isinstance(action.get("set_tweak"), str)):
            raise bad_json("Actions are strings or {set_tweak, value} objects")
    return actions


class Push:
    def __init__(
        self, config: Config, database: Database, store: EventStore, account_data: AccountData, gateway: PushGateway
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.account_data = account_data
        self.database = database
        self.store = store
        # A user's rules, or None for users with only the predefined ones (evaluated from one shared
        # template, so idle members cost a dict entry).
        self._rulesets: dict[str, dict[str, list[dict[str, Any]]] | None] = {}
        self._compiled: dict[str, tuple[push_rules.CompiledRule, ...]] = {}

    # --- rule sets -----------------------------------------------------------------------------

    async def ruleset(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        if user_id in self._rulesets:
            cached = self._rulesets[user_id]
            return cached if cached is not None else push_rules.default_rules(user_id)
        defaults = push_rules.default_rules(user_id)
        settings = await push_store.rule_settings(self.database.pool, user_id)
        rows = await push_store.user_rules(self.database.pool, user_id)
        if not settings and not rows:
            self._rulesets[user_id] = None
            return defaults
        custom: dict[str, list[dict[str, Any]]] = {kind: [] for kind in push_rules.KINDS}
        for row in rows:
            rule: dict[str, Any] = {"rule_id": row["rule_id"], "default": False, "enabled": True,
                                    "actions": row["actions"]}
            if row["kind"] == "content":
                rule["pattern"] = row["pattern"]
            elif row["kind"] in ("override", "underride"):
                rule["conditions"] = row["conditions"]
            custom[row["kind"]].append(rule)
        merged: dict[str, list[dict[str, Any]]] = {}
        for kind in push_rules.KINDS:
            if kind == "override":
                rules = defaults[kind][:1] + custom[kind] + defaults[kind][1:]
            else:
                rules = custom[kind] + defaults[kind]
            for rule in rules:
                setting = settings.get((kind, rule["rule_id"]))
                if setting:
                    if setting["enabled"] is not None:
                        rule["enabled"] = setting["enabled"]
                    if setting["actions"] is not None:
                        rule["actions"] = setting["actions"]
            merged[kind] = rules
        self._rulesets[user_id] = merged
        self._compiled[user_id] = push_rules.compile_rules(merged)
        return merged

    async def _changed(self, user_id: str) -> None:
        """Drop the cached rule set and publish the new one as `m.push_rules` account data, which
        clients read from /sync."""
        self._rulesets.pop(user_id, None)
        self._compiled.pop(user_id, None)
        await self.account_data.put_internal(user_id, "", "m.push_rules", {"global": await self.ruleset(user_id)})

    async def _rule(self, user_id: str, kind: str, rule_id: str) -> dict[str, Any]:
        if kind not in push_rules.KINDS:
            raise invalid_param(f"Unknown rule kind {kind!r}")
        for rule in (await self.ruleset(user_id))[kind]:
            if rule["rule_id"] == rule_id:
                return rule
        raise not_found("No such push rule")

    async def get_rule(self, requester: Requester, scope: str, kind: str, rule_id: str) -> dict[str, Any]:
        self._scope(scope)
        return await self._rule(requester.user_id, kind, rule_id)

    @staticmethod
    def _scope(scope: str) -> None:
        if scope != "global":
            raise invalid_param("Only the global scope exists")

    async def put_rule(
        self, requester: Requester, scope: str, kind: str, rule_id: str, body: dict[str, Any],
        before: str | None, after: str | None,
    ) -> None:
        self._scope(scope)
        user_id = requester.user_id
        if kind not in push_rules.KINDS:
            raise invalid_param(f"Unknown rule kind {kind!r}")
        if rule_id.startswith("."):
            raise invalid_param("Rule ids starting with '.' are reserved for predefined rules")
        actions = _validate_actions(body.get("actions"))
        pattern, conditions = None, []
        if kind == "content":
            pattern = body.get("pattern")
            if not isinstance(pattern, str) or not pattern:
                raise bad_json("Content rules need a pattern")
        elif kind in ("override", "underride"):
            conditions = body.get("conditions", [])
            if not isinstance(conditions, list) or not all(isinstance(c, dict) and "kind" in c for c in conditions):
                raise bad_json("conditions must be a list of objects with a kind")
        elif kind == "sender" and not is_valid_user_id(rule_id):
            raise invalid_param("Sender rules are named by user ids")
        existing = [r for r in (await self.ruleset(user_id))[kind] if not r["default"]]
        positions = {r["rule_id"]: i for i, r in enumerate(existing)}
        anchor = before or after
        if anchor is not None and anchor not in positions:
            raise MatrixError(404, "M_UNKNOWN", f"No rule {anchor} to place this one next to")
        if anchor is None:
            position = -1.0  # a rule added (or replaced) without before/after comes first, as in Synapse
        else:
            position = positions[anchor] - 0.5 if before else positions[anchor] + 0.5
        async with self.database.pool.acquire() as conn, conn.transaction():
            others = [r for r in existing if r["rule_id"] != rule_id]
            ordered = sorted([(positions[r["rule_id"]], r["rule_id"]) for r in others] + [(position, rule_id)])
            for index, (_pos, name) in enumerate(ordered):
                if name == rule_id:
                    await push_store.put_rule(conn, user_id, kind, rule_id, index, pattern, conditions, actions)
                else:
                    rule = next(r for r in others if r["rule_id"] == name)
                    await push_store.put_rule(conn, user_id, kind, name, index, rule.get("pattern"),
                                              rule.get("conditions", []), rule["actions"])
        await self._changed(user_id)

    async def delete_rule(self, requester: Requester, scope: str, kind: str, rule_id: str) -> None:
        self._scope(scope)
        rule = await self._rule(requester.user_id, kind, rule_id)
        if rule["default"]:
            raise MatrixError(400, "M_UNKNOWN", "Predefined rules cannot be deleted")
        async with self.database.pool.acquire() as conn, conn.transaction():
            await push_store.delete_rule(conn, requester.user_id, kind, rule_id)
        await self._changed(requester.user_id)

    async def set_enabled(self, requester: Requester, scope: str, kind: str, rule_id: str, body: dict[str, Any]) -> None:
        self._scope(scope)
        await self._rule(requester.user_id, kind, rule_id)
        if not isinstance(body.get("enabled"), bool):
            raise bad_json("enabled must be a boolean")
        await push_store.set_rule_setting(self.database.pool, requester.user_id, kind, rule_id, enabled=body["enabled"])
        await self._changed(requester.user_id)

    async def set_actions(self, requester: Requester, scope: str, kind: str, rule_id: str, body: dict[str, Any]) -> None:
        self._scope(scope)
        await self._rule(requester.user_id, kind, rule_id)
        actions = _validate_actions(body.get("actions"))
        await push_store.set_rule_setting(self.database.pool, requester.user_id, kind, rule_id, actions=actions)
        await self._changed(requester.user_id)

    # --- evaluation ----------------------------------------------------------------------------

    async def evaluate(self, persisted: Persisted) -> None:
        """Record who an event notifies (called after it is persisted)."""
        event, room = persisted.event, persisted.room
        if event.type == "m.room.member" and event.membership != "invite":
            return
        state = await self.store.state_events(
            room, await event_store.current_state(self.database.pool, room.room_nid)
        )
        members = [key[1] for key, e in state.items() if key[0] == "m.room.member" and e.membership == "join"]
        local = [m for m in members if m != event.sender and server_of(m) == self.config.server_name]
        if event.type == "m.room.member" and event.state_key and server_of(event.state_key) == self.config.server_name:
            local = [event.state_key]
        if not local:
            return
        power = state.get(("m.room.power_levels", ""))
        levels = power.content.get("notifications", {}) if power else {}
        ctx = push_rules.PushContext(
            member_count=len(members),
            sender_power=user_level(event.sender, state),
            notification_levels={k: v for k, v in levels.items() if isinstance(v, int)} if isinstance(levels, dict) else {},
        )
        flat = push_rules.flatten({k: v for k, v in event.pdu.items() if k not in ("signatures", "hashes", "unsigned")})
        relates = event.content.get("m.relates_to")
        thread = relates.get("event_id") if isinstance(relates, dict) and relates.get("rel_type") == "m.thread" else None
        await self._load_rulesets(local)
        shared = push_rules.prepare(push_rules.DEFAULT_COMPILED, flat, ctx, room.room_id, event.sender)
        rows = []
        notified: dict[str, list[Any]] = {}
        for user_id in local:
            member = state.get(("m.room.member", user_id))
            display = member.content.get("displayname") if member else None
            compiled = self._compiled.get(user_id)
            prepared = shared if compiled is None else push_rules.prepare(compiled, flat, ctx, room.room_id,
                                                                          event.sender)
            actions = push_rules.evaluate_prepared(prepared, flat, ctx, display, user_id)
            notify, highlight = push_rules.notifies(actions)
            if notify:
                notified[user_id] = actions
                rows.append((persisted.event_nid, user_id, room.room_nid, persisted.stream_ordering, highlight,
                             json.dumps(actions), thread or "main"))
        if not rows:
            return
        await push_store.add_push_actions(self.database.pool, rows)
        sender = state.get(("m.room.member", event.sender))
        self.gateway.schedule(
            client_event(event), notified, sender.content.get("displayname") if sender else None, _room_name(state),
        )

    async def _load_rulesets(self, user_ids: list[str]) -> None:
        """Fill the rule-set cache for many users with one query: most have only predefined rules."""
        missing = [u for u in user_ids if u not in self._rulesets]
        if not missing:
            return
        customised = await push_store.users_with_rules(self.database.pool, missing)
        for user_id in missing:
            if user_id in customised:
                await self.ruleset(user_id)
            else:
                self._rulesets[user_id] = None

    async def unread(self, user_id: str, room_nids: list[int]) -> dict[int, dict[str, tuple[int, int]]]:
        return await push_store.unread_counts(self.database.pool, user_id, room_nids)

    async def notifications(
        self, requester: Requester, from_token: str | None, limit: int, only: str | None
    ) -> dict[str, Any]:
        before = None
        if from_token is not None:
            if not from_token.isdigit():
                raise invalid_param("Invalid from token")
            before = int(from_token)
        rows = await push_store.notifications(self.database.pool, requester.user_id, before,
                                              min(limit, MAX_NOTIFICATIONS_PAGE), only == "highlight")
        result: dict[str, Any] = {"notifications": [
            {"actions": r["actions"],
             "event": client_event(self.store.event_from_row(get_room_version(r["room_version"]), r)),
             "read": r["read"], "room_id": r["room_id"], "ts": r["origin_server_ts"]}
            for r in rows
        ]}
        if len(rows) == min(limit, MAX_NOTIFICATIONS_PAGE):
            result["next_token"] = str(rows[-1]["stream_ordering"])
        return result

    # --- pushers --------------------------------------------------------------------------------

    async def set_pusher(self, requester: Requester, body: dict[str, Any]) -> None:
        for key in ("app_id", "pushkey", "kind"):
            if key not in body:
                raise MatrixError(400, "M_MISSING_PARAM", f"{key} is required")
        for key, limit in (("app_id", 64), ("pushkey", 512)):
            if not isinstance(body[key], str) or not body[key] or len(body[key].encode()) > limit:
                raise invalid_param(f"{key} must be a non-empty string of at most {limit} bytes")
        if body["kind"] is None:
            await push_store.delete_pusher(self.database.pool, requester.user_id, body["app_id"], body["pushkey"])
            return
        for key in ("app_display_name", "device_display_name", "lang"):
            if not isinstance(body.get(key), str):
                raise MatrixError(400, "M_MISSING_PARAM", f"{key} is required")
        if body["kind"] not in ("http", "email"):
            raise invalid_param("kind must be http or email")
        data = body.get("data")
        if not isinstance(data, dict):
            raise bad_json("data must be an object")
        if body["kind"] == "http" and not (isinstance(data.get("url"), str)
                                           and data["url"].endswith("/_matrix/push/v1/notify")):
            raise invalid_param("data.url must be a push gateway's /_matrix/push/v1/notify URL")
        async with self.database.pool.acquire() as conn, conn.transaction():
            await push_store.set_pusher(conn, requester.user_id, requester.device_id, body,
                                        append=body.get("append") is True)

    async def pushers(self, requester: Requester) -> list[dict[str, Any]]:
        return await push_store.list_pushers(self.database.pool, requester.user_id)


def _room_name(state: dict[tuple[str, str], Any]) -> str | None:
    """The name a push shows for the room: its name, else its canonical alias (as Synapse's)."""
    for key, field in ((("m.room.name", ""), "name"), (("m.room.canonical_alias", ""), "alias")):
        event = state.get(key)
        value = event.content.get(field) if event else None
        if isinstance(value, str) and value:
            return value
    return None
