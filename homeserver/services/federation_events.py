"""Events from other servers: the remote half of the event pipeline, and the event endpoints we serve.

Every PDU another server gives us goes through `receive_pdu` (server-server
API, Checks performed on receipt of a PDU): format, signatures (keyring) and
content hash (a mismatch keeps the redacted form); its auth events, fetched
with `/event_auth` when unknown and stored as outliers; the authorization
rules against its auth events (else stored rejected); its prev events,
fetched with `/get_missing_events` up to a bound, else the state at the gap
fetched with `/state_ids`; the rules against the state before it (else
rejected) and against the room's current state (else soft-failed); then the
pipeline persists it like a local event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Iterable

from homeserver.core.auth_rules import AuthError, check_auth_events, check_auth_rules
from homeserver.core.event_format import FormatError
from homeserver.core.events import Event
from homeserver.core.ids import server_of
from homeserver.core.pdu_checks import check_remote_pdu
from homeserver.core.power_levels import CREATE_KEY, InvalidPowerLevel, StateMap, named_level, user_level
from homeserver.core.room_versions import RoomVersion
from homeserver.core.server_acl import server_allowed
from homeserver.core.signing import SignatureError
from homeserver.errors import MatrixError, forbidden, not_found
from homeserver.federation.client import FederationClient, FederationError, Unreachable, encode_path
from homeserver.federation.keyring import Keyring
from homeserver.services.events import EventPipeline, EventStore, Room
from homeserver.storage import events as event_store
from homeserver.storage import federation as federation_store
from homeserver.storage.database import Database

logger = logging.getLogger(__name__)

# How many missing prev events we ask for before falling back to the state at the gap.
MISSING_EVENTS_LIMIT = 10
# At most this many events fetched one by one in parallel.
FETCH_CONCURRENCY = 10
# Batches at least this big are verified on two threads.
PARALLEL_VERIFY_FROM = 200
SERVER_ACL_KEY = ("m.room.server_acl", "")


class PduError(Exception):
    """A PDU was dropped (bad format or signature, unknown room, denied server)."""


def _wanted_keys(pdus: Iterable[Any]) -> dict[str, set[str]]:
    """Key ids of the servers whose signatures the PDUs carry (only those needed are checked)."""
    wanted: dict[str, set[str]] = {}
    for pdu in pdus:
        signatures = pdu.get("signatures") if isinstance(pdu, dict) else None
        if not isinstance(signatures, dict):
            continue
        servers = {server_of(str(pdu.get("sender", "")))}
        if isinstance(pdu.get("event_id"), str):
            servers.add(server_of(pdu["event_id"]))
        content = pdu.get("content")
        if isinstance(content, dict) and isinstance(content.get("join_authorised_via_users_server"), str):
            servers.add(server_of(content["join_authorised_via_users_server"]))
        for server in servers:
            sigs = signatures.get(server)
            if isinstance(sigs, dict):
                wanted.setdefault(server, set()).update(k for k in sigs if isinstance(k, str))
    return wanted


class FederationEvents:
    def __init__(
        self, server_name: str, database: Database, store: EventStore, pipeline: EventPipeline, keyring: Keyring,
        client: FederationClient,
    ) -> None:
        self.server_name = server_name
        self.database = database
        self.store = store
        self.pipeline = pipeline
        self.keyring = keyring
        self.client = client

    # ---- checks ---------------------------------------------------------------------------

    async def verify(self, pdus: list[Any], version: RoomVersion) -> list[Event | str]:
        """Format, signatures and content hash of each PDU: the event, or why it was dropped.
        Big batches (a room's state) are split over two worker threads: the signature checks
        run without the GIL, so both cores work."""
        await self.keyring.prefetch(_wanted_keys(pdus))
        if len(pdus) < PARALLEL_VERIFY_FROM:
            return self._check_all(pdus, version)
        half = len(pdus) // 2
        first, second = await asyncio.gather(
            asyncio.to_thread(self._check_all, pdus[:half], version),
            asyncio.to_thread(self._check_all, pdus[half:], version),
        )
        return first + second

    def _check_all(self, pdus: list[Any], version: RoomVersion) -> list[Event | str]:
        results: list[Event | str] = []
        for pdu in pdus:
            try:
                results.append(check_remote_pdu(pdu, version, self.keyring.lookup).event)
            except (FormatError, SignatureError) as exc:
                results.append(str(exc) or "invalid PDU")
        return results

    async def verify_one(self, pdu: Any, version: RoomVersion) -> Event:
        result = (await self.verify([pdu], version))[0]
        if isinstance(result, str):
            if "sign" in result or "hash" in result:
                raise forbidden(f"Invalid event: {result}")
            raise MatrixError(400, "M_BAD_JSON", f"Invalid event: {result}")
        return result

    async def check_acl(self, room: Room, server: str) -> None:
        """403 M_FORBIDDEN when the room's server ACL denies `server`."""
        keys = await self.store.key_nids([SERVER_ACL_KEY])
        nid = await event_store.current_state_event(self.database.pool, room.room_nid, keys[SERVER_ACL_KEY]) \
            if SERVER_ACL_KEY in keys else None
        if nid is None:
            return
        acl = (await self.store.events(room, [nid]))[nid]
        if not server_allowed(acl.content, server):
            raise forbidden("Server is banned from this room by its server ACL")

    async def require_server_in_room(self, room: Room, server: str) -> None:
        """Only servers with a member in the room (now or before) may read its events."""
        await self.check_acl(room, server)
        if not await federation_store.server_has_members(self.database.pool, room.room_nid, server):
            raise forbidden("Your server has no member in this room")

    async def known_room(self, room_id: str) -> Room:
        room = await self.store.room(room_id)
        if room is None:
            raise not_found("Unknown room")
        return room

    # ---- receiving ------------------------------------------------------------------------

    async def receive_pdu(self, origin: str, room: Room, event: Event) -> str | None:
        """Take in a verified PDU of a room we are in: None when it was accepted (or soft-failed, or
        already known), the reason when it was rejected; PduError when it was dropped."""
        if event.room_id != room.room_id:
            raise PduError("event for another room")
        async with self.pipeline.lock(room.room_id):
            if not await event_store.forward_extremities(self.database.pool, room.room_nid):
                raise PduError("this server is not in the room")
            row = await event_store.event_by_id(self.database.pool, event.event_id)
            if row is not None and (row["state_group"] is not None or row["rejected_reason"] is not None):
                return row["rejected_reason"]
            return await self._receive_locked(origin, room, event, fetch_missing=True)

    async def _receive_locked(self, origin: str, room: Room, event: Event, fetch_missing: bool) -> str | None:
        """Check and persist one event; the reason it was rejected, or None. An event whose auth
        events or state cannot be had is rejected (as Synapse does), not dropped."""
        rejected: str | None
        try:
            auth = await self._auth_events(origin, room, event)
            rejected = self._check_against_auth_events(room, event, auth)
        except PduError as exc:
            auth, rejected = {}, str(exc)
        prev = await self._rows_by_id(event.prev_event_ids)
        missing = [p for p in event.prev_event_ids if p not in prev or prev[p]["state_group"] is None]
        if missing and fetch_missing:
            await self._fetch_missing_prevs(origin, room, event)
            prev = await self._rows_by_id(event.prev_event_ids)
            missing = [p for p in event.prev_event_ids if p not in prev or prev[p]["state_group"] is None]
        group: int | None = None
        state: dict[int, int] = {}
        if missing:
            try:
                state = await self._state_across_gap(origin, room, event, prev)
            except PduError as exc:
                rejected = rejected or str(exc)
        else:
            group, state = await self.pipeline.state_before(room, [r["event_nid"] for r in prev.values()])
        prev_nids = [prev[p]["event_nid"] for p in event.prev_event_ids if p in prev]
        auth_nids = [row[0] for row in auth.values()]
        if rejected is None:
            state_events = await self.store.state_events(room, state)
            rejected = self._check_rules(event, state_events)
        soft_failed = False
        if rejected is None:
            current = await event_store.current_state(self.database.pool, room.room_nid)
            if current != state:
                soft_failed = self._check_rules(event, await self.store.state_events(room, current)) is not None
                if soft_failed:
                    logger.info("soft-failed %s in %s", event.event_id, room.room_id)
        elif rejected:
            logger.info("rejected %s in %s: %s", event.event_id, room.room_id, rejected)
        await self.pipeline.persist_remote(
            room, event, prev_nids, group, state, auth_nids, rejected_reason=rejected, soft_failed=soft_failed,
            apply_redaction=rejected is None and await self._may_redact(room, event, state),
        )
        return rejected

    async def _may_redact(self, room: Room, event: Event, state: dict[int, int]) -> bool:
        """A redaction takes effect when its sender's server sent the redacted event or the
        sender may redact others' events (room versions 3+ leave this check to the receiver)."""
        if event.type != "m.room.redaction":
            return False
        target = event.redacts
        if target is None:
            return False
        row = await event_store.event_by_id(self.database.pool, target)
        if row is not None and server_of(row["sender"]) == server_of(event.sender):
            return True
        state_events = await self.store.state_events(room, state)
        try:
            return user_level(event.sender, state_events) >= named_level(state_events, "redact")
        except InvalidPowerLevel:
            return False

    @staticmethod
    def _check_rules(event: Event, state: StateMap) -> str | None:
        try:
            check_auth_rules(event, state)
        except AuthError as exc:
            return str(exc) or "not allowed by the authorization rules"
        return None

    def _check_against_auth_events(
        self, room: Room, event: Event, auth: dict[str, tuple[int, Event, bool]]
    ) -> str | None:
        create = auth.get("$" + room.room_id[1:]) if room.version.room_id_from_create_event else None
        try:
            check_auth_events(
                event, [a[1] for a in auth.values() if a[1].event_id in event.auth_event_ids],
                is_rejected=lambda e: auth[e.event_id][2] if e.event_id in auth else False,
                create_event=create[1] if create else None,
            )
        except AuthError as exc:
            return str(exc) or "bad auth events"
        state: dict[Any, Event] = {
            (a[1].type, a[1].state_key): a[1] for a in auth.values() if a[1].state_key is not None and not a[2]
        }
        return self._check_rules(event, state)

    async def _rows_by_id(self, event_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        nids = await event_store.event_nids(self.database.pool, event_ids)
        if not nids:
            return {}
        rows = await event_store.events_by_nid(self.database.pool, nids.values())
        return {r["event_id"]: r for r in rows}

    async def _auth_events(self, origin: str, room: Room, event: Event) -> dict[str, tuple[int, Event, bool]]:
        """The event's auth events (and, in v12, the room's create event): id -> (nid, event,
        rejected). Unknown ones are fetched from `origin` with /event_auth and stored as outliers."""
        wanted = list(event.auth_event_ids)
        if room.version.room_id_from_create_event and event.type != "m.room.create":
            wanted.append("$" + room.room_id[1:])
        rows = await self._rows_by_id(wanted)
        if len(rows) < len(set(wanted)):
            try:
                await self._fetch_auth_chain(origin, room, event.event_id)
            except PduError:
                # Servers that do not serve /event_auth: the missing events one by one.
                fetched = await self._fetch_events(origin, room, [w for w in set(wanted) if w not in rows])
                await self.store_auth_checked_outliers(room, fetched)
            rows = await self._rows_by_id(wanted)
        missing = set(wanted) - rows.keys()
        if missing:
            raise PduError(f"auth events unavailable: {sorted(missing)[:3]}")
        return {
            eid: (r["event_nid"], self.store.event_from_row(room.version, r), r["rejected_reason"] is not None)
            for eid, r in rows.items()
        }

    async def _fetch_auth_chain(self, origin: str, room: Room, event_id: str) -> None:
        try:
            answer = await self.client.request(
                "GET", origin, encode_path("/_matrix/federation/v1/event_auth", room.room_id, event_id)
            )
        except (Unreachable, FederationError) as exc:
            raise PduError(f"could not fetch the auth chain: {exc}") from None
        chain = answer.get("auth_chain") if isinstance(answer, dict) else None
        if not isinstance(chain, list):
            raise PduError("bad /event_auth answer")
        await self.store_auth_checked_outliers(room, chain)

    async def store_auth_checked_outliers(self, room: Room, pdus: list[Any]) -> dict[str, Event]:
        """Verify events known by reference (an auth chain, a room's state), check each against
        its own auth events in auth order, and store them as outliers. The valid ones by id."""
        events = {e.event_id: e for e in await self.verify(pdus, room.version) if isinstance(e, Event)}
        await self.store_verified_outliers(room, events)
        return {eid: e for eid, e in events.items() if e.room_id == room.room_id}

    async def store_verified_outliers(self, room: Room, events: dict[str, Event]) -> dict[str, tuple[int, str | None]]:
        """Store verified events as outliers, each checked against its own auth events: event id ->
        (nid, why it was rejected or None) for each of them. Events of other rooms are left out."""
        events = {eid: e for eid, e in events.items() if e.room_id == room.room_id}
        checked = await self._check_batch(room, events)
        nids = dict(await self.pipeline.store_outliers(room, checked))
        reasons: dict[str, str | None] = {e.event_id: reason for e, reason in checked}
        known = [eid for eid in events if eid not in reasons]
        if known:  # stored before: as they were judged then
            earlier = await event_store.event_nids(self.database.pool, known)
            rejected = await federation_store.rejected_events(self.database.pool, earlier.values())
            nids.update(earlier)
            reasons.update({e: "rejected" if nid in rejected else None for e, nid in earlier.items()})
        return {eid: (nids[eid], reasons[eid]) for eid in events if eid in nids}

    async def _check_batch(self, room: Room, events: dict[str, Event]) -> list[tuple[Event, str | None]]:
        """The events not yet stored, in auth order, each with why it fails its own auth events
        (None: it passes)."""
        create_id = "$" + room.room_id[1:] if room.version.room_id_from_create_event else None
        wanted = {a for e in events.values() for a in e.auth_event_ids} | events.keys() | ({create_id} - {None})
        known = await self._rows_by_id(wanted)  # type: ignore[arg-type]
        rejected: dict[str, bool] = {eid: r["rejected_reason"] is not None for eid, r in known.items()}
        by_id: dict[str, Event] = {eid: self.store.event_from_row(room.version, r) for eid, r in known.items()}
        by_id.update(events)
        checked: list[tuple[Event, str | None]] = []
        for event in _auth_order(events.values()):
            if event.event_id in known and known[event.event_id]["stream_ordering"] is not None:
                continue
            auth = [by_id[a] for a in event.auth_event_ids if a in by_id]
            reason: str | None = None
            if len(auth) < len(event.auth_event_ids):
                reason = "auth events unknown"
            else:
                create = by_id.get(create_id) if create_id else None
                try:
                    check_auth_events(event, auth, is_rejected=lambda e: rejected.get(e.event_id, False),
                                      create_event=create)
                    state = {(a.type, a.state_key): a for a in auth if a.state_key is not None}
                    if create is not None:
                        state.setdefault(CREATE_KEY, create)
                    check_auth_rules(event, state)
                except AuthError as exc:
                    reason = str(exc) or "not allowed"
            rejected[event.event_id] = reason is not None
            checked.append((event, reason))
        return checked

    async def backfill_from_servers(self, room: Room, limit: int) -> bool:
        """History before the room's oldest event we have, from the room's other servers (the
        first that answers); True when some arrived. Each event is checked against its own auth
        events (fetched when unknown); the state at backfilled events is not computed."""
        oldest = await event_store.oldest_timeline_event(self.database.pool, room.room_nid)
        if oldest is None:
            return False
        first = self.store.event_from_row(room.version, oldest)
        known = await self._rows_by_id(first.prev_event_ids)
        missing = [p for p in first.prev_event_ids if p not in known or known[p]["stream_ordering"] is None]
        if not missing:
            return False
        servers = [s for s in await federation_store.servers_in_room(self.database.pool, room.room_nid)
                   if s != self.server_name]
        for server in servers:
            try:
                answer = await self.client.request(
                    "GET", server, encode_path("/_matrix/federation/v1/backfill", room.room_id),
                    query={"v": missing, "limit": str(max(1, min(limit, 100)))}, timeout_s=20,
                )
            except (Unreachable, FederationError) as exc:
                logger.info("backfill of %s from %s failed: %s", room.room_id, server, exc)
                continue
            pdus = answer.get("pdus") if isinstance(answer, dict) else None
            if not isinstance(pdus, list):
                continue
            events = {e.event_id: e for e in await self.verify(pdus, room.version)
                      if isinstance(e, Event) and e.room_id == room.room_id}
            async with self.pipeline.lock(room.room_id):
                have = await self._rows_by_id({a for e in events.values() for a in e.auth_event_ids})
                for event in events.values():
                    if any(a not in have and a not in events for a in event.auth_event_ids):
                        try:
                            await self._fetch_auth_chain(server, room, event.event_id)
                        except PduError:
                            continue
                        have = await self._rows_by_id({a for e in events.values() for a in e.auth_event_ids})
                checked = await self._check_batch(room, events)
                newest_first = sorted(checked, key=lambda c: (-c[0].depth, -c[0].origin_server_ts))
                await self.pipeline.store_outliers(room, newest_first, backfilled=True)
            return any(reason is None for _e, reason in checked)
        return False

    async def _fetch_missing_prevs(self, origin: str, room: Room, event: Event) -> None:
        """Ask `origin` for the events between our forward extremities and `event`, and take them
        in oldest first (each without further fetching)."""
        extremities = await event_store.forward_extremities(self.database.pool, room.room_nid)
        earliest = [e.event_id for e in (await self.store.events(room, extremities)).values()]
        try:
            answer = await self.client.request(
                "POST", origin, encode_path("/_matrix/federation/v1/get_missing_events", room.room_id),
                body={"earliest_events": earliest, "latest_events": [event.event_id],
                      "limit": MISSING_EVENTS_LIMIT, "min_depth": 0},
            )
        except (Unreachable, FederationError) as exc:
            logger.info("get_missing_events from %s failed: %s", origin, exc)
            return
        pdus = answer.get("events") if isinstance(answer, dict) else None
        if not isinstance(pdus, list):
            return
        found = [e for e in await self.verify(pdus, room.version) if isinstance(e, Event) and e.room_id == room.room_id]
        for missing in sorted(found, key=lambda e: (e.depth, e.origin_server_ts)):
            if missing.event_id == event.event_id or await event_store.event_nids(self.database.pool, [missing.event_id]):
                continue
            try:
                await self._receive_locked(origin, room, missing, fetch_missing=False)
            except PduError as exc:
                logger.info("missing event %s dropped: %s", missing.event_id, exc)

    async def _state_across_gap(
        self, origin: str, room: Room, event: Event, prev: dict[str, dict[str, Any]]
    ) -> dict[int, int]:
        """The state before `event` when some prev events are unknown: for each of those, the
        state at it from `origin` (/state_ids, unknown events fetched and stored as outliers)
        plus the prev event itself; resolved with the state after the known ones."""
        state_sets: list[dict[int, int]] = []
        for prev_id in event.prev_event_ids:
            row = prev.get(prev_id)
            if row is not None and row["state_group"] is not None:
                state_sets.append(await self.store.state_group(row["state_group"]))
                continue
            state_sets.append(await self._remote_state_after(origin, room, prev_id))
        if len(state_sets) == 1:
            return state_sets[0]
        return await self.pipeline.resolve_state_sets(room, state_sets)

    async def _remote_state_after(self, origin: str, room: Room, prev_id: str) -> dict[int, int]:
        try:
            answer = await self.client.request(
                "GET", origin, encode_path("/_matrix/federation/v1/state_ids", room.room_id),
                query={"event_id": prev_id},
            )
        except (Unreachable, FederationError) as exc:
            raise PduError(f"could not fetch the state at {prev_id}: {exc}") from None
        pdu_ids = answer.get("pdu_ids") if isinstance(answer, dict) else None
        auth_ids = answer.get("auth_chain_ids") if isinstance(answer, dict) else None
        if not isinstance(pdu_ids, list) or not isinstance(auth_ids, list):
            raise PduError("bad /state_ids answer")
        wanted = [i for i in {*pdu_ids, *auth_ids, prev_id} if isinstance(i, str)]
        known = await event_store.event_nids(self.database.pool, wanted)
        fetched = await self._fetch_events(origin, room, [i for i in wanted if i not in known])
        await self.store_auth_checked_outliers(room, fetched)
        rows = await self._rows_by_id([i for i in pdu_ids if isinstance(i, str)] + [prev_id])
        state_rows = [rows[i] for i in pdu_ids if isinstance(i, str) and i in rows and rows[i]["room_nid"] == room.room_nid]
        if prev_id in rows and rows[prev_id]["room_nid"] == room.room_nid and rows[prev_id]["state_key"] is not None \
                and rows[prev_id]["rejected_reason"] is None:
            state_rows.append(rows[prev_id])
        keys = await self.store.key_nids({(r["type"], r["state_key"]) for r in state_rows}, create=True)
        return {keys[(r["type"], r["state_key"])]: r["event_nid"] for r in state_rows if r["rejected_reason"] is None}

    async def _fetch_events(self, origin: str, room: Room, event_ids: list[str]) -> list[Any]:
        semaphore = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def fetch(event_id: str) -> Any:
            async with semaphore:
                try:
                    answer = await self.client.request(
                        "GET", origin, encode_path("/_matrix/federation/v1/event", event_id)
                    )
                except (Unreachable, FederationError):
                    return None
                pdus = answer.get("pdus") if isinstance(answer, dict) else None
                return pdus[0] if isinstance(pdus, list) and pdus else None

        return [p for p in await asyncio.gather(*(fetch(i) for i in event_ids)) if p is not None]

    # ---- serving ---------------------------------------------------------------------------

    async def event_for(self, origin: str, event_id: str) -> dict[str, Any]:
        """`GET /event/{eventId}`: one event of a room the asking server takes part in."""
        row = await event_store.event_by_id(self.database.pool, event_id)
        if row is None:
            raise not_found("Unknown event")
        room = await self.known_room_by_nid(row["room_nid"])
        await self.require_server_in_room(room, origin)
        return self.store.event_from_row(room.version, row).pdu

    async def known_room_by_nid(self, room_nid: int) -> Room:
        room_id = await federation_store.room_id_of(self.database.pool, room_nid)
        return await self.known_room(room_id)

    async def _state_at(self, room: Room, event_id: str) -> tuple[dict[int, int], dict[str, Any]]:
        """The state before an event of the room, and the event's row."""
        row = await event_store.event_by_id(self.database.pool, event_id)
        if row is None or row["room_nid"] != room.room_nid:
            raise not_found("Unknown event in this room")
        if row["state_group"] is None or row["rejected_reason"] is not None:
            raise not_found("No state known at this event (an outlier or a rejected event)")
        state = await self.store.state_group(row["state_group"])
        if row["state_key"] is not None and row["rejected_reason"] is None:
            key = (await self.store.key_nids([(row["type"], row["state_key"])])).get((row["type"], row["state_key"]))
            if key is not None and state.get(key) == row["event_nid"]:
                previous = await self._replaced_state(room, row, key)
                if previous is None:
                    state.pop(key)
                else:
                    state[key] = previous
        return state, row

    async def _replaced_state(self, room: Room, row: dict[str, Any], key: int) -> int | None:
        """The event a state event replaced (from its prev events' state), if any."""
        event = self.store.event_from_row(room.version, row)
        prev = await self._rows_by_id(event.prev_event_ids)
        _group, before = await self.pipeline.state_before(
            room, [r["event_nid"] for r in prev.values() if r["state_group"] is not None]
        )
        return before.get(key)

    async def state_ids(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        room = await self.known_room(room_id)
        await self.require_server_in_room(room, origin)
        state, _row = await self._state_at(room, event_id)
        chain = await event_store.auth_chain(self.database.pool, state.values())
        ids = await self.store.nids_by_event_id(room, [*state.values(), *chain])
        by_nid = {nid: eid for eid, nid in ids.items()}
        return {"pdu_ids": [by_nid[n] for n in state.values()], "auth_chain_ids": [by_nid[n] for n in chain]}

    async def state(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        room = await self.known_room(room_id)
        await self.require_server_in_room(room, origin)
        state, _row = await self._state_at(room, event_id)
        chain = await event_store.auth_chain(self.database.pool, state.values())
        events = await self.store.events(room, [*state.values(), *chain])
        return {"pdus": [events[n].pdu for n in state.values()], "auth_chain": [events[n].pdu for n in chain]}

    async def event_auth(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        room = await self.known_room(room_id)
        await self.require_server_in_room(room, origin)
        row = await event_store.event_by_id(self.database.pool, event_id)
        if row is None or row["room_nid"] != room.room_nid:
            raise not_found("Unknown event in this room")
        chain = await event_store.auth_chain(self.database.pool, [row["event_nid"]])
        events = await self.store.events(room, chain)
        return {"auth_chain": [events[n].pdu for n in chain]}

    async def auth_chain_pdus(self, room: Room, nids: Iterable[int]) -> list[dict[str, Any]]:
        chain = await event_store.auth_chain(self.database.pool, nids)
        events = await self.store.events(room, chain)
        return [events[n].pdu for n in chain]

    async def backfill(self, origin: str, room_id: str, from_ids: list[str], limit: int) -> dict[str, Any]:
        """Events before (and including) `from_ids`, walking prev events breadth-first, newest first."""
        room = await self.known_room(room_id)
        await self.require_server_in_room(room, origin)
        limit = max(0, min(limit, 100))
        found: dict[str, Event] = {}
        frontier = list(from_ids)
        while frontier and len(found) < limit:
            rows = await self._rows_by_id([f for f in frontier if f not in found])
            frontier = []
            for eid, row in sorted(rows.items(), key=lambda r: -r[1]["depth"]):
                if row["room_nid"] != room.room_nid or len(found) >= limit:
                    continue
                event = self.store.event_from_row(room.version, row)
                found[eid] = event
                frontier.extend(p for p in event.prev_event_ids if p not in found)
        return {
            "origin": self.server_name, "origin_server_ts": int(time.time() * 1000),
            "pdus": [e.pdu for e in found.values()],
        }

    async def missing_events(
        self, origin: str, room_id: str, earliest: list[str], latest: list[str], limit: int, min_depth: int
    ) -> dict[str, Any]:
        """Prev events of `latest` back to (not including) `earliest`, oldest first."""
        room = await self.known_room(room_id)
        await self.require_server_in_room(room, origin)
        limit = max(0, min(limit, 100))
        seen = set(earliest) | set(latest)
        found: list[Event] = []
        frontier = [e for e in latest]
        while frontier and len(found) < limit:
            latest_rows = await self._rows_by_id(frontier)
            frontier = []
            for row in latest_rows.values():
                if row["room_nid"] != room.room_nid:
                    continue
                for prev_id in self.store.event_from_row(room.version, row).prev_event_ids:
                    if prev_id not in seen:
                        seen.add(prev_id)
                        frontier.append(prev_id)
            prev_rows = await self._rows_by_id(frontier)
            for prev_id in frontier:
                row = prev_rows.get(prev_id)
                if row is None or row["room_nid"] != room.room_nid or row["depth"] < min_depth or len(found) >= limit:
                    continue
                found.append(self.store.event_from_row(room.version, row))
            frontier = [f for f in frontier if f in prev_rows]
        found.sort(key=lambda e: e.depth)
        return {"events": [e.pdu for e in found]}


def _auth_order(events: Iterable[Event]) -> list[Event]:
    """Events with every auth event among them placed before the events it authorises."""
    by_id = {e.event_id: e for e in events}
    placed: set[str] = set()
    ordered: list[Event] = []
    for start in sorted(by_id.values(), key=lambda e: e.depth):
        stack: list[tuple[Event, bool]] = [(start, False)]
        while stack:
            event, expanded = stack.pop()
            if event.event_id in placed:
                continue
            if expanded:
                placed.add(event.event_id)
                ordered.append(event)
                continue
            stack.append((event, True))
            for auth_id in event.auth_event_ids:
                auth = by_id.get(auth_id)
                if auth is not None and auth_id not in placed:
                    stack.append((auth, False))
    return ordered

