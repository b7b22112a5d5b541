"""Rooms on one server: creation, membership, sending, state and history.

Client-server API create_room.yaml, joining.yaml, inviting.yaml, leaving.yaml,
kicking.yaml, banning.yaml, room_send.yaml, room_state.yaml, rooms.yaml,
message_pagination.yaml, list_joined_rooms.yaml. Every event goes through the
pipeline of `homeserver.services.events`.
"""

from __future__ import annotations

import copy
import functools
import logging
import secrets
import string
import time
from typing import Any, Awaitable, Callable, Collection, Sequence

from homeserver.config import Config
from homeserver.core.ids import is_valid_user_id, server_of
from homeserver.core.power_levels import named_level, send_level, user_level
from homeserver.core.room_versions import ROOM_VERSIONS, get_room_version
from homeserver.errors import MatrixError, bad_json, forbidden, invalid_param, not_found
from homeserver.services.account_data import AccountData
from homeserver.services.events import EventPipeline, EventSpec, EventStore, Persisted, Room
from homeserver.services.filters import EventFilter
from homeserver.services.ratelimit import RateLimiter
from homeserver.services.sessions import Requester
from homeserver.storage import aliases
from homeserver.storage import events as event_store
from homeserver.storage import profiles, users
from homeserver.storage.database import Database

PRESETS = {
    "public_chat": {"join_rule": "public", "history_visibility": "shared", "guest_access": None},
    "private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_access": "can_join"},
    "trusted_private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_access": "can_join"},
}
DEFAULT_EVENT_LEVELS = {
    "m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
    "m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
    "m.room.server_acl": 100, "m.room.encryption": 100,
}
MAX_HISTORY_PAGE = 1000
# State carried into the new room of an upgrade (besides power levels), as Synapse does.
UPGRADE_COPIED_STATE = (
    "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.name", "m.room.topic",
    "m.room.avatar", "m.room.encryption", "m.room.server_acl", "m.room.related_groups",
)

logger = logging.getLogger(__name__)


