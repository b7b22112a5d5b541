"""Membership across servers: joins, leaves, knocks and invites, both ways.

Inbound (server-server API, Joining/Leaving/Knocking/Inviting): `make_*`
hands a joining server an event template on our forward extremities once
the rules would allow it; `send_*` takes the signed event through the
remote pipeline and answers with the room's state and auth chain (joins,
with `omit_members` support), or the stripped state (knocks). `/invite`
countersigns an invite of one of our users and records it with the stripped
state the inviting server sent.

Outbound: joining another server's room (`make_join`/`send_join` through
the first server that answers; the returned state and auth chain are
verified, each event checked against its own auth events, stored as
outliers, and the join persisted with that state), leaving or knocking
where we are not in the room, and inviting users of other servers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Iterable, Sequence

import orjson

from homeserver.core.auth_rules import AuthError, check_auth_rules
from homeserver.core.event_builder import event_template, select_auth_events, sign_template
from homeserver.core.events import Event
from homeserver.core.ids import server_of
from homeserver.core.room_versions import KNOWN_ROOM_VERSIONS, ROOM_VERSIONS, RoomVersion, get_room_version
from homeserver.core.signing import sign_json
from homeserver.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.federation.client import FederationClient, FederationError, Unreachable, encode_path
from homeserver.services.events import EventPipeline, EventStore, Room
from homeserver.services.federation_events import FederationEvents, PduError
from homeserver.services.notifier import Notifier
from homeserver.services.stripped_state import STRIPPED_STATE_TYPES, stripped, stripped_state
from homeserver.services.server_keys import ServerKeys
from homeserver.storage import events as event_store
from homeserver.storage import federation as federation_store
from homeserver.storage import rooms as room_store
from homeserver.storage.database import Database

logger = logging.getLogger(__name__)

MEMBERSHIP_ENDPOINTS = {"join": ("make_join", "send_join"), "leave": ("make_leave", "send_leave"),
                        "knock": ("make_knock", "send_knock")}


class FederationMembership:
    def __init__(
        self, server_keys: ServerKeys, database: Database, store: EventStore, pipeline: EventPipeline,
        events: FederationEvents, client: FederationClient, notifier: Notifier,
    ) -> None:
        self.server_keys = server_keys
        self.server_name = server_keys.server_name
        self.database = database
        self.store = store
        self.pipeline = pipeline
        self.events = events
        self.client = client
        self.notifier = notifier
        self.restricted_authoriser: Any = None
        """(room, user_id) -> a local user who may vouch for a restricted join, or None; set by the server."""

    async def stripped_state(self, room: Room) -> list[dict[str, Any]]:
        state = await event_store.current_state(self.database.pool, room.room_nid)
        return stripped_state(await self.store.state_events(room, state))

    async def stripped_state_pdus(self, room: Room) -> list[dict[str, Any]]:
        """The stripped-state events as full PDUs, create event included: what `invite_room_state`
        and `knock_room_state` carry between servers (spec v1.16)."""
        state = await event_store.current_state(self.database.pool, room.room_nid)
        by_key = await self.store.state_events(room, state)
        return [e.pdu for key, e in by_key.items() if key[0] in STRIPPED_STATE_TYPES]

    async def _client_stripped_state(self, room_id: str, version: RoomVersion, pdus: Any) -> list[dict[str, Any]]:
        """Another server's stripped state as our clients see it. PDUs are checked (signatures,
        room); in room version 12 a bad entry or a missing create event refuses the whole
        (M_INVALID_PARAM), in earlier versions bad entries are left out."""
        strict = version.room_id_from_create_event
        entries = [p for p in pdus if isinstance(p, dict)] if isinstance(pdus, list) else []
        full = [p for p in entries if "signatures" in p]
        checked = await self.events.verify(full, version) if full else []
        found: list[dict[str, Any]] = []
        for pdu, result in zip(full, checked):
            if isinstance(result, Event) and result.room_id == room_id and result.state_key is not None:
                found.append(stripped(result))
            elif strict:
                raise invalid_param("invite_room_state holds an invalid event")
        if not strict:
            found += [{k: p[k] for k in ("type", "state_key", "content", "sender") if k in p}
                      for p in entries if "signatures" not in p and isinstance(p.get("type"), str)]
        if strict and not any(e["type"] == "m.room.create" for e in found):
            raise invalid_param("invite_room_state has no m.room.create event")
        return found

    async def _current(self, room: Room) -> tuple[list[Event], dict[Any, Event]]:
        extremities = await event_store.forward_extremities(self.database.pool, room.room_nid)
        if not extremities:
            raise not_found("This server is not in the room")
        _group, state = await self.pipeline.state_before(room, extremities)
        prev = list((await self.store.events(room, extremities)).values())
        return prev, await self.store.state_events(room, state)

    # ---- inbound ---------------------------------------------------------------------------

    async def make_membership(
        self, origin: str, room_id: str, user_id: str, membership: str, versions: list[str] | None
    ) -> dict[str, Any]:
        """`make_join` / `make_leave` / `make_knock`: a template for the user's membership event."""
        room = await self.events.known_room(room_id)
        await self.events.check_acl(room, origin)
        if server_of(user_id) != origin:
            raise forbidden("The user does not belong to the requesting server")
        if versions is not None and room.version.identifier not in versions:
            raise MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION", "Your server does not support this room's version",
                              room_version=room.version.identifier)
        if membership == "join" and \
                self.server_name not in await federation_store.servers_in_room(self.database.pool, room.room_nid):
            # Joining through us needs one of our users in the room; rejecting an invite does not.
            raise not_found("No user of this server is in the room any more")
        prev, state = await self._current(room)
        content: dict[str, Any] = {"membership": membership}
        if membership == "join" and self.restricted_authoriser is not None:
            authoriser = await self.restricted_authoriser(room, user_id)
            if authoriser is not None:
                content["join_authorised_via_users_server"] = authoriser
        template = event_template(
            room.version, server_name=origin, sender=user_id, event_type="m.room.member", content=content,
            origin_server_ts=int(time.time() * 1000), room_id=room.room_id, prev_events=prev,
            auth_events=select_auth_events(room.version, "m.room.member", user_id, user_id, content, state),
            state_key=user_id,
        )
        try:
            check_auth_rules(Event(template, room.version, event_id="$template"), state)
        except AuthError as exc:
            raise forbidden(f"You are not allowed to {membership} this room: {exc}") from None
        return {"room_version": room.version.identifier, "event": template}

    async def send_membership(
        self, origin: str, room_id: str, event_id: str, pdu: Any, membership: str, omit_members: bool = False
    ) -> dict[str, Any]:
        """`send_join` / `send_leave` / `send_knock`: take in the signed membership event."""
        room = await self.events.known_room(room_id)
        await self.events.check_acl(room, origin)
        event = await self.events.verify_one(pdu, room.version)
        if event.event_id != event_id:
            raise MatrixError(400, "M_BAD_JSON", "The event id does not match the event")
        if (event.type != "m.room.member" or event.state_key != event.sender or event.membership != membership
                or event.room_id != room.room_id):
            raise MatrixError(400, "M_BAD_JSON", f"Not a {membership} event for this room")
        if server_of(event.sender) != origin:
            raise forbidden("The user does not belong to the requesting server")
        authoriser = event.content.get("join_authorised_via_users_server")
        if membership == "join" and isinstance(authoriser, str) and server_of(authoriser) == self.server_name:
            signed = sign_json(event.pdu, self.server_name, self.server_keys.signing_key)
            event = Event(signed, room.version, event_id=event.event_id)
        try:
            outcome = await self.events.receive_pdu(origin, room, event)
        except PduError as exc:
            raise forbidden(str(exc)) from None
        if outcome is not None:
            raise forbidden(f"The {membership} event was rejected: {outcome}")
        await self._pass_on(room, event, origin)
        if membership == "leave":
            return {}
        if membership == "knock":
            return {"knock_room_state": await self.stripped_state_pdus(room)}
        return await self._join_answer(room, event, omit_members)

    async def _pass_on(self, room: Room, event: Event, origin: str) -> None:
        """A membership sent through us is ours to tell the room's other servers of (as Synapse):
        the server that sent it talks only to us."""
        row = await event_store.event_by_id(self.database.pool, event.event_id)
        if row is None or row["stream_ordering"] is None:
            return
        async with self.database.pool.acquire() as conn:
            destinations = await federation_store.enqueue_pdu_for_others(
                conn, row["event_nid"], room.room_nid, [origin, self.server_name]
            )
        if destinations:
            self.pipeline.on_queued(tuple(destinations))

    async def _join_answer(self, room: Room, event: Event, omit_members: bool) -> dict[str, Any]:
        """The state before the join and its auth chain (without other members when asked)."""
        row = await event_store.event_by_id(self.database.pool, event.event_id)
        assert row is not None
        prev_nids = list((await event_store.event_nids(self.database.pool, event.prev_event_ids)).values())
        _group, state = await self.pipeline.state_before(room, prev_nids)
        state_events = await self.store.events(room, state.values())
        names = await self.store.key_names(state)
        if omit_members:
            state = {k: v for k, v in state.items() if names[k][0] != "m.room.member"}
        chain_roots = list(state.values()) + [row["event_nid"]]
        auth_chain = await self.events.auth_chain_pdus(room, chain_roots)
        servers = await federation_store.servers_in_room(self.database.pool, room.room_nid)
        return {
            "origin": self.server_name,
            "event": event.pdu,
            "state": [state_events[n].pdu for n in state.values()],
            "auth_chain": auth_chain,
            "members_omitted": omit_members,
            "servers_in_room": servers,
        }

    async def receive_invite(self, origin: str, room_id: str, event_id: str, body: Any) -> dict[str, Any]:
        """`PUT /v2/invite`: countersign an invite of one of our users and show it to them."""
        if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
            raise MatrixError(400, "M_BAD_JSON", "Missing event")
        version_id = body.get("room_version", "1")
        if version_id not in ROOM_VERSIONS:
            raise MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION", "Unsupported room version",
                              room_version=version_id)
        version = get_room_version(version_id)
        event = await self.events.verify_one(body["event"], version)
        if event.event_id != event_id or event.room_id != room_id:
            raise invalid_param("The event id or room id does not match the event")
        if event.type != "m.room.member" or event.membership != "invite" or event.state_key is None:
            raise invalid_param("Not an invite")
        if server_of(event.state_key) != self.server_name:
            raise invalid_param("The invited user is not one of ours")
        if server_of(event.sender) != origin:
            raise invalid_param("The inviter does not belong to the requesting server")
        room = await self.store.room(room_id)
        if room is not None:
            await self.events.check_acl(room, origin)
        signed = Event(sign_json(event.pdu, self.server_name, self.server_keys.signing_key), version,
                       event_id=event.event_id)
        if room is not None and await self.in_room(room):
            return {"event": signed.pdu}  # we are in the room: the invite arrives with the room's events
        invite_state = await self._client_stripped_state(room_id, version, body.get("invite_room_state"))
        invite_state.append(stripped(signed))
        await self._record_outlier_membership(room_id, version_id, signed, invite_state)
        return {"event": signed.pdu}

    async def _record_outlier_membership(
        self, room_id: str, version_id: str, event: Event, invite_state: list[dict[str, Any]] | None
    ) -> None:
        """A membership of one of our users in a room we are not in (an invite, or its rejection):
        stored as an outlier and shown in their sync."""
        room = await self.store.room(room_id)
        if room is None:
            async with self.database.pool.acquire() as conn:
                await room_store.create_room(conn, room_id, version_id, int(time.time() * 1000))
            room = await self.store.require_room(room_id)
        nids = await self.pipeline.store_outliers(room, [(event, None)])
        assert event.state_key is not None and event.membership is not None
        await self.pipeline.record_membership(
            room, event.state_key, event.membership, nids[event.event_id],
            orjson.dumps(invite_state).decode("utf-8") if invite_state is not None else None,
        )
        self.notifier.notify({event.state_key})

    # ---- outbound --------------------------------------------------------------------------

    async def join_remote(self, room_id: str, user_id: str, servers: Iterable[str], content: dict[str, Any]) -> Room:
        """Join a room of other servers through the first of `servers` that lets us."""
        # The resident servers' keys are fetched while the join is negotiated, not after.
        warming = asyncio.ensure_future(self.events.keyring.warm([s for s in servers if s != self.server_name]))
        try:
            event, answer, server = await self._make_and_send(room_id, user_id, servers, "join", content)
        finally:
            await asyncio.gather(warming, return_exceptions=True)
        version = event.room_version
        room = await self._ensure_room(room_id, version.identifier)
        async with self.pipeline.lock(room_id):
            returned = answer.get("event")
            if isinstance(returned, dict) and event.content.get("join_authorised_via_users_server"):
                checked = await self.events.verify([returned], version)
                if isinstance(checked[0], Event) and checked[0].event_id == event.event_id:
                    event = checked[0]
            state_pdus = answer.get("state") if isinstance(answer.get("state"), list) else []
            chain_pdus = answer.get("auth_chain") if isinstance(answer.get("auth_chain"), list) else []
            checked = await self.events.verify([*chain_pdus, *state_pdus], version)
            valid = {e.event_id: e for e in checked if isinstance(e, Event) and e.room_id == room_id}
            outcome = await self.events.store_verified_outliers(room, valid)
            rows = {eid: nid for eid, (nid, _reason) in outcome.items()}
            rejected = {nid for nid, reason in outcome.values() if reason is not None}
            state_events = [e for e in checked[len(chain_pdus):]
                            if isinstance(e, Event) and e.event_id in rows and rows[e.event_id] not in rejected]
            by_key = {(e.type, e.state_key): e for e in state_events if e.state_key is not None}
            if ("m.room.create", "") not in by_key:
                raise MatrixError(502, "M_UNKNOWN", f"{server} returned a room state without a create event")
            try:
                check_auth_rules(event, by_key)
            except AuthError as exc:
                raise MatrixError(502, "M_UNKNOWN", f"Our join is not allowed by the state {server} returned: {exc}")
            keys = await self.store.key_nids(by_key.keys(), create=True)  # type: ignore[arg-type]
            state = {keys[k]: rows[e.event_id] for k, e in by_key.items()}  # type: ignore[index]
            members = [(e.state_key, e.membership, rows[e.event_id]) for k, e in by_key.items()
                       if k[0] == "m.room.member" and e.membership and e.state_key != user_id]
            auth_nids = [rows[a] for a in event.auth_event_ids if a in rows]
            if version.room_id_from_create_event:
                auth_nids.append(rows[by_key[("m.room.create", "")].event_id])
            await self.pipeline.persist_joined_room(room, event, state, auth_nids, members)  # type: ignore[arg-type]
        logger.info("joined %s through %s (%d state events)", room_id, server, len(state))
        return room

    async def _ensure_room(self, room_id: str, version_id: str) -> Room:
        room = await self.store.room(room_id)
        if room is None:
            async with self.database.pool.acquire() as conn:
                await room_store.create_room(conn, room_id, version_id, int(time.time() * 1000))
            room = await self.store.require_room(room_id)
        return room

    async def _make_and_send(
        self, room_id: str, user_id: str, servers: Iterable[str], membership: str, content: dict[str, Any]
    ) -> tuple[Event, dict[str, Any], str]:
        make, send = MEMBERSHIP_ENDPOINTS[membership]
        last: Exception | None = None
        tried = [s for s in dict.fromkeys(servers) if s != self.server_name]
        if not tried:
            raise not_found("No server to ask about this room")
        for server in tried:
            try:
                template = await self.client.request(
                    "GET", server, encode_path(f"/_matrix/federation/v1/{make}", room_id, user_id),
                    query={"ver": list(KNOWN_ROOM_VERSIONS)} if membership != "leave" else None,
                )
                version_id = template.get("room_version", "1") if isinstance(template, dict) else None
                pdu = template.get("event") if isinstance(template, dict) else None
                if version_id not in ROOM_VERSIONS or not isinstance(pdu, dict):
                    raise MatrixError(502, "M_UNKNOWN", f"{server} sent an unusable {make} answer")
                version = get_room_version(version_id)
                if pdu.get("sender") != user_id or pdu.get("state_key") != user_id or pdu.get("room_id") != room_id:
                    raise MatrixError(502, "M_UNKNOWN", f"{server} sent a template for someone else")
                pdu = {**pdu, "content": {**content, **{k: v for k, v in pdu.get("content", {}).items()
                                                         if k in ("join_authorised_via_users_server",)},
                                          "membership": membership},
                       "origin_server_ts": int(time.time() * 1000)}
                if not version.updated_redaction_rules:
                    pdu["origin"] = self.server_name
                event = sign_template(pdu, version, self.server_name, self.server_keys.signing_key)
                answer = await self._send_membership(server, send, room_id, event, membership)
                return event, answer if isinstance(answer, dict) else {}, server
            except FederationError as exc:
                last = exc
                if exc.errcode in ("M_FORBIDDEN", "M_INCOMPATIBLE_ROOM_VERSION") and len(tried) == 1:
                    raise MatrixError(exc.status if exc.status < 500 else 502, exc.errcode or "M_UNKNOWN",
                                      str(exc.body.get("error", exc))) from None
            except (Unreachable, MatrixError) as exc:
                last = exc
            logger.info("%s through %s failed: %s", make, server, last)
        if isinstance(last, FederationError) and last.status < 500:
            raise MatrixError(last.status, last.errcode or "M_UNKNOWN", str(last.body.get("error", last)))
        raise MatrixError(502, "M_UNKNOWN", f"No server could be reached to {membership} the room: {last}")

    async def _send_membership(self, server: str, send: str, room_id: str, event: Event, membership: str) -> Any:
        """`send_join`/`send_leave` (v2, else v1 for servers without it) or `send_knock`."""
        timeout = 300 if membership == "join" else None
        if membership == "knock":
            return await self.client.request("PUT", server, encode_path(f"/_matrix/federation/v1/{send}", room_id,
                                                                        event.event_id), body=event.pdu)
        try:
            return await self.client.request("PUT", server, encode_path(f"/_matrix/federation/v2/{send}", room_id,
                                                                        event.event_id), body=event.pdu,
                                             timeout_s=timeout)
        except FederationError as exc:
            if exc.status not in (400, 404) or exc.errcode not in (None, "M_UNRECOGNIZED"):
                raise
        answer = await self.client.request("PUT", server, encode_path(f"/_matrix/federation/v1/{send}", room_id,
                                                                      event.event_id), body=event.pdu,
                                           timeout_s=timeout)
        return answer[1] if isinstance(answer, list) and len(answer) == 2 else answer

    async def leave_remote(self, room_id: str, user_id: str, servers: Iterable[str], content: dict[str, Any]) -> None:
        """Reject an invite (or retract a knock) to a room we are not in."""
        room = await self.store.require_room(room_id)
        event, _answer, _server = await self._make_and_send(room_id, user_id, servers, "leave", content)
        await self._record_outlier_membership(room_id, room.version.identifier, event, None)

    async def knock_remote(self, room_id: str, user_id: str, servers: Iterable[str], content: dict[str, Any]) -> None:
        event, answer, _server = await self._make_and_send(room_id, user_id, servers, "knock", content)
        state = await self._client_stripped_state(room_id, event.room_version, answer.get("knock_room_state"))
        await self._record_outlier_membership(room_id, event.room_version.identifier, event, state + [stripped(event)])

    async def invite_remote(self, room: Room, event: Event) -> Event:
        """Have the invitee's server countersign an invite of one of its users."""
        target = server_of(event.state_key or "")
        body = {"room_version": room.version.identifier, "event": event.pdu,
                "invite_room_state": await self.stripped_state_pdus(room)}
        try:
            try:
                answer = await self.client.request(
                    "PUT", target, encode_path("/_matrix/federation/v2/invite", room.room_id, event.event_id),
                    body=body,
                )
            except FederationError as exc:
                if exc.status not in (400, 404) or exc.errcode not in (None, "M_UNRECOGNIZED"):
                    raise
                # Servers without the v2 API: the v1 form (the event itself, state in `unsigned`).
                v1 = await self.client.request(
                    "PUT", target, encode_path("/_matrix/federation/v1/invite", room.room_id, event.event_id),
                    body={**event.pdu, "unsigned": {"invite_room_state": body["invite_room_state"]}},
                )
                answer = v1[1] if isinstance(v1, list) and len(v1) == 2 else v1
        except FederationError as exc:
            raise MatrixError(403 if exc.status < 500 else 502, "M_FORBIDDEN" if exc.status < 500 else "M_UNKNOWN",
                              f"{target} refused the invite: {exc.body.get('error', exc)}") from None
        except Unreachable as exc:
            raise MatrixError(502, "M_UNKNOWN", f"Could not reach {target}: {exc}") from None
        returned = answer.get("event") if isinstance(answer, dict) else None
        checked = (await self.events.verify([returned], room.version))[0] if isinstance(returned, dict) else None
        if not isinstance(checked, Event) or checked.event_id != event.event_id \
                or not returned.get("signatures", {}).get(target):  # type: ignore[union-attr]
            raise MatrixError(502, "M_UNKNOWN", f"{target} returned an invalid invite")
        return checked

    async def servers_to_ask(self, room_id: str, user_id: str, via: Sequence[str]) -> list[str]:
        """Where to send make_join/make_leave: the via servers, the server of whoever invited or
        let the user in, and the room id's own server (room versions 1-11)."""
        servers = list(via)
        room = await self.store.room(room_id)
        if room is not None:
            row = await event_store.membership_of(self.database.pool, room.room_nid, user_id)
            if row is not None:
                event = (await self.store.events(room, [row["event_nid"]]))[row["event_nid"]]
                servers.append(server_of(event.sender))
        if ":" in room_id:
            servers.append(server_of(room_id))
        return [s for s in dict.fromkeys(servers) if s and s != self.server_name]

    async def backfill(self, room: Room, limit: int) -> bool:
        """History from before our first event of a room joined over federation (a client paged
        past it); True when some arrived."""
        return await self.events.backfill_from_servers(room, limit)

    async def in_room(self, room: Room) -> bool:
        """Whether this server takes part in the room: one of our users is joined, so other servers
        keep our copy current. A copy kept after our last user left is stale (an invite since
        then, say, never reached it): joins, knocks and leaves then go through the servers still
        in the room. A room nobody is joined to any more has only our copy to go by."""
        servers = await federation_store.servers_in_room(self.database.pool, room.room_nid)
        if self.server_name in servers:
            return True
        return not servers and bool(await event_store.forward_extremities(self.database.pool, room.room_nid))

