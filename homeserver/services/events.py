"""The event pipeline: build, authorise and persist events; read them back through caches.

One path for every event (docs/architecture.md): the state before an event
comes from its prev events (state resolution when they disagree), the event
is checked against it, and persisting writes the event, its auth edges, its
state group, the forward extremities, the current state and memberships in
one transaction. Persistence is serialised per room with an asyncio lock;
rooms run in parallel. An event acknowledged to a client is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

from homeserver.core.auth_rules import AuthError, check_auth_rules
from homeserver.core.canonical_json import CanonicalJsonError
from homeserver.core.event_builder import build_event, select_auth_events
from homeserver.core.event_format import MAX_PDU_SIZE
from homeserver.core.events import Event
from homeserver.core.ids import server_of
from homeserver.core.power_levels import CREATE_KEY
from homeserver.core.redaction import redact
from homeserver.core.room_versions import RoomVersion, get_room_version
from homeserver.errors import MatrixError, bad_json, forbidden, not_found
from homeserver.services.server_keys import ServerKeys
from homeserver.state import RoomGraph, resolve
from homeserver.storage import events as event_store
from homeserver.storage import federation as federation_store
from homeserver.storage import rooms as room_store
from homeserver.storage.database import Database

# A state group is written as a full snapshot once its delta chain is this long.
SNAPSHOT_EVERY = 50
EVENT_CACHE_SIZE = 50_000
STATE_CACHE_SIZE = 2_000

Key = tuple[str, str]
# Event types indexed for full-text search: (search key, content field).
SEARCHABLE = {
    "m.room.message": ("content.body", "body"),
    "m.room.name": ("content.name", "name"),
    "m.room.topic": ("content.topic", "topic"),
}


@dataclass(frozen=True, slots=True)
class Room:
    room_nid: int
    room_id: str
    version: RoomVersion


@dataclass(frozen=True, slots=True)
class Persisted:
    event: Event
    event_nid: int
    stream_ordering: int
    room: Room


@dataclass(frozen=True)
class EventSpec:
    """An event to create: type, content and, for state events, the state key."""

    type: str
    content: dict[str, Any]
    state_key: str | None = None


@dataclass(frozen=True)
class _Written:
    """A written event, the state group and state after it, and the event it redacted (for the caches,
    after commit)."""

    persisted: Persisted
    group: int
    state_after: dict[int, int]
    redacted_nid: int | None
    destinations: tuple[str, ...] = ()
    """Other servers the event was queued for (woken after commit)."""


def _authorise(event: Event, state_by_key: dict[Any, Event]) -> None:
    try:
        check_auth_rules(event, state_by_key)
    except AuthError as exc:
        raise forbidden(str(exc)) from None


class _LRU(OrderedDict):  # type: ignore[type-arg]
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


class EventStore:
    """Reads of rooms, events and state groups, with bounded caches."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._rooms: dict[str, Room] = {}
        self._events = _LRU(EVENT_CACHE_SIZE)
        self._groups = _LRU(STATE_CACHE_SIZE)
        self._key_nids: dict[Key, int] = {}
        self._key_names: dict[int, Key] = {}

    async def room(self, room_id: str) -> Room | None:
        room = self._rooms.get(room_id)
        if room is None:
            found = await room_store.get_room(self.database.pool, room_id)
            if found is None:
                return None
            room = self._rooms[room_id] = Room(found[0], room_id, get_room_version(found[1]))
        return room

    async def require_room(self, room_id: str) -> Room:
        room = await self.room(room_id)
        if room is None:
            raise not_found("Unknown room")
        return room

    def remember_room(self, room: Room) -> None:
        self._rooms[room.room_id] = room

    async def events(self, room: Room, nids: Iterable[int]) -> dict[int, Event]:
        found: dict[int, Event] = {}
        missing = []
        for nid in nids:
            event = self._events.get(nid)
            if event is None:
                missing.append(nid)
            else:
                found[nid] = event
        if missing:
            for row in await event_store.events_by_nid(self.database.pool, missing):
                event = self.event_from_row(room.version, row)
                self._events.put(row["event_nid"], event)
                found[row["event_nid"]] = event
        return found

    @staticmethod
    def event_from_row(version: RoomVersion, row: dict[str, Any]) -> Event:
        """The stored event; its redacted form once a redaction applied to it."""
        event = Event.from_json(row["json"].encode("utf-8"), version, event_id=row["event_id"])
        if row.get("redacted_by"):
            return Event(redact(event.pdu, version), version, event_id=event.event_id)
        return event

    def event_of_row(self, version: RoomVersion, row: dict[str, Any]) -> Event:
        """The event of a row just read: the cached copy when there is one (no JSON parsed again);
        a redacted row is always built from the row itself, whatever the cache still holds."""
        if row.get("redacted_by"):
            return self.event_from_row(version, row)
        event = self._events.get(row["event_nid"])
        if event is None:
            event = self.event_from_row(version, row)
            self._events.put(row["event_nid"], event)
        return event

    def forget_event(self, nid: int) -> None:
        self._events.pop(nid, None)

    def cache_event(self, nid: int, event: Event) -> None:
        self._events.put(nid, event)

    async def state_group(self, group_id: int) -> dict[int, int]:
        return dict(await self._cached_group(group_id))

    async def state_entries(self, group_id: int, key_nids: Iterable[int | None]) -> dict[int, int]:
        """A few entries of a state group, without copying the whole map (a big room's is large)."""
        state = await self._cached_group(group_id)
        return {k: state[k] for k in key_nids if k is not None and k in state}

    async def _cached_group(self, group_id: int) -> dict[int, int]:
        state = self._groups.get(group_id)
        if state is None:
            state = await room_store.load_state_group(self.database.pool, group_id)
            self._groups.put(group_id, state)
        return state

    def cache_state_group(self, group_id: int, state: dict[int, int]) -> None:
        self._groups.put(group_id, dict(state))

    async def key_nids(self, keys: Iterable[Key], create: bool = False) -> dict[Key, int]:
        """Nids of state keys (created when `create`, else only the existing ones)."""
        keys = list(keys)
        missing = [k for k in keys if k not in self._key_nids]
        if missing:
            lookup = room_store.intern_state_keys if create else room_store.lookup_state_keys
            for key, nid in (await lookup(self.database.pool, missing)).items():
                self._key_nids[key] = nid
                self._key_names[nid] = key
        return {k: self._key_nids[k] for k in keys if k in self._key_nids}

    async def key_names(self, nids: Iterable[int]) -> dict[int, Key]:
        nids = list(nids)
        missing = [n for n in nids if n not in self._key_names]
        if missing:
            for nid, key in (await room_store.state_key_names(self.database.pool, missing)).items():
                self._key_names[nid] = key
                self._key_nids[key] = nid
        return {n: self._key_names[n] for n in nids}

    async def state_events(self, room: Room, state: dict[int, int]) -> dict[Key, Event]:
        """A state map as (type, state_key) -> Event."""
        names = await self.key_names(state)
        events = await self.events(room, state.values())
        return {names[k]: events[e] for k, e in state.items()}

    async def nids_by_event_id(self, room: Room, nids: Iterable[int]) -> dict[str, int]:
        return {event.event_id: nid for nid, event in (await self.events(room, nids)).items()}