def client_event(
    event: Any, stream: int | None = None, txn_id: str | None = None, redacted_because: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The client-server format of an event (no federation-only keys)."""
    pdu = event.pdu
    out: dict[str, Any] = {
        "content": event.content,
        "event_id": event.event_id,
        "origin_server_ts": event.origin_server_ts,
        "room_id": event.room_id,
        "sender": event.sender,
        "type": event.type,
    }
    if event.state_key is not None:
        out["state_key"] = event.state_key
    if event.redacts is not None:
        out["redacts"] = event.redacts
    unsigned: dict[str, Any] = {"age": max(0, int(time.time() * 1000) - event.origin_server_ts)}
    if isinstance(pdu.get("unsigned"), dict):
        unsigned.update({k: v for k, v in pdu["unsigned"].items() if k in ("prev_content", "replaces_state")})
    if txn_id is not None:
        unsigned["transaction_id"] = txn_id
    if redacted_because is not None:
        unsigned["redacted_because"] = redacted_because
    out["unsigned"] = unsigned
    return out


def _content(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_json(f"{what} must be an object")
    return body


class Rooms:
    def __init__(
        self, config: Config, database: Database, store: EventStore, pipeline: EventPipeline, account_data: AccountData
    ) -> None:
        self.account_data = account_data
        self.directory: Any = None
        """The directory service (canonical alias checks, publication); set by the server."""
        self.federation: Any = None
        """The federation membership service (rooms of other servers); set by the server."""
        self.config = config
        self.message_limiter = RateLimiter(config.rc_message)
        self.database = database
        self.store = store
        self.pipeline = pipeline

    # --- helpers ----------------------------------------------------------------------

    async def _membership(self, room: Room, user_id: str) -> str | None:
        row = await event_store.membership_of(self.database.pool, room.room_nid, user_id)
        return row["membership"] if row is not None else None

    async def _require_joined(self, room: Room, user_id: str) -> None:
        if await self._membership(room, user_id) != "join":
            raise forbidden(f"User {user_id} is not in the room")

    async def require_member(self, room_id: str, user_id: str) -> Room:
        room = await self.store.require_room(room_id)
        await self._require_joined(room, user_id)
        return room

    async def set_read_marker(self, requester: Requester, room_id: str, event_id: str) -> None:
        room = await self.require_member(room_id, requester.user_id)
        row = await event_store.event_by_id(self.database.pool, event_id)
        if row is None or row["room_nid"] != room.room_nid:
            raise not_found("Unknown event")
        await self.account_data.put_internal(requester.user_id, room_id, "m.fully_read", {"event_id": event_id})

    async def _send(
        self, room: Room, sender: str, event_type: str, content: dict[str, Any], state_key: str | None = None,
        redacts: str | None = None,
    ) -> Persisted:
        return await self.pipeline.create_event(room, room.version, sender, event_type, content, state_key, redacts)

    async def _member_content(self, user_id: str, membership: str, extra: dict[str, Any]) -> dict[str, Any]:
        content: dict[str, Any] = {"membership": membership}
        if membership == "join" and server_of(user_id) == self.config.server_name:
            profile = await profiles.get_profile(self.database.pool, user_id) or {}
            content.update({k: v for k, v in profile.items() if v is not None})
        content.update(extra)
        return content

    # --- creation ---------------------------------------------------------------------

    async def create_room(self, requester: Requester, body: dict[str, Any]) -> str:
        user_id = requester.user_id
        version_id = body.get("room_version", self.config.default_room_version)
        if not isinstance(version_id, str):
            raise bad_json("room_version must be a string")
        if version_id not in ROOM_VERSIONS:
            raise MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION", f"Unknown room version {version_id!r}")
        version = get_room_version(version_id)
        visibility = body.get("visibility", "private")
        if visibility not in ("public", "private"):
            raise invalid_param("visibility must be 'public' or 'private'")
        preset = body.get("preset", "public_chat" if visibility == "public" else "private_chat")
        if preset not in PRESETS:
            raise invalid_param(f"Unknown preset {preset!r}")
        alias = None
        if body.get("room_alias_name") is not None:
            alias_name = body["room_alias_name"]
            if not isinstance(alias_name, str) or not alias_name or ":" in alias_name or len(alias_name) > 200:
                raise invalid_param("room_alias_name must be a non-empty name without ':'")
            alias = f"#{alias_name}:{self.config.server_name}"
            if await aliases.resolve_alias(self.database.pool, alias) is not None:
                raise MatrixError(400, "M_ROOM_IN_USE", f"Room alias {alias} already taken")
        invites = body.get("invite", [])
        if not isinstance(invites, list) or not all(isinstance(u, str) and is_valid_user_id(u) for u in invites):
            raise invalid_param("invite must be a list of user ids")
        for key in ("name", "topic"):
            if key in body and not isinstance(body[key], str):
                raise bad_json(f"{key} must be a string")
        creation = copy.deepcopy(_content(body.get("creation_content", {}), "creation_content"))
        override = _content(body.get("power_level_content_override", {}), "power_level_content_override")
        initial_state = body.get("initial_state", [])
        if not isinstance(initial_state, list) or not all(
            isinstance(s, dict) and isinstance(s.get("type"), str) and isinstance(s.get("content"), dict)
            and isinstance(s.get("state_key", ""), str) for s in initial_state
        ):
            raise bad_json("initial_state must be a list of {type, state_key, content}")
        is_direct = body.get("is_direct", False) is True

        creation.pop("room_version", None)
        creation["room_version"] = version_id
        if not version.implicit_room_creator:
            creation["creator"] = user_id
        room_id = None
        if not version.room_id_from_create_event:
            room_id = "!" + "".join(secrets.choice(string.ascii_letters) for _ in range(18)) + ":" + self.config.server_name
        settings = PRESETS[preset]
        users: dict[str, int] = {} if version.privileged_creators else {user_id: 100}
        if preset == "trusted_private_chat" and not version.privileged_creators:
            users.update({u: 100 for u in invites})
        levels = {
            "users": users, "users_default": 0, "events": dict(DEFAULT_EVENT_LEVELS), "events_default": 0,
            "state_default": 50, "ban": 50, "kick": 50, "redact": 50, "invite": 50, "historical": 100,
        }
        levels.update(copy.deepcopy(override))
        specs = [
            EventSpec("m.room.create", creation, ""),
            EventSpec("m.room.member", await self._member_content(user_id, "join", {}), user_id),
            EventSpec("m.room.power_levels", levels, ""),
        ]
        if alias is not None:
            specs.append(EventSpec("m.room.canonical_alias", {"alias": alias}, ""))
        given = {(s["type"], s.get("state_key", "")) for s in initial_state}
        if ("m.room.join_rules", "") not in given:
            specs.append(EventSpec("m.room.join_rules", {"join_rule": settings["join_rule"]}, ""))
        if ("m.room.history_visibility", "") not in given:
            specs.append(EventSpec("m.room.history_visibility", {"history_visibility": settings["history_visibility"]}, ""))
        if settings["guest_access"] and ("m.room.guest_access", "") not in given:
            specs.append(EventSpec("m.room.guest_access", {"guest_access": settings["guest_access"]}, ""))
        specs.extend(EventSpec(state["type"], state["content"], state.get("state_key", "")) for state in initial_state)
        if "name" in body:
            specs.append(EventSpec("m.room.name", {"name": body["name"]}, ""))
        if "topic" in body:
            specs.append(EventSpec("m.room.topic", {"topic": body["topic"]}, ""))
        extra = {"is_direct": True} if is_direct else {}
        local_invites = [u for u in invites if server_of(u) == self.config.server_name]
        for invitee in local_invites:
            specs.append(EventSpec("m.room.member", await self._member_content(invitee, "invite", extra), invitee))

        async def claim(conn: Any, room: Room) -> None:
            """The alias and the directory entry, in the room's creation transaction."""
            if alias is not None and not await aliases.create_alias(conn, alias, room.room_id, user_id):
                raise MatrixError(400, "M_ROOM_IN_USE", f"Room alias {alias} already taken")
            if visibility == "public" and self.directory is not None:
                await self.directory.publish_new_room(conn, user_id, room.room_id, [alias] if alias else [])

        created = await self.pipeline.create_room_events(version, user_id, room_id, specs, claim)
        room = created[0].room
        # Other servers' users are invited once the room exists: their server countersigns each invite.
        for invitee in invites:
            if invitee not in local_invites:
                try:
                    await self.pipeline.create_event(
                        room, room.version, user_id, "m.room.member", await self._member_content(invitee, "invite", extra),
                        invitee, countersign=functools.partial(self.federation.invite_remote, room),
                    )
                except MatrixError as exc:
                    logger.info("invite of %s to new room %s failed: %s", invitee, room.room_id, exc.message)
        return room.room_id

    # --- membership -------------------------------------------------------------------

    async def resolve_room(self, room_id_or_alias: str) -> tuple[str, list[str]]:
        """A room id and servers to ask about it (for an alias, those its server names)."""
        if room_id_or_alias.startswith("!"):
            return room_id_or_alias, []
        if not room_id_or_alias.startswith("#") or ":" not in room_id_or_alias:
            raise invalid_param(f"{room_id_or_alias!r} is neither a room id nor a room alias")
        found = await self.directory.resolve(room_id_or_alias)
        return found["room_id"], list(found.get("servers", []))

    async def _joined_here(self, room: Room | None) -> bool:
        """Whether this server takes part in the room (it has its state and forward extremities)."""
        return room is not None and await self.federation.in_room(room)

    async def join(self, requester: Requester, room_id: str, body: dict[str, Any], via: Sequence[str] = ()) -> str:
        room_id, alias_servers = await self.resolve_room(room_id)
        room = await self.store.room(room_id)
        # The request's other fields become part of the membership content, as in Synapse.
        extra: dict[str, Any] = {k: v for k, v in body.items() if k not in ("third_party_signed", "membership")}
        if "reason" in extra and not isinstance(extra["reason"], str):
            raise bad_json("reason must be a string")
        if not await self._joined_here(room):
            servers = await self.federation.servers_to_ask(room_id, requester.user_id, [*via, *alias_servers])
            if not servers:
                raise not_found("No known room, and no server to ask about it")
            content = await self._member_content(requester.user_id, "join", extra)
            await self.federation.join_remote(room_id, requester.user_id, servers, content)
            await self._follow_upgrade(await self.store.require_room(room_id), requester.user_id)
            return room_id
        assert room is not None
        if requester.is_guest and not await self._guests_may_join(room):
            raise forbidden("Guest access is not allowed in this room")
        authoriser = await self.restricted_join_authoriser(room, requester.user_id)
        if authoriser is not None:
            extra["join_authorised_via_users_server"] = authoriser
        content = await self._member_content(requester.user_id, "join", extra)
        if await self._unchanged_state(room, requester.user_id, "m.room.member", requester.user_id, content) is None:
            await self._send(room, requester.user_id, "m.room.member", content, requester.user_id)
            await self._follow_upgrade(room, requester.user_id)
        return room.room_id

    async def _follow_upgrade(self, room: Room, user_id: str) -> None:
        """Joining the successor of an upgraded room brings the user's tags and m.direct entry along."""
        key = (await self.store.key_nids([("m.room.create", "")])).get(("m.room.create", ""))
        nid = await event_store.current_state_event(self.database.pool, room.room_nid, key) if key else None
        create = (await self.store.events(room, [nid]))[nid] if nid is not None else None
        predecessor = create.content.get("predecessor") if create else None
        if isinstance(predecessor, dict) and isinstance(predecessor.get("room_id"), str):
            await self.account_data.follow_upgrade(user_id, predecessor["room_id"], room.room_id)

    async def restricted_join_authoriser(self, room: Room, user_id: str) -> str | None:
        """For a restricted room the user may join through its `allow` rules: a local member who may invite.

        Client-server API "Restricted rooms": membership of one of the allowed
        rooms lets a user join; the join names a user of ours who vouches for it.
        """
        if await self._membership(room, user_id) in ("join", "invite"):
            return None
        state = await self.store.state_events(room, await event_store.current_state(self.database.pool, room.room_nid))
        join_rules = state.get(("m.room.join_rules", ""))
        rule = join_rules.content.get("join_rule") if join_rules else None
        if rule not in ("restricted", "knock_restricted") or not room.version.restricted_joins:
            return None
        allowed = join_rules.content.get("allow", []) if join_rules else []
        for condition in allowed if isinstance(allowed, list) else []:
            if not isinstance(condition, dict) or condition.get("type") != "m.room_membership":
                continue
            other = await self.store.room(condition.get("room_id", "")) if isinstance(condition.get("room_id"), str) else None
            if other is not None and await self._membership(other, user_id) == "join":
                invite_level = named_level(state, "invite")
                for key, member in state.items():
                    if (key[0] == "m.room.member" and member.membership == "join"
                            and server_of(key[1]) == self.config.server_name
                            and user_level(key[1], state) >= invite_level):
                        return key[1]
        return None

    async def knock(self, requester: Requester, room_id: str, body: dict[str, Any], via: Sequence[str] = ()) -> str:
        room_id, alias_servers = await self.resolve_room(room_id)
        room = await self.store.room(room_id)
        extra = {"reason": body["reason"]} if isinstance(body.get("reason"), str) else {}
        content = await self._member_content(requester.user_id, "knock", extra)
        if not await self._joined_here(room):
            servers = await self.federation.servers_to_ask(room_id, requester.user_id, [*via, *alias_servers])
            if not servers:
                raise not_found("No known room, and no server to ask about it")
            await self.federation.knock_remote(room_id, requester.user_id, servers, content)
            return room_id
        assert room is not None
        await self._send(room, requester.user_id, "m.room.member", content, requester.user_id)
        return room.room_id

    async def upgrade(self, requester: Requester, room_id: str, body: dict[str, Any]) -> str:
        """Replace a room by one of a newer version (client-server API "Room upgrades").

        The new room gets the old one's important state and power levels and a
        `predecessor`; the old room gets a tombstone and is closed to ordinary talk.
        """
        new_version = body.get("new_version")
        if not isinstance(new_version, str) or new_version not in ROOM_VERSIONS:
            raise MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION", f"Unknown room version {new_version!r}")
        old = await self.require_member(room_id, requester.user_id)
        state = await self.store.state_events(old, await event_store.current_state(self.database.pool, old.room_nid))
        if user_level(requester.user_id, state) < send_level("m.room.tombstone", "", state):
            raise forbidden("You need the power to send m.room.tombstone to upgrade the room")
        version = get_room_version(new_version)
        user_id = requester.user_id
        creation = {"room_version": new_version, "predecessor": {"room_id": old.room_id}}
        old_create = state[("m.room.create", "")]
        if "m.federate" in old_create.content:
            creation["m.federate"] = old_create.content["m.federate"]
        if not version.implicit_room_creator:
            creation["creator"] = user_id
        new_room_id = None
        tombstone = None
        if not version.room_id_from_create_event:
            new_room_id = "!" + "".join(secrets.choice(string.ascii_letters) for _ in range(18)) + ":" + self.config.server_name
            # The new room's id is known first: the tombstone goes out first and the new room's
            # create event names it (`predecessor.event_id`, as Synapse). A v12 room's id depends
            # on its create event, so there the tombstone follows and is not named.
            tombstone = await self._send(old, user_id, "m.room.tombstone",
                                         {"body": "This room has been replaced", "replacement_room": new_room_id}, "")
            creation["predecessor"]["event_id"] = tombstone.event.event_id
        old_levels = state.get(("m.room.power_levels", ""))
        levels = copy.deepcopy(old_levels.content) if old_levels else {}
        users = dict(levels.get("users", {}))
        if version.privileged_creators:
            users.pop(user_id, None)
        else:
            users[user_id] = max(int(users.get(user_id, 0)), 100)
        levels["users"] = users
        specs = [
            EventSpec("m.room.create", creation, ""),
            EventSpec("m.room.member", await self._member_content(user_id, "join", {}), user_id),
            EventSpec("m.room.power_levels", levels, ""),
        ]
        specs.extend(EventSpec(event_type, copy.deepcopy(state[(event_type, "")].content), "")
                     for event_type in UPGRADE_COPIED_STATE if (event_type, "") in state)
        if ("m.room.guest_access", "") not in state:
            # Synapse builds the new room on the private-chat preset, whose guest access is on.
            specs.append(EventSpec("m.room.guest_access", {"guest_access": "can_join"}, ""))
        if ("m.room.canonical_alias", "") in state:
            specs.append(EventSpec("m.room.canonical_alias", copy.deepcopy(state[("m.room.canonical_alias", "")].content),
                                   ""))
        # Bans carry over (as Synapse does), so the upgrade is no way back in.
        specs.extend(EventSpec("m.room.member", {"membership": "ban", **({"reason": e.content["reason"]} if isinstance(
            e.content.get("reason"), str) else {})}, key[1]) for key, e in state.items()
            if key[0] == "m.room.member" and e.membership == "ban")

        async def move(conn: Any, new_room: Room) -> None:
            if self.directory is not None:
                await self.directory.move_to_upgraded_room(conn, old.room_id, new_room.room_id)

        new = (await self.pipeline.create_room_events(version, user_id, new_room_id, specs, move))[0].room
        await self.account_data.follow_upgrade(user_id, old.room_id, new.room_id)
        if ("m.room.canonical_alias", "") in state:
            try:
                await self._send(old, user_id, "m.room.canonical_alias", {}, "")
            except MatrixError as exc:
                logger.info("canonical alias of upgraded room %s kept: %s", old.room_id, exc.message)
        if tombstone is None:
            await self._send(old, user_id, "m.room.tombstone",
                             {"body": "This room has been replaced", "replacement_room": new.room_id}, "")
        restricted = copy.deepcopy(old_levels.content) if old_levels else {}
        floor = max(50, int(restricted.get("users_default", 0)) + 1)
        restricted["events_default"] = max(int(restricted.get("events_default", 0)), floor)
        restricted["invite"] = max(int(restricted.get("invite", 0)), floor)
        await self._send(old, user_id, "m.room.power_levels", restricted, "")
        return new.room_id

    async def change_membership(
        self, requester: Requester, room_id: str, target: str, membership: str, body: dict[str, Any],
        action: str = "",
    ) -> None:
        """invite, leave, kick, ban, unban (`action` names which, for the checks the auth rules
        leave to the server: only members can be kicked, only banned users unbanned, as Synapse)."""
        room = await self.store.require_room(room_id)
        if not is_valid_user_id(target):
            raise invalid_param(f"{target!r} is not a user id")
        if action in ("kick", "unban"):
            current = await self._membership(room, target)
            if action == "kick" and current not in ("join", "invite", "knock"):
                raise forbidden("The target user is not in the room")
            if action == "unban" and current != "ban":
                raise forbidden("The target user is not banned")
        extra = {"reason": body["reason"]} if isinstance(body.get("reason"), str) else {}
        if membership == "invite" and body.get("is_direct") is True:
            extra["is_direct"] = True
        content = await self._member_content(target, membership, extra)
        if not await self._joined_here(room):
            if membership != "leave" or target != requester.user_id:
                raise forbidden("This server is not in the room")
            servers = await self.federation.servers_to_ask(room.room_id, target, [])
            await self.federation.leave_remote(room.room_id, target, servers, content)
            return
        countersign = None
        if membership == "invite" and server_of(target) != self.config.server_name:
            countersign = functools.partial(self.federation.invite_remote, room)
        await self.pipeline.create_event(room, room.version, requester.user_id, "m.room.member", content, target,
                                         countersign=countersign)

    async def forget(self, requester: Requester, room_id: str) -> None:
        room = await self.store.require_room(room_id)
        if await self._membership(room, requester.user_id) in ("join", "invite", "knock"):
            raise MatrixError(400, "M_UNKNOWN", "Leave the room before forgetting it")
        await event_store.forget_room(self.database.pool, room.room_nid, requester.user_id)

    async def leave_all(self, user_id: str) -> None:
        """Leave (or reject invites to) every room: an account being deactivated."""
        for row in await event_store.rooms_of_user(self.database.pool, user_id, ("join", "invite", "knock")):
            room = await self.store.require_room(row["room_id"])
            try:
                await self._send(room, user_id, "m.room.member", {"membership": "leave"}, user_id)
            except MatrixError:
                continue

    async def joined_rooms(self, requester: Requester) -> list[str]:
        return [r["room_id"] for r in await event_store.rooms_of_user(self.database.pool, requester.user_id, ("join",))]

    # --- events -------------------------------------------------------------------------

    async def visible_rows(
        self, requester: Requester, room: Room, rows: list[dict[str, Any]],
        ignored: set[str] | None = None, joined_now: bool | None = None, always: Collection[int] = (),
    ) -> list[dict[str, Any]]:
        """The events the user may see under the room's history visibility (client-server API
        "History visibility"), judged as Synapse does: with the visibility and the user's
        membership in the state at each event, and whether the user is joined now.
        `ignored` and `joined_now` may be passed when the caller knows them (sync); events in
        `always` (sync: the room's current state) are shown whatever the visibility."""
        if not rows:
            return rows
        if ignored is None:
            ignored = await self.account_data.ignored_users(requester.user_id)
        rows = [r for r in rows if r["state_key"] is not None or r["sender"] not in ignored]
        if joined_now is None:
            current = await event_store.membership_of(self.database.pool, room.room_nid, requester.user_id)
            joined_now = current is not None and current["membership"] == "join"
        keys = await self.store.key_nids([("m.room.history_visibility", ""), ("m.room.member", requester.user_id)])
        visibility_key = keys.get(("m.room.history_visibility", ""))
        member_key = keys.get(("m.room.member", requester.user_id))
        visible = []
        for row in rows:
            state = await self.store.state_entries(row["state_group"], (visibility_key, member_key)) \
                if row["state_group"] is not None else {}
            wanted = [n for n in (state.get(visibility_key), state.get(member_key)) if n is not None]
            events = await self.store.events(room, wanted)
            visibility_event = events.get(state.get(visibility_key, -1))
            member_event = events.get(state.get(member_key, -1))
            visibility = visibility_event.content.get("history_visibility", "shared") if visibility_event else "shared"
            if row["type"] == "m.room.history_visibility" and row["state_key"] == "" \
                    and row["stream_ordering"] is not None and visibility_key is not None:
                # A change of visibility is seen under the more open of the old and new (as Synapse).
                before = await self._visibility_before(room, row, visibility_key)
                visibility = min(visibility, before, key=lambda v: VISIBILITY_OPENNESS.get(v, len(VISIBILITY_OPENNESS)))
            membership = member_event.membership if member_event else None
            own_membership = row["type"] == "m.room.member" and row["state_key"] == requester.user_id
            if (
                own_membership or row["event_nid"] in always or membership == "join" or visibility == "world_readable"
                or (joined_now and (visibility == "shared" or (visibility == "invited" and membership == "invite")))
            ):
                visible.append(row)
        return visible

    async def _visibility_before(self, room: Room, row: dict[str, Any], visibility_key: int) -> str:
        """The history visibility in force before a visibility change (pages read it with the row)."""
        if "state_group_before" in row:
            group = row["state_group_before"]
        else:
            group = await event_store.state_group_at(self.database.pool, room.room_nid, row["stream_ordering"] - 1)
        entries = await self.store.state_entries(group, [visibility_key]) if group is not None else {}
        nid = entries.get(visibility_key)
        event = (await self.store.events(room, [nid]))[nid] if nid is not None else None
        return event.content.get("history_visibility", "shared") if event else "shared"

    async def client_events(
        self, requester: Requester, room: Room, rows: list[dict[str, Any]],
        txns: dict[str, str] | None = None, bundles: dict[str, dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Stored events in client format: the requester's transaction ids, redactions applied,
        aggregations bundled. `txns` and `bundles` may come prefetched for many rooms (sync)."""
        if txns is None:
            txns = await event_store.txn_ids_for_events(
                self.database.pool, requester.user_id, requester.device_id, [r["event_id"] for r in rows]
            )
        because: dict[str, dict[str, Any]] = {}
        for redaction_id in {r["redacted_by"] for r in rows if r.get("redacted_by")}:
            row = await event_store.event_by_id(self.database.pool, redaction_id)
            if row is not None:
                because[redaction_id] = client_event(self.store.event_from_row(room.version, row))
        if bundles is None:
            bundles = await self.bundled_aggregations(requester, room, [r for r in rows if not r.get("redacted_by")])
        serialised = []
        for r in rows:
            event = client_event(self.store.event_of_row(room.version, r), r["stream_ordering"],
                                 txns.get(r["event_id"]), because.get(r.get("redacted_by") or ""))
            if r["event_id"] in bundles:
                event["unsigned"]["m.relations"] = bundles[r["event_id"]]
            serialised.append(event)
        return serialised

    async def bundled_aggregations(
        self, requester: Requester, room: Room, rows: list[dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        return await self.bundled_aggregations_of(requester, [(room, rows)])

    async def bundled_aggregations_of(
        self, requester: Requester, rooms: list[tuple[Room, list[dict[str, Any]]]]
    ) -> dict[str, dict[str, Any]]:
        """`unsigned.m.relations` (client-server API "Aggregations of child events") for events of
        several rooms in one query: threads with their latest event and count, the latest edit,
        references."""
        senders = {r["event_id"]: r["sender"] for _room, rows in rooms for r in rows}
        room_of = {r["event_id"]: room for room, rows in rooms for r in rows}
        if not senders:
            return {}
        summaries = await event_store.relation_summaries(self.database.pool, list(senders), requester.user_id)
        latest: dict[int, Any] = {}
        for summary in summaries:
            if summary["rel_type"] in ("m.thread", "m.replace"):
                room = room_of[summary["relates_to_id"]]
                latest.update(await self.store.events(room, [summary["latest_nid"]]))
        bundles: dict[str, dict[str, Any]] = {}
        for summary in summaries:
            parent = summary["relates_to_id"]
            if summary["rel_type"] == "m.thread":
                bundles.setdefault(parent, {})["m.thread"] = {
                    "latest_event": client_event(latest[summary["latest_nid"]]),
                    "count": summary["count"],
                    "current_user_participated": summary["participated"] or senders[parent] == requester.user_id,
                }
            elif summary["rel_type"] == "m.replace":
                bundles.setdefault(parent, {})["m.replace"] = client_event(latest[summary["latest_nid"]])
            elif summary["rel_type"] == "m.reference":
                bundles.setdefault(parent, {})["m.reference"] = {
                    "chunk": [{"event_id": child} for child in summary["child_ids"]]
                }
        return bundles

    async def search(self, requester: Requester, body: dict[str, Any], next_batch: str | None) -> dict[str, Any]:
        """`POST /search` over room events (client-server API search.yaml): PostgreSQL full-text
        search in the rooms the user is joined to, results filtered by history visibility."""
        categories = body.get("search_categories")
        if not isinstance(categories, dict):
            raise bad_json("search_categories must be an object")
        criteria = categories.get("room_events")
        if criteria is None:
            return {"search_categories": {}}
        if not isinstance(criteria, dict) or not isinstance(criteria.get("search_term"), str):
            raise bad_json("room_events.search_term must be a string")
        keys = criteria.get("keys", ["content.body", "content.name", "content.topic"])
        if not isinstance(keys, list) or not all(k in ("content.body", "content.name", "content.topic") for k in keys):
            raise bad_json("keys may be content.body, content.name and content.topic")
        order_by = criteria.get("order_by", "rank")
        if order_by not in ("rank", "recent"):
            raise bad_json("order_by must be rank or recent")
        event_filter = EventFilter.parse(criteria.get("filter"), "filter", 10)
        context = criteria.get("event_context")
        if context is not None and not isinstance(context, dict):
            raise bad_json("event_context must be an object")
        groupings = criteria.get("groupings", {}).get("group_by", []) if isinstance(criteria.get("groupings"), dict) else []
        offset, before = 0, None
        if next_batch:
            kind, _, value = next_batch.partition(":")
            if kind not in ("o", "s") or not value.isdigit():
                raise invalid_param("Invalid next_batch")
            offset, before = (int(value), None) if kind == "o" else (0, int(value))
        joined = [r for r in await event_store.rooms_of_user(self.database.pool, requester.user_id, ("join",))
                  if event_filter.rooms is None or r["room_id"] in event_filter.rooms]
        joined = [r for r in joined if r["room_id"] not in event_filter.not_rooms]
        limit = event_filter.limit or 10
        rows, count = await event_store.search_events(
            self.database.pool, [r["room_nid"] for r in joined], criteria["search_term"], keys, order_by == "rank",
            offset, before, limit,
        )
        # Visibility and serialisation once per room for the whole page, not per result.
        room_ids = {r["room_nid"]: r["room_id"] for r in joined}
        shown: dict[str, dict[str, Any]] = {}
        rooms: dict[int, Room] = {}
        for room_nid in dict.fromkeys(row["room_nid"] for row in rows):
            room = rooms[room_nid] = await self.store.require_room(room_ids[room_nid])
            visible = [r for r in await self.visible_rows(requester, room, [r for r in rows if r["room_nid"] == room_nid])
                       if event_filter.allows(r["type"], r["sender"], room.room_id)]
            for visible_row, event in zip(visible, await self.client_events(requester, room, visible)):
                shown[visible_row["event_id"]] = event
        results = []
        group_rooms: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row["event_id"] not in shown:
                continue
            room = rooms[row["room_nid"]]
            result: dict[str, Any] = {"rank": float(row["rank"]), "result": shown[row["event_id"]]}
            if context is not None:
                result["context"] = await self._search_context(requester, room, row, context)
            results.append(result)
            group = group_rooms.setdefault(room.room_id, {"results": [], "order": len(group_rooms) + 1})
            group["results"].append(row["event_id"])
        out: dict[str, Any] = {"count": count, "results": results, "highlights": criteria["search_term"].split()}
        if len(rows) == limit:
            out["next_batch"] = f"o:{offset + limit}" if order_by == "rank" else f"s:{rows[-1]['stream_ordering']}"
        if any(isinstance(g, dict) and g.get("key") == "room_id" for g in groupings):
            out["groups"] = {"room_id": group_rooms}
        return {"search_categories": {"room_events": out}}

    async def _search_context(
        self, requester: Requester, room: Room, row: dict[str, Any], context: dict[str, Any]
    ) -> dict[str, Any]:
        before_limit = min(int(context.get("before_limit", 5)), 20)
        after_limit = min(int(context.get("after_limit", 5)), 20)
        position = row["stream_ordering"]
        before = await event_store.room_events(self.database.pool, room.room_nid, None, position - 1, before_limit, True)
        after = await event_store.room_events(self.database.pool, room.room_nid, position, None, after_limit, False)
        return {
            "events_before": await self.client_events(requester, room, await self.visible_rows(requester, room, before)),
            "events_after": await self.client_events(requester, room, await self.visible_rows(requester, room, after)),
            "start": f"t{position - 1}", "end": f"t{position}",
        }

    async def relations(
        self, requester: Requester, room_id: str, event_id: str, rel_type: str | None, event_type: str | None,
        from_token: str | None, to_token: str | None, limit: int, direction: str,
    ) -> dict[str, Any]:
        """`/relations`: the children of an event, newest first by default."""
        room = await self.store.require_room(room_id)
        await self._visible_state(room, requester.user_id)
        parent = await event_store.event_by_id(self.database.pool, event_id)
        if parent is None or parent["room_nid"] != room.room_nid or not await self.visible_rows(requester, room, [parent]):
            raise not_found("Event not found")
        position = parse_position(from_token) if from_token else None
        bound = parse_position(to_token) if to_token else None
        newest_first = direction == "b"
        after, before = (bound, position) if newest_first else (position, bound)
        rows = await event_store.related_events(
            self.database.pool, room.room_nid, event_id, rel_type, event_type, after, before, limit, newest_first
        )
        visible = await self.visible_rows(requester, room, rows)
        result: dict[str, Any] = {"chunk": await self.client_events(requester, room, visible)}
        if len(rows) == limit:
            result["next_batch"] = f"t{rows[-1]['stream_ordering']}"
        return result

    async def threads(
        self, requester: Requester, room_id: str, participated_only: bool, from_token: str | None, limit: int
    ) -> dict[str, Any]:
        """`/threads`: thread roots, most recently active first."""
        room = await self.store.require_room(room_id)
        await self._visible_state(room, requester.user_id)
        before = parse_position(from_token) if from_token else None
        roots = await event_store.thread_roots(
            self.database.pool, room.room_nid, requester.user_id if participated_only else None, before, limit
        )
        rows = [r for r in [await event_store.event_by_id(self.database.pool, t["relates_to_id"]) for t in roots]
                if r is not None and r["room_nid"] == room.room_nid]
        visible = await self.visible_rows(requester, room, rows)
        result: dict[str, Any] = {"chunk": await self.client_events(requester, room, visible)}
        if len(roots) == limit:
            result["next_batch"] = f"t{roots[-1]['latest']}"
        return result

    async def redact(
        self, requester: Requester, room_id: str, event_id: str, txn_id: str, body: dict[str, Any]
    ) -> str:
        """Redact an event: the sender's own, or anyone's with the redact power level."""
        async def send(room: Room) -> Persisted:
            target = await event_store.event_by_id(self.database.pool, event_id)
            if target is None:
                raise not_found("Unknown event")
            if target["room_nid"] != room.room_nid:
                raise invalid_param("The event belongs to another room")
            if target["sender"] != requester.user_id:
                state = await self.store.state_events(
                    room, await event_store.current_state(self.database.pool, room.room_nid)
                )
                if user_level(requester.user_id, state) < named_level(state, "redact"):
                    raise forbidden("You may only redact your own events")
            content = {"reason": body["reason"]} if isinstance(body.get("reason"), str) else {}
            return await self._send(room, requester.user_id, "m.room.redaction", content, redacts=event_id)

        return await self._client_send(requester, room_id, txn_id, send)

    def _rate_limit(self, user_id: str) -> None:
        """`rc_message`: events sent by clients (not those the server sends for them)."""
        if user_id not in self.config.rc_exempt_users:
            self.message_limiter.check(user_id)

    async def send(
        self, requester: Requester, room_id: str, event_type: str, txn_id: str, content: dict[str, Any]
    ) -> str:
        async def send(room: Room) -> Persisted:
            return await self._send(room, requester.user_id, event_type, content)

        return await self._client_send(requester, room_id, txn_id, send)

    async def _client_send(
        self, requester: Requester, room_id: str, txn_id: str, send: Callable[[Room], Awaitable[Persisted]]
    ) -> str:
        """A client's event under a transaction id: the earlier event when the id was used already,
        else rate-limited, sent and recorded."""
        previous = await event_store.get_txn_event(self.database.pool, requester.user_id, requester.device_id, txn_id)
        if previous is not None:
            return previous
        self._rate_limit(requester.user_id)
        persisted = await send(await self.store.require_room(room_id))
        await event_store.add_txn_event(
            self.database.pool, requester.user_id, requester.device_id, txn_id, persisted.event.event_id,
            int(time.time() * 1000),
        )
        return persisted.event.event_id

    async def set_state(
        self, requester: Requester, room_id: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> str:
        room = await self.store.require_room(room_id)
        self._rate_limit(requester.user_id)
        if event_type == "m.room.canonical_alias" and state_key == "" and self.directory is not None:
            await self.directory.check_canonical_alias(room_id, content)
        if event_type == "m.room.member":
            membership = content.get("membership")
            if not isinstance(membership, str):
                raise bad_json("m.room.member needs content.membership")
        unchanged = await self._unchanged_state(room, requester.user_id, event_type, state_key, content)
        if unchanged is not None:
            return unchanged
        persisted = await self._send(room, requester.user_id, event_type, content, state_key)
        if event_type == "m.room.guest_access" and content.get("guest_access") != "can_join":
            await self._remove_guests(room)
        return persisted.event.event_id

    async def alias_deleted(self, requester: Requester, room_id: str, alias: str) -> None:
        """A deleted alias leaves the room's `m.room.canonical_alias` (as Synapse does), when the
        deleting user may change it."""
        room = await self.store.room(room_id)
        key = await self.store.key_nids([("m.room.canonical_alias", "")])
        if room is None or not key:
            return
        nid = await event_store.current_state_event(self.database.pool, room.room_nid, next(iter(key.values())))
        if nid is None:
            return
        content = dict((await self.store.events(room, [nid]))[nid].content)
        alt = content.get("alt_aliases")
        if content.get("alias") != alias and not (isinstance(alt, list) and alias in alt):
            return
        if content.get("alias") == alias:
            content.pop("alias")
        if isinstance(alt, list):
            content["alt_aliases"] = [a for a in alt if a != alias]
        try:
            await self._send(room, requester.user_id, "m.room.canonical_alias", content, "")
        except MatrixError as exc:
            logger.info("alias %s deleted but left in %s's canonical alias: %s", alias, room_id, exc.message)

    async def _guests_may_join(self, room: Room) -> bool:
        key = await self.store.key_nids([("m.room.guest_access", "")])
        nid = await event_store.current_state_event(self.database.pool, room.room_nid, next(iter(key.values()))) \
            if key else None
        if nid is None:
            return False
        return (await self.store.events(room, [nid]))[nid].content.get("guest_access") == "can_join"

    async def _remove_guests(self, room: Room) -> None:
        """Guest access revoked: our guests leave the room (as Synapse does)."""
        members = await event_store.members_of(self.database.pool, room.room_nid, ("join",))
        local = [m for m in members if server_of(m) == self.config.server_name]
        for guest in await users.guests_among(self.database.pool, local):
            try:
                await self._send(room, guest, "m.room.member", {"membership": "leave"}, guest)
            except MatrixError as exc:
                logger.info("could not remove guest %s from %s: %s", guest, room.room_id, exc.message)

    async def _unchanged_state(
        self, room: Room, sender: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> str | None:
        """The current state event when the same sender sets the same content again: no new
        event then (as Synapse deduplicates state)."""
        key = await self.store.key_nids([(event_type, state_key)])
        if (event_type, state_key) not in key:
            return None
        current = await event_store.current_state_event(self.database.pool, room.room_nid, key[(event_type, state_key)])
        if current is None:
            return None
        event = (await self.store.events(room, [current]))[current]
        return event.event_id if event.sender == sender and event.content == content else None

    async def world_readable(self, room: Room) -> bool:
        """Whether the room's history is currently `world_readable` (anyone may peek, as in Synapse)."""
        key = await self.store.key_nids([("m.room.history_visibility", "")])
        if not key:
            return False
        nid = await event_store.current_state_event(self.database.pool, room.room_nid, next(iter(key.values())))
        if nid is None:
            return False
        event = (await self.store.events(room, [nid]))[nid]
        return event.content.get("history_visibility") == "world_readable"

    async def _visible_state(self, room: Room, user_id: str) -> dict[int, int]:
        """Current state for members and for anyone in a world-readable room; the state when they
        left for former members."""
        row = await event_store.membership_of(self.database.pool, room.room_nid, user_id)
        if row is None or row["membership"] not in ("join", "leave", "ban"):
            if await self.world_readable(room):
                return await event_store.current_state(self.database.pool, room.room_nid)
            raise forbidden(f"User {user_id} is not in the room")
        if row["membership"] == "join":
            return await event_store.current_state(self.database.pool, room.room_nid)
        group = await event_store.state_group_at(self.database.pool, room.room_nid, row["stream_ordering"])
        return await self.store.state_group(group) if group is not None else {}

    async def state(self, requester: Requester, room_id: str) -> list[dict[str, Any]]:
        room = await self.store.require_room(room_id)
        state = await self._visible_state(room, requester.user_id)
        events = await self.store.events(room, state.values())
        return [client_event(e) for e in events.values()]

    async def state_event(
        self, requester: Requester, room_id: str, event_type: str, state_key: str, whole_event: bool = False
    ) -> dict[str, Any]:
        """A state event's content, or (`?format=event`) the whole event in client format."""
        room = await self.store.require_room(room_id)
        state = await self._visible_state(room, requester.user_id)
        key_nid = (await self.store.key_nids([(event_type, state_key)])).get((event_type, state_key))
        if key_nid is None or key_nid not in state:
            raise not_found("Event not found")
        event = (await self.store.events(room, [state[key_nid]]))[state[key_nid]]
        return client_event(event) if whole_event else event.content

    async def members(
        self, requester: Requester, room_id: str, at: str | None = None, membership: str | None = None,
        not_membership: str | None = None,
    ) -> list[dict[str, Any]]:
        """Member events, as of `at` (a sync or pagination token) and filtered by membership."""
        room = await self.store.require_room(room_id)
        state = await self._visible_state(room, requester.user_id)
        if at is not None:
            position = min(parse_position(at), await self._visible_position(room, requester.user_id))
            group = await event_store.state_group_at(self.database.pool, room.room_nid, position)
            state = await self.store.state_group(group) if group is not None else {}
        by_key = await self.store.state_events(room, state)
        return [
            client_event(e) for key, e in by_key.items()
            if key[0] == "m.room.member" and (membership is None or e.membership == membership)
            and (not_membership is None or e.membership != not_membership)
        ]

    async def _visible_position(self, room: Room, user_id: str) -> int:
        """The last stream position the user may see in the room (their leave, or now)."""
        row = await event_store.membership_of(self.database.pool, room.room_nid, user_id)
        if row is not None and row["membership"] in ("leave", "ban"):
            return row["stream_ordering"]
        return await self.pipeline.current_position()

    async def context(
        self, requester: Requester, room_id: str, event_id: str, limit: int, event_filter: EventFilter | None = None,
    ) -> dict[str, Any]:
        """`/context`: the event, up to `limit` events around it (those the filter allows), and the
        state at the last one returned (with lazy-loading, only the memberships of their senders)."""
        room = await self.store.require_room(room_id)
        target = await event_store.event_by_id(self.database.pool, event_id)
        ceiling = await self._visible_position(room, requester.user_id)
        await self._visible_state(room, requester.user_id)
        if target is None or target["room_nid"] != room.room_nid or target["stream_ordering"] is None \
                or target["stream_ordering"] > ceiling:
            raise not_found("Event not found")
        position = target["stream_ordering"]
        types = _type_bounds(event_filter)
        before = await event_store.room_events(
            self.database.pool, room.room_nid, None, position - 1, limit // 2, True, *types
        )
        after = await event_store.room_events(
            self.database.pool, room.room_nid, position, ceiling, limit - len(before), False, *types
        )
        last = after[-1]["stream_ordering"] if after else position
        if not await self.visible_rows(requester, room, [target]):
            raise not_found("Event not found")
        shown_before = self._filtered(room, await self.visible_rows(requester, room, before), event_filter)
        shown_after = self._filtered(room, await self.visible_rows(requester, room, after), event_filter)
        return {
            "event": (await self.client_events(requester, room, [target]))[0],
            "events_before": await self.client_events(requester, room, shown_before),
            "events_after": await self.client_events(requester, room, shown_after),
            "start": f"t{(before[-1]['stream_ordering'] if before else position) - 1}",
            "end": f"t{last}",
            "state": await self._state_for_page(room, last, [target, *shown_before, *shown_after], event_filter),
        }

    @staticmethod
    def _filtered(room: Room, rows: list[dict[str, Any]], event_filter: EventFilter | None) -> list[dict[str, Any]]:
        if event_filter is None:
            return rows
        return [r for r in rows if event_filter.allows(r["type"], r["sender"], room.room_id)]

    async def _state_for_page(
        self, room: Room, position: int, rows: list[dict[str, Any]], event_filter: EventFilter | None,
    ) -> list[dict[str, Any]]:
        """The state after `position`; with lazy-loading only the memberships of the rows' senders."""
        group = await event_store.state_group_at(self.database.pool, room.room_nid, position)
        state = await self.store.state_events(room, await self.store.state_group(group)) if group is not None else {}
        if event_filter is not None and event_filter.lazy_load_members:
            senders = {r["sender"] for r in rows}
            return [client_event(e) for key, e in state.items() if key[0] == "m.room.member" and key[1] in senders]
        return [client_event(e) for e in state.values()]

    async def timestamp_to_event(self, requester: Requester, room_id: str, ts: int, forwards: bool) -> dict[str, Any]:
        room = await self.store.require_room(room_id)
        await self._visible_state(room, requester.user_id)
        found = await event_store.event_near_timestamp(self.database.pool, room.room_nid, ts, forwards)
        if found is None:
            raise not_found(f"No event found {'after' if forwards else 'before'} {ts}")
        return {"event_id": found["event_id"], "origin_server_ts": found["origin_server_ts"]}

    async def propagate_profile(self, user_id: str) -> None:
        """A new displayname or avatar goes into the user's membership in every joined room."""
        for row in await event_store.rooms_of_user(self.database.pool, user_id, ("join",)):
            room = await self.store.require_room(row["room_id"])
            try:
                await self._send(room, user_id, "m.room.member", await self._member_content(user_id, "join", {}),
                                 user_id)
            except MatrixError:
                continue

    async def joined_members(self, requester: Requester, room_id: str) -> dict[str, Any]:
        room = await self.store.require_room(room_id)
        await self._require_joined(room, requester.user_id)
        by_key = await self.store.state_events(room, await event_store.current_state(self.database.pool, room.room_nid))
        return {
            key[1]: {"display_name": e.content.get("displayname"), "avatar_url": e.content.get("avatar_url")}
            for key, e in by_key.items() if key[0] == "m.room.member" and e.membership == "join"
        }

    async def event(self, requester: Requester, room_id: str, event_id: str) -> dict[str, Any]:
        room = await self.store.require_room(room_id)
        membership = await event_store.membership_of(self.database.pool, room.room_nid, requester.user_id)
        row = await event_store.event_by_id(self.database.pool, event_id)
        if row is None or row["room_nid"] != room.room_nid or row["rejected_reason"] is not None:
            raise not_found("Event not found")
        visible = membership is not None and (
            membership["membership"] == "join"
            or (row["stream_ordering"] is not None and row["stream_ordering"] <= membership["stream_ordering"])
        )
        if not visible or not await self.visible_rows(requester, room, [row]):
            raise not_found("Event not found")
        return (await self.client_events(requester, room, [row]))[0]

    async def messages(
        self, requester: Requester, room_id: str, from_token: str | None, direction: str, limit: int,
        to_token: str | None, event_filter: EventFilter | None = None,
    ) -> dict[str, Any]:
        """`/messages`: stream positions as pagination tokens (`t<position>`)."""
        room = await self.store.require_room(room_id)
        membership = await event_store.membership_of(self.database.pool, room.room_nid, requester.user_id)
        if membership is None or membership["membership"] not in ("join", "leave", "ban"):
            if not await self.world_readable(room):
                raise forbidden(f"User {requester.user_id} is not in the room")
            membership = {"membership": "peek", "stream_ordering": None}
        ceiling = None if membership["membership"] in ("join", "peek") else membership["stream_ordering"]
        limit = max(1, min(limit, MAX_HISTORY_PAGE))
        position = parse_position(from_token) if from_token else None
        bound = parse_position(to_token) if to_token else None
        types = _type_bounds(event_filter)
        if direction == "b":
            upto = position if position is not None else await self.pipeline.current_position()
            if ceiling is not None:
                upto = min(upto, ceiling)
            rows = await event_store.room_events(self.database.pool, room.room_nid, bound, upto, limit, True, *types)
            if len(rows) < limit and self.federation is not None \
                    and await self.federation.backfill(room, limit - len(rows)):
                rows = await event_store.room_events(self.database.pool, room.room_nid, bound, upto, limit, True,
                                                     *types)
            end = rows[-1]["stream_ordering"] - 1 if rows else None
        else:
            after = position if position is not None else 0
            upto = bound if bound is not None else ceiling
            rows = await event_store.room_events(self.database.pool, room.room_nid, after, upto, limit, False, *types)
            end = rows[-1]["stream_ordering"] if rows else None
        start = position if position is not None else (upto if direction == "b" else 0)
        visible = self._filtered(room, await self.visible_rows(requester, room, rows), event_filter)
        result: dict[str, Any] = {"chunk": await self.client_events(requester, room, visible), "start": f"t{start}"}
        if event_filter is not None and event_filter.lazy_load_members:
            # The senders' memberships as of the page's newest event: each of them has one there.
            newest = max((r["stream_ordering"] for r in visible), default=None)
            result["state"] = [] if newest is None else await self._state_for_page(room, newest, visible, event_filter)
        if end is not None:
            # Whenever the page has events, as Synapse: the page after the last one is empty.
            result["end"] = f"t{end}"
        return result


# History visibilities, most open first.
VISIBILITY_OPENNESS = {"world_readable": 0, "shared": 1, "invited": 2, "joined": 3}


def _type_bounds(event_filter: EventFilter | None) -> tuple[Sequence[str] | None, Sequence[str]]:
    """A filter's `types` and `not_types`, applied where events are read so they count before the limit."""
    return (None, ()) if event_filter is None else (event_filter.types, event_filter.not_types)


def parse_position(token: str) -> int:
    """A pagination token `t<position>` (sync's `next_batch` works too)."""
    raw = token[1:] if token[:1] in ("t", "s") else token
    raw = raw.split("_", 1)[0]
    if not raw.removeprefix("-").isdigit():
        raise invalid_param(f"Invalid pagination token {token!r}")
    return int(raw)
