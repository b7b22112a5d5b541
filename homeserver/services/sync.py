"""`GET /sync`: what changed for a user since a token, long-polling until something does.

A token is `s<events position>_<account data position>`, positions of the two
streams as of the response, so it survives restarts. The waiter is
registered before the streams are read, so nothing persisted in between is
missed; every position is read once per response, so nothing is duplicated.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from typing import Any

import orjson

from homeserver.core.events import Event
from homeserver.errors import bad_json, invalid_param, not_found
from homeserver.services.e2ee import EndToEnd
from homeserver.services.ephemeral import Receipts, Typing
from homeserver.services.events import EventPipeline, EventStore, Room
from homeserver.services.filters import DEFAULT_TIMELINE_LIMIT, Filter
from homeserver.services.lazy_members import SentMembers
from homeserver.services.notifier import Notifier
from homeserver.services.presence import Presence
from homeserver.services.push import Push
from homeserver.services.rooms import Rooms, client_event
from homeserver.services.sessions import Requester
from homeserver.services.stripped_state import stripped, stripped_state
from homeserver.storage import account_data as account_data_store
from homeserver.storage import e2ee as e2ee_store
from homeserver.storage import events as event_store
from homeserver.storage import federation as federation_store
from homeserver.storage.database import Database

MAX_TIMEOUT_MS = 5 * 60 * 1000
MAX_TO_DEVICE_PER_SYNC = 100
MAX_TIMELINE_FILL_ROUNDS = 4


@dataclass
class _Prefetch:
    """What sync reads for many rooms at once: timelines (newest first), state groups at
    (room, position), current states."""

    timelines: dict[int, list[dict[str, Any]]]
    groups: dict[tuple[int, int], int | None]
    current: dict[int, dict[int, int]]
    txns: dict[str, str] | None = None
    bundles: dict[str, dict[str, Any]] | None = None
    unread: dict[int, dict[str, tuple[int, int]]] | None = None


@dataclass(frozen=True)
class SyncToken:
    events: int
    account_data: int
    receipts: int
    typing: int
    presence: int
    device_lists: int
    to_device: int

    def __str__(self) -> str:
        return (f"s{self.events}_{self.account_data}_{self.receipts}_{self.typing}_{self.presence}"
                f"_{self.device_lists}_{self.to_device}")

    @classmethod
    def parse(cls, raw: str) -> "SyncToken":
        parts = raw[1:].split("_") if raw.startswith("s") else []
        if len(parts) != 7 or not all(p.isdigit() for p in parts):
            raise invalid_param(f"Invalid sync token {raw!r}")
        return cls(*(int(p) for p in parts))


def _has_news(entry: dict[str, Any]) -> bool:
    """Whether a room's sync entry carries anything (unread counts alone do not count, as in Synapse)."""
    return bool(entry["timeline"]["events"] or entry["state"]["events"] or entry["ephemeral"]["events"]
                or entry["account_data"]["events"])