class RoomGraphs:
    """The interned auth graphs (`RoomGraph`) of recently resolved rooms, kept current as events persist.

    A room's state events and their auth edges are loaded once; afterwards each
    persisted state event is appended, so state resolution never walks the
    database. This is the auth-chain index of the design: the edges persist in
    `event_auth`, and the difference is a walk bounded by where the state sets
    differ (docs/architecture.md explains the measurement behind the choice).
    """

    def __init__(self, database: Database, store: EventStore, rooms: int = 16) -> None:
        self.database = database
        self.store = store
        self._graphs: _LRU = _LRU(rooms)

    async def get(self, room: Room) -> tuple[RoomGraph, dict[str, int]]:
        """The room's graph and the map from event id to the database's event nid."""
        cached = self._graphs.get(room.room_nid)
        if cached is None:
            cached = (RoomGraph(room.version), {}, [0])
            self._graphs.put(room.room_nid, cached)
        graph, nid_of_event, last = cached
        rows = await event_store.state_events_with_auth(self.database.pool, room.room_nid, last[0])
        for row in rows:
            event = self.store.event_from_row(room.version, {**row, "redacted_by": None})
            last[0] = row["event_nid"]
            if any(a not in graph.nid_of for a in event.auth_event_ids):
                # Auth events that are not state events of ours (outliers from other servers):
                # their whole auth chain is indexed first, parents before children.
                await self._add_auth_chain(room, graph, nid_of_event, row["event_nid"])
            if any(a not in graph.nid_of for a in event.auth_event_ids):
                continue  # an auth event we never had: the event cannot take part in resolution
            graph.add(event, rejected=row["rejected_reason"] is not None)
            nid_of_event[event.event_id] = row["event_nid"]
        return graph, nid_of_event

    async def _add_auth_chain(self, room: Room, graph: RoomGraph, nid_of_event: dict[str, int], nid: int) -> None:
        chain = await event_store.auth_chain(self.database.pool, [nid])
        pending = [
            (self.store.event_from_row(room.version, {**r, "redacted_by": None}), r)
            for r in await event_store.events_by_nid(self.database.pool, chain) if r["room_nid"] == room.room_nid
        ]
        progress = True
        while pending and progress:
            progress = False
            waiting = []
            for event, row in pending:
                if event.event_id in graph.nid_of:
                    continue
                if all(a in graph.nid_of for a in event.auth_event_ids):
                    graph.add(event, rejected=row["rejected_reason"] is not None)
                    nid_of_event[event.event_id] = row["event_nid"]
                    progress = True
                else:
                    waiting.append((event, row))
            pending = waiting


