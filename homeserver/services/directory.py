"""Room aliases, the public room list, calls (TURN), OpenID tokens and content reports.

Client-server API directory.yaml, list_public_rooms.yaml, voip.yaml, openid.yaml,
report_content.yaml; server-server API openid.yaml (userinfo).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import re
import secrets
import time
from typing import Any, Awaitable, Callable

from homeserver.config import Config
from homeserver.core.ids import server_of
from homeserver.core.power_levels import send_level, user_level
from homeserver.errors import MatrixError, bad_json, forbidden, invalid_param, not_found
from homeserver.federation.client import FederationClient, FederationError, Unreachable
from homeserver.services.events import EventStore
from homeserver.services.sessions import Requester
from homeserver.storage import aliases, directory
from homeserver.storage import events as event_store
from homeserver.storage import federation as federation_store
from homeserver.storage import users
from homeserver.storage.database import Database

ALIAS = re.compile(r"#[^:\s]+:\S+\Z")
OPENID_LIFETIME_MS = 3600 * 1000
MAX_PUBLIC_ROOMS_PAGE = 500


class Directory:
    def __init__(self, config: Config, database: Database, store: EventStore, federation_client: FederationClient) -> None:
        self.config = config
        self.database = database
        self.store = store
        self.federation_client = federation_client
        self.on_alias_deleted: Callable[[Requester, str, str], Awaitable[None]] | None = None
        """Takes a deleted alias out of the room's canonical alias event; set by the server."""

    # --- aliases ----------------------------------------------------------------------------

    def _local_alias(self, alias: str) -> str:
        if not ALIAS.match(alias) or len(alias) > 255:
            raise invalid_param(f"{alias!r} is not a room alias")
        if server_of(alias) != self.config.server_name:
            raise invalid_param("Room aliases of other servers cannot be managed here")
        return alias

    async def _is_admin(self, user_id: str) -> bool:
        user = await users.get_user(self.database.pool, user_id)
        return bool(user and user["admin"])

    async def create_alias(self, requester: Requester, alias: str, body: dict[str, Any]) -> None:
        alias = self._local_alias(alias)
        room_id = body.get("room_id")
        if not isinstance(room_id, str):
            raise bad_json("room_id is required")
        await self.store.require_room(room_id)
        if not await aliases.create_alias(self.database.pool, alias, room_id, requester.user_id):
            raise MatrixError(409, "M_UNKNOWN", f"Room alias {alias} already exists")

    async def resolve(self, alias: str) -> dict[str, Any]:
        if not ALIAS.match(alias):
            raise invalid_param(f"{alias!r} is not a room alias")
        if server_of(alias) != self.config.server_name:
            return await self._resolve_remote(alias)
        room_id = await aliases.resolve_alias(self.database.pool, alias)
        if room_id is None:
            raise not_found(f"Room alias {alias} not found")
        servers = [self.config.server_name]
        room = await self.store.room(room_id)
        if room is not None:
            servers += sorted(set(await federation_store.servers_in_room(self.database.pool, room.room_nid)) - {servers[0]})
        return {"room_id": room_id, "servers": servers}

    async def _resolve_remote(self, alias: str) -> dict[str, Any]:
        """An alias of another server, asked over federation (`/query/directory`)."""
        try:
            answer = await self.federation_client.request(
                "GET", server_of(alias), "/_matrix/federation/v1/query/directory", query={"room_alias": alias}
            )
        except FederationError as exc:
            if exc.status == 404:
                raise not_found(f"Room alias {alias} not found") from None
            raise MatrixError(502, "M_UNKNOWN", f"{server_of(alias)} could not resolve the alias: {exc}") from None
        except Unreachable as exc:
            raise MatrixError(502, "M_UNKNOWN", f"Could not reach {server_of(alias)}: {exc}") from None
        room_id = answer.get("room_id") if isinstance(answer, dict) else None
        servers = answer.get("servers") if isinstance(answer, dict) else None
        if not isinstance(room_id, str) or not isinstance(servers, list):
            raise MatrixError(502, "M_UNKNOWN", f"{server_of(alias)} sent an invalid answer")
        return {"room_id": room_id, "servers": [s for s in servers if isinstance(s, str)]}

    async def delete_alias(self, requester: Requester, alias: str) -> None:
        alias = self._local_alias(alias)
        creator = await aliases.alias_creator(self.database.pool, alias)
        if creator is None:
            raise not_found(f"Room alias {alias} not found")
        room_id = await aliases.resolve_alias(self.database.pool, alias)
        if creator != requester.user_id and not await self._is_admin(requester.user_id):
            if not room_id or not await self._can_edit(requester.user_id, room_id):
                raise forbidden("You may not delete this alias")
        await aliases.delete_alias(self.database.pool, alias)
        if room_id and self.on_alias_deleted is not None:
            await self.on_alias_deleted(requester, room_id, alias)

    async def room_aliases(self, requester: Requester, room_id: str) -> list[str]:
        room = await self.store.require_room(room_id)
        membership = await event_store.membership_of(self.database.pool, room.room_nid, requester.user_id)
        if membership is None or membership["membership"] != "join":
            raise forbidden("You are not in the room")
        return await aliases.aliases_of_room(self.database.pool, room_id)

    async def check_canonical_alias(self, room_id: str, content: dict[str, Any]) -> None:
        """`m.room.canonical_alias` may only name valid aliases, and ours must point at the room."""
        names = []
        if content.get("alias") is not None:
            names.append(content["alias"])
        alt = content.get("alt_aliases", [])
        if not isinstance(alt, list):
            raise MatrixError(400, "M_INVALID_PARAM", "alt_aliases must be a list")
        names.extend(alt)
        for name in names:
            if not isinstance(name, str) or not ALIAS.match(name):
                raise MatrixError(400, "M_INVALID_PARAM", f"{name!r} is not a room alias")
            if server_of(name) == self.config.server_name and \
                    await aliases.resolve_alias(self.database.pool, name) != room_id:
                raise MatrixError(400, "M_BAD_ALIAS", f"{name} does not point to this room")

    # --- the public room list ---------------------------------------------------------------------

    async def _can_edit(self, user_id: str, room_id: str) -> bool:
        room = await self.store.require_room(room_id)
        state = await self.store.state_events(room, await event_store.current_state(self.database.pool, room.room_nid))
        member = state.get(("m.room.member", user_id))
        return member is not None and member.membership == "join" and \
            user_level(user_id, state) >= send_level("m.room.canonical_alias", "", state)

    def _publication_allowed(self, user_id: str, room_id: str, room_aliases: list[str]) -> bool:
        for rule in self.config.room_list_publication_rules:
            if not fnmatch.fnmatchcase(user_id, rule.user_id) or not fnmatch.fnmatchcase(room_id, rule.room_id):
                continue
            if rule.alias != "*" and not any(fnmatch.fnmatchcase(a, rule.alias) for a in room_aliases):
                continue
            return rule.action == "allow"
        return False

    async def visibility(self, room_id: str) -> str:
        await self.store.require_room(room_id)
        return "public" if await directory.is_published(self.database.pool, room_id) else "private"

    async def move_to_upgraded_room(self, conn: Any, old_room_id: str, new_room_id: str) -> None:
        """A room upgrade: its local aliases and its place in the public room list go to the new room
        (in the caller's transaction)."""
        await aliases.move_aliases(conn, old_room_id, new_room_id)
        if await directory.is_published(conn, old_room_id):
            await directory.set_published(conn, old_room_id, False)
            await directory.set_published(conn, new_room_id, True)

    async def set_visibility(self, requester: Requester, room_id: str, body: dict[str, Any]) -> None:
        visibility = body.get("visibility", "public")
        if visibility not in ("public", "private"):
            raise invalid_param("visibility must be 'public' or 'private'")
        await self.store.require_room(room_id)
        if not await self._is_admin(requester.user_id) and not await self._can_edit(requester.user_id, room_id):
            raise forbidden("You may not change this room's visibility")
        if visibility == "public" and not await self._is_admin(requester.user_id) and not self._publication_allowed(
            requester.user_id, room_id, await aliases.aliases_of_room(self.database.pool, room_id)
        ):
            raise forbidden("Publishing this room is not allowed on this server")
        await directory.set_published(self.database.pool, room_id, visibility == "public")

    async def publish_new_room(self, conn: Any, user_id: str, room_id: str, room_aliases: list[str]) -> None:
        """`createRoom` with public visibility: publish in the room's creation transaction."""
        if not await self._is_admin(user_id) and not self._publication_allowed(user_id, room_id, room_aliases):
            raise forbidden("Publishing this room is not allowed on this server")
        await directory.set_published(conn, room_id, True)

    async def public_rooms(self, limit: int | None, since: str | None, search: str | None, server: str | None) -> dict[str, Any]:
        if server is not None and server != self.config.server_name:
            return await self._remote_public_rooms(server, limit, since, search)
        if limit is not None and limit < 1:
            raise invalid_param("limit must be positive")
        start = 0
        if since:
            if not since.startswith("p") or not since[1:].isdigit():
                raise invalid_param("Invalid pagination token")
            start = int(since[1:])
        entries = []
        for row in await directory.published_rooms(self.database.pool):
            entry = await self._summary(row)
            if search:
                haystack = " ".join(str(entry.get(k, "")) for k in ("name", "topic", "canonical_alias")).lower()
                if search.lower() not in haystack:
                    continue
            entries.append(entry)
        page_size = min(limit or MAX_PUBLIC_ROOMS_PAGE, MAX_PUBLIC_ROOMS_PAGE)
        chunk = entries[start:start + page_size]
        result: dict[str, Any] = {"chunk": chunk, "total_room_count_estimate": len(entries)}
        if start + page_size < len(entries):
            result["next_batch"] = f"p{start + page_size}"
        if start > 0:
            result["prev_batch"] = f"p{max(0, start - page_size)}"
        return result

    async def _remote_public_rooms(
        self, server: str, limit: int | None, since: str | None, search: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if limit is not None:
            body["limit"] = limit
        if since is not None:
            body["since"] = since
        if search is not None:
            body["filter"] = {"generic_search_term": search}
        try:
            answer = await self.federation_client.request(
                "POST", server, "/_matrix/federation/v1/publicRooms", body=body, timeout_s=20
            )
        except FederationError as exc:
            raise MatrixError(exc.status if exc.status < 500 else 502, exc.errcode or "M_UNKNOWN",
                              f"{server} did not list its rooms: {exc.body.get('error', exc)}") from None
        except Unreachable as exc:
            raise MatrixError(502, "M_UNKNOWN", f"Could not reach {server}: {exc}") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("chunk"), list):
            raise MatrixError(502, "M_UNKNOWN", f"{server} sent an invalid room list")
        return answer

    async def federation_hierarchy(self, origin: str, room_id: str, suggested_only: bool) -> dict[str, Any]:
        """Federation `/hierarchy`: a space and its direct children that another server may see
        (public, knockable or world-readable rooms, or rooms it has members in)."""
        room = await self.store.room(room_id)
        if room is None:
            raise not_found("Room not found")

        async def visible(summary: dict[str, Any], nid: int) -> bool:
            return bool(summary["world_readable"] or summary["join_rule"] in ("public", "knock", "knock_restricted")
                        or await federation_store.server_has_members(self.database.pool, nid, origin))

        async def summarise(target: Any) -> dict[str, Any]:
            joined = len(await event_store.members_of(self.database.pool, target.room_nid, ("join",)))
            return await self._summary({"room_id": target.room_id, "joined": joined})

        root = await summarise(room)
        if not await visible(root, room.room_nid):
            raise not_found("Room not found")
        state = await self.store.state_events(room, await event_store.current_state(self.database.pool, room.room_nid))
        links = [e for key, e in sorted(state.items())
                 if key[0] == "m.space.child" and isinstance(e.content.get("via"), list) and e.content["via"]
                 and (not suggested_only or e.content.get("suggested") is True)]
        root["children_state"] = [{"type": e.type, "state_key": e.state_key, "content": e.content,
                                   "sender": e.sender, "origin_server_ts": e.origin_server_ts} for e in links]
        children, inaccessible = [], []
        for link in links:
            child = await self.store.room(link.state_key or "")
            if child is None:
                continue
            summary = await summarise(child)
            if await visible(summary, child.room_nid):
                children.append(summary)
            else:
                inaccessible.append(child.room_id)
        return {"room": root, "children": children, "inaccessible_children": inaccessible}

    async def _summary(self, row: dict[str, Any]) -> dict[str, Any]:
        room = await self.store.require_room(row["room_id"])
        state = await self.store.state_events(room, await event_store.current_state(self.database.pool, room.room_nid))

        def value(event_type: str, key: str) -> Any:
            event = state.get((event_type, ""))
            return event.content.get(key) if event is not None else None

        entry: dict[str, Any] = {
            "room_id": row["room_id"],
            "num_joined_members": row["joined"],
            "world_readable": value("m.room.history_visibility", "history_visibility") == "world_readable",
            "guest_can_join": value("m.room.guest_access", "guest_access") == "can_join",
            "join_rule": value("m.room.join_rules", "join_rule") or "invite",
        }
        for key, event_type, field in (("name", "m.room.name", "name"), ("topic", "m.room.topic", "topic"),
                                       ("canonical_alias", "m.room.canonical_alias", "alias"),
                                       ("avatar_url", "m.room.avatar", "url"), ("room_type", "m.room.create", "type")):
            found = value(event_type, field)
            if isinstance(found, str):
                entry[key] = found
        return entry

    async def search_users(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        term = body.get("search_term")
        limit = body.get("limit", 10)
        if not isinstance(term, str):
            raise bad_json("search_term must be a string")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise bad_json("limit must be a positive integer")
        limit = min(limit, 100)
        if not self.config.user_directory.enabled or not term.strip():
            return {"results": [], "limited": False}
        rows = await directory.search_users(self.database.pool, requester.user_id, term.strip(),
                                            self.config.user_directory.search_all_users, limit + 1)
        results = []
        for row in rows[:limit]:
            entry: dict[str, Any] = {"user_id": row["user_id"]}
            if row["displayname"] is not None:
                entry["display_name"] = row["displayname"]
            if row["avatar_url"] is not None:
                entry["avatar_url"] = row["avatar_url"]
            results.append(entry)
        return {"results": results, "limited": len(rows) > limit}

    # --- room summaries and spaces ------------------------------------------------------------------

    async def _accessible(self, user_id: str | None, room_id: str, summary: dict[str, Any]) -> str | None:
        """The user's membership if they may preview the room (public, world-readable, or theirs)."""
        room = await self.store.require_room(room_id)
        membership = None
        if user_id is not None:
            row = await event_store.membership_of(self.database.pool, room.room_nid, user_id)
            membership = row["membership"] if row else None
        if membership in ("join", "invite", "knock") or summary["world_readable"] \
                or summary["join_rule"] in ("public", "knock", "knock_restricted"):
            return membership or "leave"
        return None

    async def room_summary(self, requester_id: str | None, room_id_or_alias: str) -> dict[str, Any]:
        """`/room_summary`: what a room is, for those who may see it (else 404, as the spec asks)."""
        room_id = room_id_or_alias
        if room_id_or_alias.startswith("#"):
            room_id = (await self.resolve(room_id_or_alias))["room_id"]
        room = await self.store.room(room_id)
        if room is None:
            raise not_found("Room not found.")
        joined = len(await event_store.members_of(self.database.pool, room.room_nid, ("join",)))
        summary = await self._summary({"room_id": room_id, "joined": joined})
        membership = await self._accessible(requester_id, room_id, summary)
        if membership is None:
            raise not_found("Room not found.")
        summary["room_version"] = room.version.identifier
        state = await self.store.state_events(room, await event_store.current_state(self.database.pool, room.room_nid))
        encryption = state.get(("m.room.encryption", ""))
        if encryption is not None and isinstance(encryption.content.get("algorithm"), str):
            summary["encryption"] = encryption.content["algorithm"]
        if requester_id is not None and membership != "leave":
            summary["membership"] = membership
        return summary

    async def hierarchy(
        self, requester: Requester, room_id: str, suggested_only: bool, max_depth: int | None, limit: int,
        from_token: str | None,
    ) -> dict[str, Any]:
        """`/hierarchy`: the space and its children, breadth first (local rooms)."""
        start = 0
        if from_token is not None:
            if not from_token.startswith("h") or not from_token[1:].isdigit():
                raise invalid_param("Invalid pagination token")
            start = int(from_token[1:])
        root = await self.store.room(room_id)
        if root is None:
            raise not_found("Room not found")
        rooms: list[dict[str, Any]] = []
        seen = {room_id}
        queue = [(room_id, 0)]
        while queue:
            current_id, depth = queue.pop(0)
            room = await self.store.room(current_id)
            if room is None:
                continue
            joined = len(await event_store.members_of(self.database.pool, room.room_nid, ("join",)))
            summary = await self._summary({"room_id": current_id, "joined": joined})
            if await self._accessible(requester.user_id, current_id, summary) is None:
                if current_id == room_id:
                    raise forbidden("You cannot see this space")
                continue
            state = await self.store.state_events(room, await event_store.current_state(self.database.pool, room.room_nid))
            children = [
                e for key, e in sorted(state.items())
                if key[0] == "m.space.child" and isinstance(e.content.get("via"), list) and e.content["via"]
                and (not suggested_only or e.content.get("suggested") is True)
            ]
            summary["children_state"] = [
                {"type": e.type, "state_key": e.state_key, "content": e.content, "sender": e.sender,
                 "origin_server_ts": e.origin_server_ts} for e in children
            ]
            rooms.append(summary)
            if max_depth is None or depth < max_depth:
                for child in children:
                    if child.state_key not in seen:
                        seen.add(child.state_key)  # type: ignore[arg-type]
                        queue.append((child.state_key, depth + 1))  # type: ignore[arg-type]
        page = rooms[start:start + limit]
        result: dict[str, Any] = {"rooms": page}
        if start + limit < len(rooms):
            result["next_batch"] = f"h{start + limit}"
        return result

    # --- calls, OpenID, reports -------------------------------------------------------------------------

    def turn_server(self, requester: Requester) -> dict[str, Any]:
        """coturn's REST credentials: user `expiry:user_id`, password HMAC-SHA1 of it with the shared secret."""
        if not self.config.turn_uris or not self.config.turn_shared_secret:
            return {}
        lifetime_s = int(self.config.turn_user_lifetime) // 1000
        username = f"{int(time.time()) + lifetime_s}:{requester.user_id}"
        digest = hmac.new(self.config.turn_shared_secret.encode(), username.encode(), hashlib.sha1).digest()
        return {"username": username, "password": base64.b64encode(digest).decode(), "uris": list(self.config.turn_uris),
                "ttl": lifetime_s}

    async def openid_token(self, requester: Requester, user_id: str) -> dict[str, Any]:
        if user_id != requester.user_id:
            raise forbidden("Cannot request OpenID tokens for other users")
        token = secrets.token_urlsafe(32)
        await directory.add_openid_token(self.database.pool, hashlib.sha256(token.encode()).digest(), user_id,
                                         int(time.time() * 1000) + OPENID_LIFETIME_MS)
        return {"access_token": token, "token_type": "Bearer", "matrix_server_name": self.config.server_name,
                "expires_in": OPENID_LIFETIME_MS // 1000}

    async def openid_userinfo(self, token: str) -> dict[str, Any]:
        user_id = await directory.openid_user(self.database.pool, hashlib.sha256(token.encode()).digest(),
                                              int(time.time() * 1000))
        if user_id is None:
            raise MatrixError(401, "M_UNKNOWN_TOKEN", "Unknown or expired OpenID token")
        return {"sub": user_id}

    async def report(
        self, requester: Requester, body: dict[str, Any], room_id: str | None = None, event_id: str | None = None,
        target_user: str | None = None,
    ) -> None:
        reason = body.get("reason")
        score = body.get("score")
        if reason is not None and not isinstance(reason, str):
            raise bad_json("reason must be a string")
        if score is not None and (not isinstance(score, int) or isinstance(score, bool) or not -100 <= score <= 0):
            raise bad_json("score must be an integer from -100 to 0")
        if room_id is not None:
            room = await self.store.room(room_id)
            membership = await event_store.membership_of(self.database.pool, room.room_nid, requester.user_id) \
                if room else None
            if room is None or membership is None:
                raise not_found("Room not found")
            if event_id is not None:
                row = await event_store.event_by_id(self.database.pool, event_id)
                if row is None or row["room_nid"] != room.room_nid:
                    raise not_found("Event not found")
        if target_user is not None and not await users.user_exists(self.database.pool, target_user):
            raise not_found("User not found")
        await directory.add_report(self.database.pool, requester.user_id, room_id, event_id, target_user, reason,
                                   score, int(time.time() * 1000))