class Sync:
    def __init__(
        self, database: Database, store: EventStore, pipeline: EventPipeline, notifier: Notifier,
        typing: Typing, receipts: Receipts, rooms: Rooms, presence: Presence, push: Push, e2ee: EndToEnd,
    ) -> None:
        self.e2ee = e2ee
        self.push = push
        self.rooms = rooms
        self.presence = presence
        self.database = database
        self.store = store
        self.pipeline = pipeline
        self.notifier = notifier
        self.typing = typing
        self.receipts = receipts
        self.sent_members = SentMembers()

    async def create_filter(self, requester: Requester, definition: dict[str, Any]) -> str:
        Filter.parse(definition)
        return str(await event_store.add_filter(self.database.pool, requester.user_id, json.dumps(definition)))

    async def get_filter(self, requester: Requester, filter_id: str) -> dict[str, Any]:
        stored = await event_store.get_filter(self.database.pool, requester.user_id, int(filter_id)) \
            if filter_id.isdigit() else None
        if stored is None:
            raise not_found("No such filter")
        return json.loads(stored)

    async def load_filter(self, requester: Requester, raw_filter: str | None) -> Filter:
        if raw_filter is None:
            return Filter()
        if raw_filter.startswith("{"):
            try:
                definition = json.loads(raw_filter)
            except ValueError:
                raise bad_json("filter is not valid JSON") from None
        else:
            if not raw_filter.isdigit():
                raise invalid_param("Unknown filter")
            stored = await event_store.get_filter(self.database.pool, requester.user_id, int(raw_filter))
            if stored is None:
                raise invalid_param("Unknown filter")
            definition = json.loads(stored)
        return Filter.parse(definition)

    async def sync(
        self, requester: Requester, since: str | None, timeout_ms: int, full_state: bool, raw_filter: str | None,
        set_presence: str = "online",
    ) -> dict[str, Any]:
        token = SyncToken.parse(since) if since else None
        sync_filter = await self.load_filter(requester, raw_filter)
        if set_presence != "offline":
            # A client syncing with set_presence=offline leaves the user's presence alone (as Synapse).
            await self.presence.set(requester.user_id, set_presence, keep_message=True, from_sync=True)
        timeout_ms = max(0, min(timeout_ms, MAX_TIMEOUT_MS))
        waiter = self.notifier.listen(requester.user_id)
        try:
            result, changed = await self._build(requester, token, sync_filter, full_state)
            if not changed and token is not None and timeout_ms > 0:
                try:
                    await asyncio.wait_for(asyncio.shield(waiter), timeout_ms / 1000)
                except asyncio.TimeoutError:
                    pass
                else:
                    result, _changed = await self._build(requester, token, sync_filter, full_state)
            return result
        finally:
            self.notifier.forget(requester.user_id, waiter)

    async def current_token(self) -> str:
        """A token meaning "now" (where the event stream starts when a client gives none)."""
        return str(await self._current())

    async def _current(self) -> SyncToken:
        """Positions read under each stream's lock (see `Database.stream_lock`): no write in flight."""
        events = await self.pipeline.current_position()
        pool, lock = self.database.pool, self.database.stream_lock
        async with lock("account_data"):
            account = await account_data_store.last_account_data_position(pool)
        async with lock("device_lists"):
            device_lists = await e2ee_store.last_device_list_position(pool)
        async with lock("to_device"):
            to_device = await e2ee_store.last_to_device_position(pool)
        return SyncToken(events, account, await self.receipts.position(), self.typing.serial, self.presence.serial,
                         device_lists, to_device)

    async def _build(
        self, requester: Requester, since: SyncToken | None, sync_filter: Filter, full_state: bool
    ) -> tuple[dict[str, Any], bool]:
        now = await self._current()
        pool = self.database.pool
        user_id = requester.user_id
        joined: dict[str, Any] = {}
        invited: dict[str, Any] = {}
        left: dict[str, Any] = {}
        knocked: dict[str, Any] = {}
        room_filter = sync_filter.room
        current_joins = {
            m["room_id"]: m for m in await event_store.rooms_of_user(pool, user_id, ("join",))
            if m["stream_ordering"] <= now.events and room_filter.includes(m["room_id"])
        }
        if since is None:
            self.sent_members.forget((user_id, requester.device_id))
            memberships = ("invite", "knock", "leave", "ban") if room_filter.include_leave else ("invite", "knock")
            changes = await event_store.rooms_of_user(pool, user_id, memberships)
            active: set[int] = set()
        else:
            changes = await event_store.membership_changes_since(pool, user_id, since.events)
            active = await event_store.rooms_with_events_since(
                pool, [m["room_nid"] for m in current_joins.values()], since.events
            )
        account = await account_data_store.account_data_since(pool, user_id, since.account_data if since else 0)
        account = [a for a in account if a[3] <= now.account_data]
        room_data: dict[str, list[dict[str, Any]]] = {}
        for room_id, data_type, content, _stream in account:
            if room_id and room_filter.account_data.allows(data_type, room_id=room_id):
                room_data.setdefault(room_id, []).append({"type": data_type, "content": content})
        receipt_events = await self.receipts.receipt_events(
            user_id, {m["room_nid"]: room_id for room_id, m in current_joins.items()},
            since.receipts if since else 0, now.receipts,
        )
        fresh_joins = {m["room_id"] for m in changes if m["membership"] == "join" and m["stream_ordering"] <= now.events}
        if since is not None:
            # A new member event of someone already joined (a new display name) is no new join.
            fresh_joins = {r for r in fresh_joins if not await self._was_joined(r, user_id, since.events)}
        ignored = await self.rooms.account_data.ignored_users(user_id)
        included: list[tuple[Room, SyncToken | None, list[dict[str, Any]]]] = []
        for room_id, membership in current_joins.items():
            ephemeral = [e for e in (self.typing.typing_event(room_id, since.typing if since else None),
                                     receipt_events.get(room_id))
                         if e and room_filter.ephemeral.allows(e["type"], room_id=room_id)]
            fresh = since is None or full_state or room_id in fresh_joins
            if fresh or membership["room_nid"] in active or ephemeral or room_id in room_data:
                included.append((await self.store.require_room(room_id), None if fresh else since, ephemeral))
        prefetched = await self._prefetch(
            [(room, room_since) for room, room_since, _e in included], now.events, sync_filter
        )
        prefetched.txns = await self._transaction_ids(requester, prefetched)
        prefetched.unread = await self.push.unread(user_id, [room.room_nid for room, _s, _e in included])
        prefetched.bundles = await self.rooms.bundled_aggregations_of(
            requester, [(room, [r for r in prefetched.timelines[room.room_nid] if not r.get("redacted_by")])
                        for room, _since, _e in included],
        )
        for room, room_since, ephemeral in included:
            entry = await self._room(requester, room, room_since, now.events, sync_filter, ignored, True,
                                     since is not None, prefetched)
            entry["ephemeral"] = {"events": ephemeral}
            entry["account_data"] = {"events": room_data.get(room.room_id, [])}
            if since is not None and room.room_id in fresh_joins:
                # The client has none of a newly joined room's history: there is always more to page.
                entry["timeline"]["limited"] = True
            if full_state or _has_news(entry):
                joined[room.room_id] = entry
        for row in changes:
            if row["stream_ordering"] > now.events or row["room_id"] in current_joins \
                    or not room_filter.includes(row["room_id"]):
                continue
            room = await self.store.require_room(row["room_id"])
            if row["membership"] == "invite":
                invite = (await self.store.events(room, [row["event_nid"]]))[row["event_nid"]]
                if invite.sender in ignored:
                    continue
                invited[room.room_id] = {"invite_state": {"events": await self._stripped_state(room, row["event_nid"], requester.user_id)}}
            elif row["membership"] == "knock":
                knocked[room.room_id] = {"knock_state": {"events": await self._stripped_state(room, row["event_nid"], requester.user_id)}}
            elif row["membership"] in ("leave", "ban") and (since is not None or room_filter.include_leave):
                # Joined and left since the last sync: the client never had this room's state.
                room_since = since if since is None or await self._was_joined(room.room_id, user_id, since.events) \
                    or not await self._was_joined(room.room_id, user_id, row["stream_ordering"] - 1) else None
                left[room.room_id] = await self._room(requester, room, room_since, row["stream_ordering"], sync_filter,
                                                      ignored, False, since is not None)
        global_data = [{"type": t, "content": c} for room_id, t, c, _s in account
                       if room_id == "" and sync_filter.account_data.allows(t)]
        if since is None and sync_filter.account_data.allows("m.push_rules") \
                and not any(d["type"] == "m.push_rules" for d in global_data):
            global_data.append({"type": "m.push_rules", "content": {"global": await self.push.ruleset(user_id)}})
        newly_met: set[str] = set()
        if since is not None:
            # Presence of whom the user has just met: everyone in a room they joined, and whoever
            # joined one of their rooms (as Synapse sends it, changed or not).
            for room, _since, _e in included:
                if room.room_id in fresh_joins:
                    newly_met.update(await event_store.members_of(pool, room.room_nid, ("join",)))
            newly_met.update(e["state_key"] for entry in joined.values() for e in entry["timeline"]["events"]
                             if e.get("type") == "m.room.member" and isinstance(e.get("state_key"), str)
                             and e.get("content", {}).get("membership") == "join")
            newly_met.discard(user_id)
        presence = [e for e in await self.presence.events_since(user_id, since.presence if since else None, newly_met)
                    if sync_filter.presence.allows(e["type"], e["sender"])]
        to_device = await e2ee_store.to_device_for(
            pool, user_id, requester.device_id, since.to_device if since else 0, MAX_TO_DEVICE_PER_SYNC
        )
        if to_device:
            now = replace(now, to_device=to_device[-1][0])
        device_changes: list[str] = []
        device_left: list[str] = []
        if since is not None:
            sharers = await event_store.users_sharing_rooms(pool, user_id)
            changed_keys = await e2ee_store.device_list_changes_since(
                pool, user_id, sorted(sharers), since.device_lists, now.device_lists
            )
            newly, gone = await self.e2ee.sharing_changes(user_id, sharers, since.events, now.events)
            device_changes, device_left = sorted(changed_keys | newly), sorted(gone)
        changed = bool(joined or invited or left or knocked or global_data or presence or to_device or device_changes
                       or device_left)
        response = {
            "next_batch": str(now),
            "rooms": {"join": joined, "invite": invited, "leave": left, "knock": knocked},
            "account_data": {"events": global_data},
            "presence": {"events": presence},
            "to_device": {"events": [message for _stream, message in to_device]},
            "device_lists": {"changed": device_changes, "left": device_left},
            "device_one_time_keys_count": {
                "signed_curve25519": 0, **await e2ee_store.count_one_time_keys(pool, user_id, requester.device_id)
            },
            "device_unused_fallback_key_types": await e2ee_store.unused_fallback_key_types(
                pool, user_id, requester.device_id
            ),
        }
        return response, changed

    async def _prefetch(self, rooms: list[tuple[Room, SyncToken | None]], upto: int, sync_filter: Filter) -> _Prefetch:
        """One query each for the timelines, the state groups and the current states of all rooms."""
        if not rooms:
            return _Prefetch({}, {}, {})
        pool = self.database.pool
        timeline_filter = sync_filter.room.timeline
        limit = DEFAULT_TIMELINE_LIMIT if timeline_filter.limit is None else timeline_filter.limit
        timelines = await event_store.timelines(
            pool, [(room.room_nid, since.events if since else -1) for room, since in rooms], upto, limit + 1,
            types=timeline_filter.types, not_types=timeline_filter.not_types,
        )
        positions = []
        for room, since in rooms:
            rows = timelines[room.room_nid][:limit]
            positions.append((room.room_nid, (rows[-1]["stream_ordering"] if rows else upto + 1) - 1))
            if since is not None:
                positions.append((room.room_nid, since.events))
        groups = await event_store.state_groups_at(pool, positions)
        current = await event_store.current_states(pool, [room.room_nid for room, _since in rooms])
        return _Prefetch(timelines, groups, current)

    async def _transaction_ids(self, requester: Requester, prefetched: _Prefetch) -> dict[str, str]:
        event_ids = [r["event_id"] for rows in prefetched.timelines.values() for r in rows]
        return await event_store.txn_ids_for_events(self.database.pool, requester.user_id, requester.device_id, event_ids)

    async def _room(
        self, requester: Requester, room: Room, since: SyncToken | None, upto: int, sync_filter: Filter,
        ignored: set[str], joined_now: bool, incremental: bool, prefetched: _Prefetch | None = None,
    ) -> dict[str, Any]:
        if prefetched is None:
            prefetched = await self._prefetch([(room, since)], upto, sync_filter)
        timeline_filter, state_filter = sync_filter.room.timeline, sync_filter.room.state
        limit = DEFAULT_TIMELINE_LIMIT if timeline_filter.limit is None else timeline_filter.limit
        rows = prefetched.timelines[room.room_nid]
        limited = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        current_nids = set(prefetched.current[room.room_nid].values())
        visible = await self.rooms.visible_rows(requester, room, rows, ignored, joined_now, current_nids)
        visible = [r for r in visible if timeline_filter.allows(r["type"], r["sender"], room.room_id)]
        extended = False
        for _round in range(MAX_TIMELINE_FILL_ROUNDS):
            # History visibility or ignored senders hid part of a limited timeline: fill it from
            # further back (as Synapse, a few rounds at most).
            if not limited or len(visible) >= limit or not rows:
                break
            batch = max(2 * limit, 10)
            older = await event_store.room_events(
                self.database.pool, room.room_nid, since.events if since else -1, rows[0]["stream_ordering"] - 1,
                batch + 1, True, timeline_filter.types, timeline_filter.not_types,
            )
            limited = len(older) > batch
            rows = list(reversed(older[:batch]))
            shown = await self.rooms.visible_rows(requester, room, rows, ignored, joined_now, current_nids)
            visible = [r for r in shown if timeline_filter.allows(r["type"], r["sender"], room.room_id)] + visible
            extended = True
        if len(visible) > limit:
            visible, limited = visible[-limit:], True
        # The state is what holds at the start of the timeline as returned (after filtering): state
        # events the filter kept out of the timeline are in it (as Synapse computes it).
        first = visible[0]["stream_ordering"] if visible else upto + 1
        state_at_start = await self._state_at(prefetched, room, first - 1)
        if since is None:
            state = state_at_start
        else:
            before = await self._state_at(prefetched, room, since.events)
            state = {k: v for k, v in state_at_start.items() if before.get(k) != v}
        current = await self.store.state_events(room, prefetched.current[room.room_nid])
        lazy = state_filter.lazy_load_members or timeline_filter.lazy_load_members
        if lazy:
            state = await self._lazy_members(requester, visible, state, state_at_start, full=since is None)
        state_events = [
            e for e in (await self.store.events(room, state.values())).values()
            if state_filter.allows(e.type, e.sender, room.room_id, e.content)
        ]
        timeline = await self.rooms.client_events(requester, room, visible, *(
            (None, None) if extended else (prefetched.txns, prefetched.bundles)))
        joined = sorted(k[1] for k, e in current.items() if k[0] == "m.room.member" and e.membership == "join")
        invited = sorted(k[1] for k, e in current.items() if k[0] == "m.room.member" and e.membership == "invite")
        summary: dict[str, Any] = {"m.joined_member_count": len(joined), "m.invited_member_count": len(invited)}
        if ("m.room.name", "") not in current and ("m.room.canonical_alias", "") not in current:
            summary["m.heroes"] = [u for u in joined + invited if u != requester.user_id][:5]
        if lazy:
            heroes = [current[("m.room.member", u)] for u in summary.get("m.heroes", ())]
            state_events = self._without_sent_members(
                requester, visible, state_events,
                [h for h in heroes if state_filter.allows(h.type, h.sender, room.room_id, h.content)],
                incremental, state_filter.include_redundant_members,
            )
        if sync_filter.federation_format or sync_filter.event_fields is not None:
            pdus = {r["event_id"]: orjson.loads(r["json"]) for r in visible} if sync_filter.federation_format else {}
            timeline = [sync_filter.shape(e, pdus.get(e["event_id"], {})) for e in timeline]
        prev_batch = first - 1
        if since is None and not incremental and not limited:
            # Synapse's quirk, which clients and SyTest rely on: an initial sync holding the room's
            # whole history points prev_batch at its end, so /messages from it returns that history.
            prev_batch = upto
        return {
            "timeline": {"events": timeline, "limited": limited, "prev_batch": f"t{prev_batch}"},
            "state": {"events": [sync_filter.shape(client_event(e), e.pdu) for e in state_events]},
            "ephemeral": {"events": []},
            "account_data": {"events": []},
            "summary": summary,
            **self._unread(prefetched, room, sync_filter),
        }

    async def _lazy_members(
        self, requester: Requester, visible: list[dict[str, Any]], state: dict[int, int],
        state_at_start: dict[int, int], full: bool,
    ) -> dict[int, int]:
        """Lazy-loaded state: every membership change the state already holds (an incremental
        sync's gap), plus the membership, as of the timeline's start, of each sender the timeline
        does not introduce itself; a full sync keeps only those memberships (and the user's own)."""
        wanted = {requester.user_id} if full else set()
        introduced: set[str] = set()
        for row in visible:
            if row["sender"] not in introduced:
                wanted.add(row["sender"])
            if row["type"] == "m.room.member" and row["state_key"] is not None:
                introduced.add(row["state_key"])
        names = await self.store.key_names(set(state) | set(state_at_start))
        kept = {k: v for k, v in state.items() if not (full and names[k][0] == "m.room.member")}
        kept.update({k: v for k, v in state_at_start.items()
                     if names[k][0] == "m.room.member" and names[k][1] in wanted})
        return kept

    def _without_sent_members(
        self, requester: Requester, visible: list[dict[str, Any]], state_events: list[Event], heroes: list[Event],
        incremental: bool, include_redundant: bool,
    ) -> list[Event]:
        """The heroes' memberships join the state (clients name rooms from them); members this
        device already has are left out of an incremental sync unless the filter asks for them."""
        device = (requester.user_id, requester.device_id)
        in_timeline = {r["state_key"]: r["event_id"] for r in visible if r["type"] == "m.room.member"}
        present = {e.state_key for e in state_events if e.type == "m.room.member"} | set(in_timeline)
        for hero in heroes:
            if hero.state_key not in present \
                    and not self.sent_members.already_sent(device, hero.state_key or "", hero.event_id):
                state_events.append(hero)
        if include_redundant:
            return state_events
        if incremental:
            state_events = [e for e in state_events if e.type != "m.room.member"
                            or not self.sent_members.already_sent(device, e.state_key or "", e.event_id)]
        self.sent_members.record(device, {
            **{e.state_key or "": e.event_id for e in state_events if e.type == "m.room.member"}, **in_timeline
        })
        return state_events

    async def _was_joined(self, room_id: str, user_id: str, position: int) -> bool:
        room = await self.store.require_room(room_id)
        group = await event_store.state_group_at(self.database.pool, room.room_nid, position)
        key = await self.store.key_nids([("m.room.member", user_id)])
        if group is None or not key:
            return False
        member_key = next(iter(key.values()))
        nid = (await self.store.state_entries(group, [member_key])).get(member_key)
        return nid is not None and (await self.store.events(room, [nid]))[nid].membership == "join"

    async def _state_at(self, prefetched: _Prefetch, room: Room, position: int) -> dict[int, int]:
        """The room's state after its last event at or before a stream position."""
        key = (room.room_nid, position)
        if key in prefetched.groups:
            group = prefetched.groups[key]
        else:
            group = await event_store.state_group_at(self.database.pool, room.room_nid, position)
        return await self.store.state_group(group) if group is not None else {}

    @staticmethod
    def _unread(prefetched: _Prefetch, room: Room, sync_filter: Filter) -> dict[str, Any]:
        """`unread_notifications` (and per thread when the filter asks for it)."""
        counts = (prefetched.unread or {}).get(room.room_nid, {})
        if not sync_filter.room.timeline.unread_thread_notifications:
            total = (sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values()))
            return {"unread_notifications": {"notification_count": total[0], "highlight_count": total[1]}}
        main = counts.get("main", (0, 0))
        return {
            "unread_notifications": {"notification_count": main[0], "highlight_count": main[1]},
            "unread_thread_notifications": {
                thread: {"notification_count": c[0], "highlight_count": c[1]}
                for thread, c in counts.items() if thread != "main"
            },
        }

    async def _stripped_state(self, room: Room, invite_nid: int, user_id: str) -> list[dict[str, Any]]:
        """The room as an invited or knocking user sees it: as the inviting server described it
        when we are not in the room, else from its current state; their own membership event last."""
        remote = await federation_store.remote_invite_state(self.database.pool, room.room_nid, user_id)
        if remote is not None:
            return orjson.loads(remote)
        state = await event_store.current_state(self.database.pool, room.room_nid)
        found = stripped_state(await self.store.state_events(room, state))
        invite = (await self.store.events(room, [invite_nid]))[invite_nid]
        found.append(stripped(invite))
        return found