class EventPipeline:
    def __init__(
        self, database: Database, store: EventStore, server_keys: ServerKeys,
        before_visible: Callable[[Persisted], Awaitable[None]],
        on_persisted: Callable[[Persisted], Awaitable[None]],
    ) -> None:
        self.database = database
        self.store = store
        self.server_keys = server_keys
        # Runs after commit while the event's stream position is still held back from readers
        # (what sync must see together with the event, such as notification counts); then
        # `on_persisted` runs once the position is released (waking syncs).
        self.before_visible = before_visible
        self.on_persisted = on_persisted
        # Wakes the federation sender for destinations an event was queued for.
        self.on_queued: Callable[[Iterable[str]], None] = lambda destinations: None
        self._locks: dict[str, asyncio.Lock] = {}
        self._in_flight: set[int] = set()
        self._committed: int | None = None
        self.graphs = RoomGraphs(database, store)

    async def current_position(self) -> int:
        """The events stream position at and below which every event is committed.

        Positions are handed out before a transaction commits; while one is in
        flight, readers stop just below it, so a later commit of a lower
        position can never slip under a sync token.
        """
        if self._committed is None:
            self._committed = await event_store.last_stream_ordering(self.database.pool)
        if self._in_flight:
            return min(min(self._in_flight) - 1, self._committed)
        return self._committed

    @contextlib.asynccontextmanager
    async def _new_position(self) -> AsyncIterator[int]:
        """The next events stream position, held back from readers until the block is done (a
        failed block releases it unused)."""
        await self.current_position()
        stream = await event_store.next_stream_ordering(self.database.pool)
        self._in_flight.add(stream)
        try:
            yield stream
            self._committed = max(self._committed or 0, stream)
        finally:
            self._in_flight.discard(stream)

    def lock(self, room_id: str) -> asyncio.Lock:
        lock = self._locks.get(room_id)
        if lock is None:
            lock = self._locks[room_id] = asyncio.Lock()
        return lock

    async def state_before(self, room: Room, prev_nids: list[int]) -> tuple[int | None, dict[int, int]]:
        """(state group or None, state) before an event with these prev events."""
        if not prev_nids:
            return None, {}
        rows = await event_store.events_by_nid(self.database.pool, prev_nids)
        groups = sorted({r["state_group"] for r in rows if r["state_group"] is not None})
        if len(groups) == 1:
            return groups[0], await self.store.state_group(groups[0])
        state_sets = [await self.store.state_group(g) for g in groups]
        return None, await self.resolve_state_sets(room, state_sets)

    async def resolve_state_sets(self, room: Room, state_sets: list[dict[int, int]]) -> dict[int, int]:
        """State resolution over the room's interned auth graph (kept in memory, see RoomGraphs)."""
        graph, nid_of_event = await self.graphs.get(room)
        names = await self.store.key_names({k for s in state_sets for k in s})
        events = await self.store.events(room, {n for s in state_sets for n in s.values()})
        graph_sets = [
            {graph.intern_key(names[k]): graph.nid_of[events[e].event_id] for k, e in s.items()} for s in state_sets
        ]
        resolved = resolve(graph, graph_sets)
        keys = await self.store.key_nids([graph.keys[k] for k in resolved], create=True)
        return {keys[graph.keys[k]]: nid_of_event[graph.event_ids[e]] for k, e in resolved.items()}

    def _build(
        self, version: RoomVersion, sender: str, event_type: str, content: dict[str, Any], state_key: str | None,
        redacts: str | None, room_id: str | None, prev_events: list[Event], state_by_key: dict[Any, Event],
    ) -> Event:
        try:
            return self._build_checked(version, sender, event_type, content, state_key, redacts, room_id, prev_events,
                                       state_by_key)
        except CanonicalJsonError as exc:
            raise bad_json(f"Event content is not valid canonical JSON: {exc}") from None

    def _build_checked(
        self, version: RoomVersion, sender: str, event_type: str, content: dict[str, Any], state_key: str | None,
        redacts: str | None, room_id: str | None, prev_events: list[Event], state_by_key: dict[Any, Event],
    ) -> Event:
        event = build_event(
            version,
            server_name=self.server_keys.server_name,
            signing_key=self.server_keys.signing_key,
            sender=sender,
            event_type=event_type,
            content=content,
            origin_server_ts=int(time.time() * 1000),
            room_id=room_id,
            prev_events=prev_events,
            auth_events=select_auth_events(version, event_type, sender, state_key, content, state_by_key),
            state_key=state_key,
            redacts=redacts,
        )
        if len(event.raw) > MAX_PDU_SIZE:
            raise MatrixError(413, "M_TOO_LARGE", "Event is too large")
        return event

    async def create_room_events(
        self, version: RoomVersion, sender: str, new_room_id: str | None, specs: list[EventSpec],
        in_transaction: Callable[[Any, Room], Awaitable[None]] | None = None,
    ) -> list[Persisted]:
        """A new room's first events (the create event first), built, authorised and written in one
        transaction, so that a bad event among them leaves no room behind. `in_transaction` runs in
        that transaction after the events (to claim the room's alias)."""
        async with self.lock(new_room_id or "new room"):
            keys = [(spec.type, spec.state_key) for spec in specs if spec.state_key is not None]
            key_nids = await self.store.key_nids(keys, create=True)
            await self.current_position()
            streams = [await event_store.next_stream_ordering(self.database.pool) for _ in specs]
            self._in_flight.update(streams)
            written: list[_Written] = []
            try:
                async with self.database.pool.acquire() as conn, conn.transaction():
                    room: Room | None = None
                    prev_events: list[Event] = []
                    group: int | None = None
                    state: dict[int, int] = {}
                    state_by_key: dict[Any, Event] = {}
                    nid_of: dict[str, int] = {}
                    for spec, stream in zip(specs, streams):
                        event = self._build(version, sender, spec.type, spec.content, spec.state_key, None,
                                            room.room_id if room else new_room_id, prev_events, state_by_key)
                        if room is not None:
                            _authorise(event, state_by_key)
                        auth_nids = [nid_of[a] for a in event.auth_event_ids]
                        if room is not None and version.room_id_from_create_event:
                            auth_nids.append(nid_of[state_by_key[CREATE_KEY].event_id])
                        key = (spec.type, spec.state_key) if spec.state_key is not None else None
                        step = await self._write_in(
                            conn, room, version, event, [nid_of[e.event_id] for e in prev_events], group, state,
                            auth_nids, key_nids[key] if key else None, stream,
                        )
                        written.append(step)
                        room, group, state = step.persisted.room, step.group, step.state_after
                        prev_events = [event]
                        nid_of[event.event_id] = step.persisted.event_nid
                        if key is not None:
                            state_by_key[key] = event
                    if in_transaction is not None and room is not None:
                        await in_transaction(conn, room)
                for step in written:
                    self._remember(step)
                self._committed = max(self._committed or 0, *streams)
                for step in written:
                    await self.before_visible(step.persisted)
            finally:
                self._in_flight.difference_update(streams)
        for step in written:
            await self.on_persisted(step.persisted)
        return [step.persisted for step in written]

    async def create_event(
        self, room: Room, version: RoomVersion, sender: str, event_type: str, content: dict[str, Any],
        state_key: str | None = None, redacts: str | None = None,
        countersign: Callable[[Event], Awaitable[Event]] | None = None,
    ) -> Persisted:
        """Build, authorise and persist a local event in an existing room (new rooms:
        `create_room_events`). `countersign` replaces the built event by the same event with
        another server's signature added (an invite of a remote user) before it is persisted."""
        async with self.lock(room.room_id):
            prev_nids = await event_store.forward_extremities(self.database.pool, room.room_nid)
            group, state = await self.state_before(room, prev_nids)
            state_by_key = await self.store.state_events(room, state)
            prev_events = list((await self.store.events(room, prev_nids)).values())
            event = self._build(version, sender, event_type, content, state_key, redacts, room.room_id, prev_events,
                                state_by_key)
            _authorise(event, state_by_key)
            if countersign is not None:
                event = await countersign(event)
            by_id = await self.store.nids_by_event_id(room, state.values())
            auth_nids = [by_id[a] for a in event.auth_event_ids]
            if version.room_id_from_create_event:
                auth_nids.append(by_id[state_by_key[CREATE_KEY].event_id])
            return await self._persist(room, version, event, prev_nids, group, state, auth_nids)

    async def store_outliers(
        self, room: Room, events: list[tuple[Event, str | None]], backfilled: bool = False
    ) -> dict[str, int]:
        """Events known by reference only (auth chains, the state of a room we join): stored in
        one transaction without stream position or state group, auth edges to every auth event
        known here. `events` in auth order (auth events before the events they authorise);
        (event, rejected reason). Event id -> nid for every event, known ones included.
        `backfilled`: history from other servers, `events` newest first; the accepted ones get
        positions below every live event, so /messages pages on into them."""
        if not events:
            return {}
        rows = [(e.event_id, e.depth, e.type, e.state_key, e.sender, e.origin_server_ts, e.raw.decode("utf-8"),
                 reason) for e, reason in events]
        async with self.database.pool.acquire() as conn, conn.transaction():
            if backfilled:
                nids = await event_store.insert_backfilled(conn, room.room_nid, rows)
            else:
                nids = await event_store.insert_outliers(conn, room.room_nid, rows)
            cited = {a for e, _r in events for a in e.auth_event_ids} - nids.keys()
            known = {**nids, **(await event_store.event_nids(conn, cited) if cited else {})}
            await event_store.add_auth_edges_bulk(conn, [
                (nids[e.event_id], known[a]) for e, _r in events for a in e.auth_event_ids if a in known
            ])
            if room.version.room_id_from_create_event:
                create_id = "$" + room.room_id[1:]
                create_nid = known.get(create_id) or (await event_store.event_nids(conn, [create_id])).get(create_id)
                if create_nid is not None:
                    await event_store.add_auth_edges_bulk(conn, [
                        (nids[e.event_id], create_nid) for e, _r in events if e.event_id != create_id
                    ])
        for event, reason in events:
            if reason is None:
                self.store.cache_event(nids[event.event_id], event)
        return nids

    async def persist_remote(
        self, room: Room, event: Event, prev_nids: list[int], before_group: int | None, state: dict[int, int],
        auth_nids: list[int], *, rejected_reason: str | None = None, soft_failed: bool = False,
        apply_redaction: bool = False,
    ) -> Persisted:
        """Persist an event another server sent, once its checks are done; the caller holds the
        room's lock. Rejected and soft-failed events are stored outside the timeline. When the
        event does not follow every forward extremity, the room's current state is resolved
        again over the extremities afterwards."""
        key = (event.type, event.state_key) if event.state_key is not None else None
        key_nid = (await self.store.key_nids([key], create=True))[key] if key else None
        if rejected_reason is not None or soft_failed:
            async with self.database.pool.acquire() as conn, conn.transaction():
                written = await self._write_in(
                    conn, room, room.version, event, prev_nids, before_group, state, auth_nids, key_nid, None,
                    rejected_reason=rejected_reason,
                )
            self._remember(written)
            return written.persisted
        extremities = set(await event_store.forward_extremities(self.database.pool, room.room_nid))
        follows_all = extremities <= set(prev_nids)
        async with self._new_position() as stream:
            async with self.database.pool.acquire() as conn, conn.transaction():
                written = await self._write_in(
                    conn, room, room.version, event, prev_nids, before_group, state, auth_nids, key_nid, stream,
                    current="follow" if follows_all else "skip", apply_redaction=apply_redaction,
                )
            self._remember(written)
            if not follows_all:
                await self._resolve_current_state(room, stream)
            await self.before_visible(written.persisted)
        await self.on_persisted(written.persisted)
        return written.persisted

    async def _resolve_current_state(self, room: Room, stream: int) -> None:
        """The current state from every forward extremity (state resolution when they differ),
        with the memberships that changed; `stream` is the position of the event that caused it."""
        extremities = await event_store.forward_extremities(self.database.pool, room.room_nid)
        _group, resolved = await self.state_before(room, extremities)
        current = await event_store.current_state(self.database.pool, room.room_nid)
        changes = {k: v for k, v in resolved.items() if current.get(k) != v}
        if not changes:
            return
        changed = await self.store.events(room, changes.values())
        members = [
            (e.state_key, e.membership, nid, stream) for nid, e in changed.items()
            if e.type == "m.room.member" and e.state_key is not None and e.membership
        ]
        async with self.database.pool.acquire() as conn, conn.transaction():
            await event_store.set_current_state(conn, room.room_nid, changes)
            if members:
                await event_store.set_memberships(conn, room.room_nid, members)  # type: ignore[arg-type]

    async def persist_joined_room(
        self, room: Room, join: Event, state: dict[int, int], auth_nids: list[int], member_rows: list[tuple[str, str, int]],
    ) -> Persisted:
        """Our join to another server's room, after its state and auth chain were stored as
        outliers: the join becomes the only forward extremity, the room's current state the state
        before it plus the join, and every member of that state a room membership. The caller holds
        the room's lock. `member_rows`: (user id, membership, event nid) of the state's members."""
        key = (join.type, join.state_key)
        key_nid = (await self.store.key_nids([key], create=True))[key]  # type: ignore[index]
        async with self._new_position() as stream:
            async with self.database.pool.acquire() as conn, conn.transaction():
                await event_store.set_memberships(conn, room.room_nid, [(*r, stream) for r in member_rows])
                await federation_store.delete_remote_invite(conn, room.room_nid, join.state_key)  # type: ignore[arg-type]
                written = await self._write_in(
                    conn, room, room.version, join, [], None, state, auth_nids, key_nid, stream, current="replace",
                    federate=False,
                )
            self._remember(written)
            await self.before_visible(written.persisted)
        await self.on_persisted(written.persisted)
        return written.persisted

    async def record_membership(
        self, room: Room, user_id: str, membership: str, event_nid: int, invite_state: str | None
    ) -> None:
        """A membership of a local user in a room this server is not in (an invite from another
        server, its rejection, a knock), with the stripped state to show; at a stream position so
        sync reports it."""
        async with self._new_position() as stream, self.database.pool.acquire() as conn, conn.transaction():
            await event_store.set_membership(conn, room.room_nid, user_id, membership, event_nid, stream)
            if invite_state is not None:
                await federation_store.set_remote_invite(conn, room.room_nid, user_id, invite_state)
            else:
                await federation_store.delete_remote_invite(conn, room.room_nid, user_id)

    async def _persist(
        self, room: Room, version: RoomVersion, event: Event, prev_nids: list[int],
        before_group: int | None, state: dict[int, int], auth_nids: list[int],
    ) -> Persisted:
        key = (event.type, event.state_key) if event.state_key is not None else None
        key_nid = (await self.store.key_nids([key], create=True))[key] if key else None
        async with self._new_position() as stream:
            persisted = await self._write(
                room, version, event, prev_nids, before_group, state, auth_nids, key_nid, stream
            )
            await self.before_visible(persisted)
        await self.on_persisted(persisted)
        return persisted

    async def _write(
        self, room: Room, version: RoomVersion, event: Event, prev_nids: list[int], before_group: int | None,
        state: dict[int, int], auth_nids: list[int], key_nid: int | None, stream: int,
    ) -> Persisted:
        async with self.database.pool.acquire() as conn, conn.transaction():
            written = await self._write_in(
                conn, room, version, event, prev_nids, before_group, state, auth_nids, key_nid, stream
            )
        self._remember(written)
        return written.persisted

    async def _queue_for_federation(self, conn: Any, room_nid: int, event: Event, event_nid: int) -> tuple[str, ...]:
        """Queue a local event for every other server in the room (before this event's membership
        change, so a server whose last user leaves still hears of it), and for the server of a
        membership event's target."""
        target = server_of(event.state_key) \
            if event.type == "m.room.member" and event.state_key and event.membership != "invite" else None
        return tuple(await federation_store.enqueue_pdu(conn, event_nid, room_nid, target, self.server_keys.server_name))

    def _remember(self, written: "_Written") -> None:
        """Fill the caches once the transaction that wrote the event has committed."""
        if written.destinations:
            self.on_queued(written.destinations)
        self.store.remember_room(written.persisted.room)
        self.store.cache_event(written.persisted.event_nid, written.persisted.event)
        self.store.cache_state_group(written.group, written.state_after)
        if written.redacted_nid is not None:
            self.store.forget_event(written.redacted_nid)

    async def _write_in(
        self, conn: Any, room: Room | None, version: RoomVersion, event: Event, prev_nids: list[int],
        before_group: int | None, state: dict[int, int], auth_nids: list[int], key_nid: int | None, stream: int | None,
        *, rejected_reason: str | None = None, current: str = "follow", apply_redaction: bool = True,
        federate: bool = True,
    ) -> "_Written":
        """Write one event and everything that follows from it, in the caller's transaction.

        `stream` None: the event is not part of the timeline (rejected or soft-failed). A rejected
        event keeps the state before it and touches nothing else; a soft-failed one gets its state
        group only. `current`: "follow" when the state before the event is the room's current
        state (or several prev events were resolved), "replace" when the room's current state is
        to become the state after the event whatever it was, "skip" when the caller resolves the
        current state itself afterwards.
        """
        if room is None:
            room_nid = await room_store.create_room(conn, event.room_id, version.identifier, event.origin_server_ts)
            room = Room(room_nid, event.room_id, version)
        event_nid = await event_store.insert_event(
            conn, event_id=event.event_id, room_nid=room.room_nid, stream_ordering=stream, depth=event.depth,
            event_type=event.type, state_key=event.state_key, sender=event.sender,
            origin_server_ts=event.origin_server_ts, json=event.raw.decode("utf-8"), rejected_reason=rejected_reason,
        )
        await event_store.add_auth_edges(conn, event_nid, set(auth_nids))
        if rejected_reason is not None:
            key_nid = None
        searchable = SEARCHABLE.get(event.type)
        if stream is not None and searchable is not None and isinstance(event.content.get(searchable[1]), str):
            await event_store.index_for_search(
                conn, event_nid, room.room_nid, stream, searchable[0], event.content[searchable[1]]
            )
        relates = event.content.get("m.relates_to")
        if stream is not None and isinstance(relates, dict) and isinstance(relates.get("rel_type"), str) \
                and isinstance(relates.get("event_id"), str):
            await event_store.add_relation(
                conn, event_nid, room.room_nid, relates["event_id"], relates["rel_type"], event.type,
                event.sender, stream,
            )
        after = dict(state)
        group = before_group
        if key_nid is not None or group is None:
            if key_nid is not None:
                after[key_nid] = event_nid
            chain = await room_store.state_group_chain_length(conn, group) if group is not None else 0
            if group is not None and chain < SNAPSHOT_EVERY and key_nid is not None:
                group = await room_store.create_state_group(
                    conn, room.room_nid, group, chain + 1, {key_nid: event_nid}
                )
            else:
                group = await room_store.create_state_group(conn, room.room_nid, None, 0, after)
        await event_store.set_state_group(conn, event_nid, group)  # type: ignore[arg-type]
        if stream is None:
            return _Written(Persisted(event, event_nid, 0, room), group, after, None)  # type: ignore[arg-type]
        await event_store.replace_forward_extremities(conn, room.room_nid, prev_nids, event_nid)
        destinations: tuple[str, ...] = ()
        if federate and server_of(event.sender) == self.server_keys.server_name:
            destinations = await self._queue_for_federation(conn, room.room_nid, event, event_nid)
        if current != "skip":
            # One prev event: the state before it is the current state. Several: the
            # resolved state replaces the current one.
            if current == "follow" and len(prev_nids) <= 1:
                previous = state
            else:
                previous = await event_store.current_state(conn, room.room_nid)
            changes = {k: v for k, v in after.items() if previous.get(k) != v}
            if changes:
                await event_store.set_current_state(conn, room.room_nid, changes)
        if event.type == "m.room.member" and event.state_key is not None and event.membership:
            await event_store.set_membership(
                conn, room.room_nid, event.state_key, event.membership, event_nid, stream  # type: ignore[arg-type]
            )
        redacted = None
        if apply_redaction and event.type == "m.room.redaction" and event.redacts is not None:
            redacted = await event_store.apply_redaction(conn, room.room_nid, event.redacts, event.event_id)
        return _Written(Persisted(event, event_nid, stream, room), group, after, redacted,  # type: ignore[arg-type]
                        destinations)
