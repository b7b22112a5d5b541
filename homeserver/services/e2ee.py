"""End-to-end encryption support (client-server API keys.yaml, cross_signing.yaml, to_device.yaml,
key_backup.yaml; modules/end_to_end_encryption.md, send_to_device.md).

The server never sees plaintext; it stores and hands out keys exactly, verifies
every signature it is given to store, and delivers to-device messages once.
Keys of other servers' users are asked of their servers over federation
(`/user/keys/query`, `/user/keys/claim`) on every request; their change
notices (`m.device_list_update`, `m.signing_key_update`) mark them changed
for our users' syncs. Our users' changes are queued for the servers sharing
a room with them, to-device messages for other servers' users as
`m.direct_to_device`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import orjson

from signedjson.key import decode_verify_key_bytes
from unpaddedbase64 import decode_base64

from homeserver.config import Config
from homeserver.core.ids import is_valid_user_id, server_of
from homeserver.core.signing import SignatureError, verify_json
from homeserver.errors import MatrixError, bad_json, invalid_param, not_found
from homeserver.federation.client import FederationClient, FederationError, Unreachable
from homeserver.services.federation_sender import FederationSender
from homeserver.services.notifier import Notifier
from homeserver.services.sessions import Requester
from homeserver.storage import devices as device_store
from homeserver.storage import e2ee
from homeserver.storage import events as event_store
from homeserver.storage import federation as federation_store
from homeserver.storage.database import Database

# Device lists fetched at once for one key query (a big room's members on a cold cache).
MAX_PARALLEL_DEVICE_LIST_FETCHES = 10
CROSS_SIGNING_TYPES = {"master_key": "master", "self_signing_key": "self_signing", "user_signing_key": "user_signing"}
MAX_TO_DEVICE_PER_SYNC = 100
MAX_KEYS_PER_UPLOAD = 1000


def _require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_json(f"{what} must be an object")
    return value


def _ed25519_key(key_object: dict[str, Any], what: str) -> tuple[str, str]:
    """The single (key id, public key) of a cross-signing key object."""
    keys = key_object.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise bad_json(f"{what} must hold exactly one key")
    ((key_id, public),) = keys.items()
    if not isinstance(key_id, str) or not key_id.startswith("ed25519:") or not isinstance(public, str):
        raise bad_json(f"{what} must be an ed25519 key")
    return key_id, public


def _optional_dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _verify(obj: dict[str, Any], user_id: str, key_id: str, public: str) -> bool:
    try:
        verify_json(obj, user_id, key_id, decode_verify_key_bytes(key_id, decode_base64(public)))
    except (SignatureError, ValueError, TypeError):
        return False
    return True


class EndToEnd:
    def __init__(
        self, config: Config, database: Database, notifier: Notifier,
        reauthenticate: Callable[[Requester, str, str, dict[str, Any]], Awaitable[dict[str, Any]]],
    ) -> None:
        self.config = config
        self.database = database
        self.notifier = notifier
        self.reauthenticate = reauthenticate
        self.federation_client: FederationClient | None = None
        self.federation_sender: FederationSender | None = None
        """Set by the server: keys of other servers' users, and our changes sent to them."""
        self._federation_pending: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def stop(self) -> None:
        """Cancel the device-list fetches still running."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _local(self, user_id: str) -> bool:
        return server_of(user_id) == self.config.server_name

    async def mark_changed(
        self, conn: Any, user_id: str, device_id: str | None = None, self_only: bool = False,
    ) -> None:
        """Record a change of the user's keys in the caller's transaction and, for one of our users,
        queue it for the other servers sharing a room with them: `m.device_list_update` (with the
        `prev_id` chain) when a device changed, `m.signing_key_update` when cross-signing keys did.
        A `self_only` change (a user-signing key) is for the user alone and goes nowhere else."""
        stream_id = await e2ee.mark_device_list_changed(conn, user_id, self_only)
        if self_only or not self._local(user_id) or self.federation_sender is None:
            return
        servers = set(await federation_store.servers_sharing_rooms(conn, user_id)) - {self.config.server_name}
        if not servers:
            return
        if device_id is not None:
            prev = await e2ee.previous_device_list_change(conn, user_id, stream_id)
            keys = (await e2ee.get_device_keys(conn, [user_id])).get(user_id, {}).get(device_id)
            if keys is not None:
                # The device's keys as a query gives them: with the signatures uploaded for it since.
                for signature in await e2ee.signatures_for(conn, [user_id]):
                    if signature["target_user"] == user_id and signature["target_key_id"] == device_id:
                        keys.setdefault("signatures", {}).setdefault(signature["signer_user"], {})[
                            signature["signer_key_id"]] = signature["signature"]
            exists = await device_store.get_device(conn, user_id, device_id) is not None
            content: dict[str, Any] = {"user_id": user_id, "device_id": device_id, "stream_id": stream_id,
                                       "prev_id": [prev] if prev is not None else [], "deleted": not exists}
            if keys is not None:
                keys = dict(keys)
                display_name = keys.get("unsigned", {}).get("device_display_name")
                keys.pop("unsigned", None)
                content["keys"] = keys
                if display_name:
                    content["device_display_name"] = display_name
            edu_type = "m.device_list_update"
        else:
            cross = (await e2ee.get_cross_signing_keys(conn, [user_id])).get(user_id, {})
            content = {"user_id": user_id}
            for key_type, field in (("master", "master_key"), ("self_signing", "self_signing_key")):
                if key_type in cross:
                    content[field] = cross[key_type]
            edu_type = "m.signing_key_update"
        await federation_store.enqueue_edus(conn, [(s, edu_type, orjson.dumps(content).decode()) for s in servers])
        self._federation_pending.update(servers)

    async def wake_sharers(self, user_id: str) -> None:
        self.notifier.notify(await event_store.users_sharing_rooms(self.database.pool, user_id))
        if self._federation_pending and self.federation_sender is not None:
            pending, self._federation_pending = self._federation_pending, set()
            self.federation_sender.wake(pending)

    # --- device and one-time keys ----------------------------------------------------------

    async def upload_keys(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        user_id, device_id = requester.user_id, requester.device_id
        device_keys = body.get("device_keys")
        if device_keys is not None:
            self.check_device_keys(device_keys, user_id, device_id)
        one_time = self.parse_keys(body.get("one_time_keys"), "one_time_keys")
        fallback = self.parse_keys(body.get("fallback_keys", body.get("org.matrix.msc2732.fallback_keys")), "fallback_keys")
        async with self.database.stream_lock("device_lists"), self.database.pool.acquire() as conn, conn.transaction():
            changed = await self.store_keys(conn, user_id, device_id, device_keys, one_time, fallback)
            counts = await e2ee.count_one_time_keys(conn, user_id, device_id)
        if changed:
            await self.wake_sharers(user_id)
        return {"one_time_key_counts": {"signed_curve25519": 0, **counts}}

    @staticmethod
    def check_device_keys(device_keys: Any, user_id: str, device_id: str) -> None:
        _require_dict(device_keys, "device_keys")
        if device_keys.get("user_id") != user_id or device_keys.get("device_id") != device_id:
            raise invalid_param("device_keys are for another user or device")
        if not isinstance(device_keys.get("algorithms"), list) or not isinstance(device_keys.get("keys"), dict):
            raise bad_json("device_keys needs algorithms and keys")

    async def store_keys(
        self, conn: Any, user_id: str, device_id: str, device_keys: dict[str, Any] | None,
        one_time: list[tuple[str, str, Any]], fallback: list[tuple[str, str, Any]],
    ) -> bool:
        """Store checked keys in the caller's transaction; True if the device keys changed."""
        changed = False
        if device_keys is not None:
            current = (await e2ee.get_device_keys(conn, [user_id])).get(user_id, {}).get(device_id)
            stored = {k: v for k, v in (current or {}).items() if k != "unsigned"}
            if stored != {k: v for k, v in device_keys.items() if k != "unsigned"}:
                await e2ee.set_device_keys(conn, user_id, device_id, device_keys)
                await self.mark_changed(conn, user_id, device_id)
                changed = True
        conflicts = await e2ee.add_one_time_keys(conn, user_id, device_id, one_time)
        if conflicts:
            raise invalid_param(f"One-time key {conflicts[0][0]}:{conflicts[0][1]} already exists with other content")
        for algorithm, key_id, key in fallback:
            await e2ee.set_fallback_key(conn, user_id, device_id, algorithm, key_id, key)
        return changed

    @staticmethod
    def parse_keys(value: Any, what: str) -> list[tuple[str, str, Any]]:
        if value is None:
            return []
        _require_dict(value, what)
        if len(value) > MAX_KEYS_PER_UPLOAD:
            raise MatrixError(413, "M_TOO_LARGE", f"At most {MAX_KEYS_PER_UPLOAD} {what} per upload")
        keys = []
        for full_id, key in value.items():
            algorithm, sep, key_id = full_id.partition(":")
            if not sep or not algorithm or not key_id or not isinstance(key, (str, dict)):
                raise bad_json(f"{what} must map algorithm:key_id to keys")
            keys.append((algorithm, key_id, key))
        return keys

    async def query_keys(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        wanted = _require_dict(body.get("device_keys"), "device_keys")
        local: dict[str, list[str]] = {}
        remote: dict[str, dict[str, list[str]]] = {}
        failures: dict[str, Any] = {}
        for user_id, devices in wanted.items():
            if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
                raise bad_json("device_keys must map user ids to lists of device ids")
            if self._local(user_id):
                local[user_id] = devices
            else:
                remote.setdefault(server_of(user_id), {})[user_id] = devices
        result = await self.local_keys(local, requester.user_id)
        result["failures"] = failures
        answers = await asyncio.gather(*(self._remote_keys(server, users, failures)
                                         for server, users in remote.items()))
        for answer in answers:
            for field in ("device_keys", "master_keys", "self_signing_keys"):
                found = answer.get(field)
                if isinstance(found, dict):
                    result[field].update(found)
        return result

    async def _remote_keys(self, server: str, users: dict[str, list[str]], failures: dict[str, Any]) -> dict[str, Any]:
        """Keys of one server's users: from our copies of the device lists of those we share a
        room with (fetched with `/user/devices` when missing or stale, and used as they are when
        the server cannot be reached), asked of the server for the others."""
        pool = self.database.pool
        followed = await e2ee.remote_users_sharing_rooms_with_us(pool, list(users))
        unfollowed = [u for u in users if u not in followed]
        if unfollowed:
            await e2ee.forget_remote_device_lists(pool, unfollowed)
        cached = await e2ee.get_remote_device_lists(pool, sorted(followed))
        refresh = [u for u in followed if u not in cached or cached[u]["stale"]]
        limit = asyncio.Semaphore(MAX_PARALLEL_DEVICE_LIST_FETCHES)
        fetched = await asyncio.gather(*(self._fetch_device_list(server, u, limit) for u in refresh))
        for user_id, fresh in zip(refresh, fetched):
            if fresh is not None:
                cached[user_id] = fresh
        answer: dict[str, Any] = {"device_keys": {}, "master_keys": {}, "self_signing_keys": {}}
        for user_id in followed:
            entry = cached.get(user_id)
            if entry is None:
                failures[server] = {"status": 503, "message": f"no device list for {user_id}"}
                continue
            wanted = users[user_id]
            answer["device_keys"][user_id] = {d: k for d, k in entry["devices"].items() if not wanted or d in wanted}
            if entry["master_key"] is not None:
                answer["master_keys"][user_id] = entry["master_key"]
            if entry["self_signing_key"] is not None:
                answer["self_signing_keys"][user_id] = entry["self_signing_key"]
        if unfollowed:
            asked = await self._remote_query(server, {u: users[u] for u in unfollowed}, failures)
            for field in answer:
                answer[field].update(asked.get(field, {}))
        return answer

    async def _fetch_device_list(self, server: str, user_id: str, limit: asyncio.Semaphore) -> dict[str, Any] | None:
        """A remote user's whole device list (`/user/devices`), kept from now on; None if the
        server could not give it. A change announced while it was being fetched marks it stale."""
        assert self.federation_client is not None
        pool = self.database.pool
        announced = await e2ee.last_device_list_change_of(pool, user_id)
        try:
            async with limit:
                answer = await self.federation_client.request(
                    "GET", server, f"/_matrix/federation/v1/user/devices/{quote(user_id, safe='')}", timeout_s=10
                )
        except (Unreachable, FederationError, asyncio.TimeoutError):
            return None
        if not isinstance(answer, dict) or answer.get("user_id") != user_id \
                or not isinstance(answer.get("devices"), list):
            return None
        devices: dict[str, Any] = {}
        for device in answer["devices"]:
            keys = device.get("keys") if isinstance(device, dict) else None
            # Kept as the server gave them (as Synapse): clients check each device's keys themselves.
            if not isinstance(keys, dict) or not isinstance(device.get("device_id"), str):
                continue
            keys = dict(keys)
            if isinstance(device.get("device_display_name"), str):
                keys["unsigned"] = {"device_display_name": device["device_display_name"]}
            devices[device["device_id"]] = keys
        stream_id = answer.get("stream_id") if isinstance(answer.get("stream_id"), int) else 0
        master = answer.get("master_key") if isinstance(answer.get("master_key"), dict) else None
        ssk = answer.get("self_signing_key") if isinstance(answer.get("self_signing_key"), dict) else None
        async with self.database.stream_lock("device_lists"), pool.acquire() as conn, conn.transaction():
            before = (await e2ee.get_remote_device_lists(conn, [user_id])).get(user_id)
            await e2ee.put_remote_device_list(conn, user_id, stream_id, devices, master, ssk)
            if await e2ee.last_device_list_change_of(conn, user_id) != announced:
                await e2ee.mark_remote_device_list_stale(conn, user_id)
            # What our users were told of may differ from what the server has now: they hear of it.
            news = before is None or (before["devices"], before["master_key"], before["self_signing_key"]) \
                != (devices, master, ssk)
            if news:
                await e2ee.mark_device_list_changed(conn, user_id)
        if news:
            await self.wake_sharers(user_id)
        return {"stream_id": stream_id, "devices": devices, "master_key": master, "self_signing_key": ssk,
                "stale": False}

    async def _remote_query(self, server: str, users: dict[str, list[str]], failures: dict[str, Any]) -> dict[str, Any]:
        assert self.federation_client is not None
        try:
            answer = await self.federation_client.request(
                "POST", server, "/_matrix/federation/v1/user/keys/query", body={"device_keys": users}, timeout_s=10
            )
        except (Unreachable, FederationError, asyncio.TimeoutError) as exc:
            failures[server] = {"status": 503, "message": str(exc)}
            return {}
        if not isinstance(answer, dict):
            return {}
        # Only what was asked of this server: its own users' keys, never a third server's.
        return {field: {u: k for u, k in found.items() if u in users}
                for field, found in answer.items() if isinstance(found, dict)}

    async def local_keys(self, local: dict[str, list[str]], requester_id: str | None) -> dict[str, Any]:
        """Our users' device and cross-signing keys; user-signing keys only to their owner
        (`requester_id` None: another server asks)."""
        failures: dict[str, Any] = {}
        pool = self.database.pool
        keys = await e2ee.get_device_keys(pool, list(local))
        cross = await e2ee.get_cross_signing_keys(pool, list(local))
        signatures = await e2ee.signatures_for(pool, list(local))
        result: dict[str, Any] = {"device_keys": {}, "failures": failures, "master_keys": {},
                                  "self_signing_keys": {}, "user_signing_keys": {}}
        for user_id, devices in local.items():
            user_devices = keys.get(user_id, {})
            chosen = {d: k for d, k in user_devices.items() if not devices or d in devices}
            for signature in signatures:
                if signature["target_user"] == user_id and signature["target_key_id"] in chosen:
                    sigs = chosen[signature["target_key_id"]].setdefault("signatures", {})
                    sigs.setdefault(signature["signer_user"], {})[signature["signer_key_id"]] = signature["signature"]
            result["device_keys"][user_id] = chosen
            for key_type, field in (("master", "master_keys"), ("self_signing", "self_signing_keys")):
                if key_type in cross.get(user_id, {}):
                    key_object = cross[user_id][key_type]
                    if key_type == "master":
                        _key_id, public = _ed25519_key(key_object, "master key")
                        for signature in signatures:
                            visible = signature["signer_user"] in (user_id, requester_id)
                            if signature["target_user"] == user_id and signature["target_key_id"] == public and visible:
                                sigs = key_object.setdefault("signatures", {})
                                sigs.setdefault(signature["signer_user"], {})[signature["signer_key_id"]] = \
                                    signature["signature"]
                    result[field][user_id] = key_object
            if user_id == requester_id and "user_signing" in cross.get(user_id, {}):
                result["user_signing_keys"][user_id] = cross[user_id]["user_signing"]
        return result

    async def claim_keys(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        wanted = _require_dict(body.get("one_time_keys"), "one_time_keys")
        failures: dict[str, Any] = {}
        remote: dict[str, dict[str, Any]] = {}
        for user_id, devices in wanted.items():
            if not isinstance(devices, dict) or not all(isinstance(a, str) for a in devices.values()):
                raise bad_json("one_time_keys must map users to devices to algorithms")
            if not self._local(user_id):
                remote.setdefault(server_of(user_id), {})[user_id] = devices
        claimed = await self.claim_local({u: d for u, d in wanted.items() if self._local(u)})
        for server, users in remote.items():
            assert self.federation_client is not None
            try:
                answer = await self.federation_client.request(
                    "POST", server, "/_matrix/federation/v1/user/keys/claim", body={"one_time_keys": users},
                    timeout_s=10,
                )
            except (Unreachable, FederationError) as exc:
                failures[server] = {"status": 503, "message": str(exc)}
                continue
            found = answer.get("one_time_keys") if isinstance(answer, dict) else None
            if isinstance(found, dict):
                claimed.update({u: k for u, k in found.items() if u in users and isinstance(k, dict)})
        return {"one_time_keys": claimed, "failures": failures}

    async def claim_local(self, wanted: dict[str, dict[str, str]]) -> dict[str, Any]:
        """Claim one-time (else fallback) keys of our users' devices, in one transaction."""
        claimed: dict[str, Any] = {}
        async with self.database.pool.acquire() as conn, conn.transaction():
            for user_id, devices in wanted.items():
                if not self._local(user_id) or not isinstance(devices, dict):
                    continue
                for device_id, algorithm in devices.items():
                    if not isinstance(algorithm, str):
                        continue
                    key = await e2ee.claim_key(conn, user_id, device_id, algorithm)
                    if key is not None:
                        claimed.setdefault(user_id, {})[device_id] = {f"{algorithm}:{key[0]}": key[1]}
        return claimed

    async def user_devices(self, user_id: str) -> dict[str, Any]:
        """`GET /user/devices/{userId}` for one of our users: devices with keys, cross-signing keys."""
        if not self._local(user_id):
            raise invalid_param("Not a user of this server")
        pool = self.database.pool
        keys = await self.local_keys({user_id: []}, None)
        names = {d["device_id"]: d["display_name"] for d in await device_store.list_devices(pool, user_id)}
        stream_id = await e2ee.last_device_list_change_of(pool, user_id)
        devices = []
        for device_id, device_keys in keys["device_keys"].get(user_id, {}).items():
            entry: dict[str, Any] = {"device_id": device_id,
                                     "keys": {k: v for k, v in device_keys.items() if k != "unsigned"}}
            if names.get(device_id):
                entry["device_display_name"] = names[device_id]
            devices.append(entry)
        result: dict[str, Any] = {"user_id": user_id, "stream_id": stream_id or 0, "devices": devices}
        if user_id in keys["master_keys"]:
            result["master_key"] = keys["master_keys"][user_id]
        if user_id in keys["self_signing_keys"]:
            result["self_signing_key"] = keys["self_signing_keys"][user_id]
        return result

    async def remote_keys_changed(self, user_id: str, edu_type: str, content: dict[str, Any]) -> None:
        """Another server told us one of its users' keys changed: our copy of their device list
        follows when the update comes in order (its `prev_id` is the change we have); otherwise,
        or when we have no copy, the list is fetched anew if a room is shared with them. Our users
        sharing a room with them see the change in `device_lists.changed` and query again."""
        async with self.database.stream_lock("device_lists"), self.database.pool.acquire() as conn, conn.transaction():
            cached = (await e2ee.get_remote_device_lists(conn, [user_id])).get(user_id)
            followed = cached is not None and not cached["stale"]
            if cached is not None and followed:
                if edu_type == "m.signing_key_update":
                    await e2ee.update_remote_signing_keys(
                        conn, user_id, _optional_dict(content.get("master_key")),
                        _optional_dict(content.get("self_signing_key")),
                    )
                else:
                    followed = await self._follow_device_update(conn, user_id, cached["stream_id"], content)
            await e2ee.mark_device_list_changed(conn, user_id)
            resync = not followed and user_id in await e2ee.remote_users_sharing_rooms_with_us(conn, [user_id])
        if resync:
            # A list we lack, or one with a gap, is fetched now (as Synapse), not at the next query.
            task = asyncio.get_running_loop().create_task(
                self._fetch_device_list(server_of(user_id), user_id, asyncio.Semaphore(1))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await self.wake_sharers(user_id)

    async def room_left(self, room_nid: int) -> None:
        """Someone left a room: copies of device lists no room keeps current any more are dropped
        (a later query fetches them again)."""
        await e2ee.forget_unshared_device_lists(self.database.pool, room_nid)

    @staticmethod
    async def _follow_device_update(conn: Any, user_id: str, known: int, content: dict[str, Any]) -> bool:
        """Patch our copy with an update that follows it; False (copy now stale) when it does not."""
        stream_id, prev, device_id = content.get("stream_id"), content.get("prev_id"), content.get("device_id")
        if isinstance(stream_id, int) and stream_id <= known:
            return True  # already seen
        keys = content.get("keys")
        if not isinstance(stream_id, int) or not isinstance(device_id, str) or not isinstance(prev, list) \
                or known not in prev or (not content.get("deleted") and not isinstance(keys, dict)):
            await e2ee.mark_remote_device_list_stale(conn, user_id)
            return False
        if content.get("deleted"):
            await e2ee.update_remote_device(conn, user_id, stream_id, device_id, None)
            return True
        keys = dict(keys)
        if isinstance(content.get("device_display_name"), str):
            keys["unsigned"] = {"device_display_name": content["device_display_name"]}
        await e2ee.update_remote_device(conn, user_id, stream_id, device_id, keys)
        return True

    async def receive_to_device(self, origin: str, content: Any) -> None:
        """`m.direct_to_device` from another server, delivered once (by message id) to our users."""
        if not isinstance(content, dict):
            return
        sender, event_type, message_id = content.get("sender"), content.get("type"), content.get("message_id")
        messages = content.get("messages")
        if not (isinstance(sender, str) and isinstance(event_type, str) and isinstance(message_id, str)
                and isinstance(messages, dict)) or server_of(sender) != origin:
            return
        recipients: set[str] = set()
        async with self.database.stream_lock("to_device"), self.database.pool.acquire() as conn, conn.transaction():
            if await e2ee.to_device_txn_seen(conn, sender, "federation", message_id, int(time.time() * 1000)):
                return
            batch: list[tuple[str, str, dict[str, Any]]] = []
            for user_id, by_device in messages.items():
                if not isinstance(by_device, dict) or not self._local(user_id):
                    continue
                devices = [d["device_id"] for d in await device_store.list_devices(conn, user_id)]
                for device_id, message_content in by_device.items():
                    if not isinstance(message_content, dict):
                        continue
                    targets = devices if device_id == "*" else [device_id] if device_id in devices else []
                    batch.extend((user_id, t, {"type": event_type, "sender": sender, "content": message_content})
                                 for t in targets)
                    if targets:
                        recipients.add(user_id)
            await e2ee.add_to_device(conn, batch)
        self.notifier.notify(recipients)

    async def changes(
        self, requester: Requester, since: int, upto: int, since_events: int | None = None,
        upto_events: int | None = None,
    ) -> dict[str, Any]:
        """Users whose keys changed, and (with events positions) users who newly share a room
        with the requester (changed) or no longer share one (left)."""
        sharers = await event_store.users_sharing_rooms(self.database.pool, requester.user_id)
        changed = await e2ee.device_list_changes_since(
            self.database.pool, requester.user_id, sorted(sharers), since, upto
        )
        left: set[str] = set()
        if since_events is not None and upto_events is not None:
            newly, left = await self.sharing_changes(requester.user_id, sharers, since_events, upto_events)
            changed |= newly
        return {"changed": sorted(changed), "left": sorted(left)}

    async def sharing_changes(
        self, user_id: str, sharers: set[str], since_events: int, upto_events: int
    ) -> tuple[set[str], set[str]]:
        """(users who came to share a room with `user_id`, or were invited to or knock on one of
        theirs (clients encrypt for them too, as Synapse counts them), users who no longer share
        any) between two events positions: both must look at their device lists anew."""
        if since_events >= upto_events:  # no event, so no membership changed
            return set(), set()
        moved = await event_store.membership_changes_around(self.database.pool, user_id, since_events, upto_events)
        moved.discard(user_id)
        pending = await event_store.users_pending_in_rooms_of(self.database.pool, user_id) if moved else set()
        return moved & (sharers | pending), moved - sharers - pending

    async def device_changed(self, user_id: str, device_id: str) -> None:
        """A new login or a renamed device: users sharing a room look at the device list again."""
        async with self.database.stream_lock("device_lists"), self.database.pool.acquire() as conn, conn.transaction():
            await self.mark_changed(conn, user_id, device_id)
        await self.wake_sharers(user_id)

    async def device_deleted(self, user_id: str, device_ids: list[str] | None) -> None:
        async with self.database.stream_lock("device_lists"), self.database.pool.acquire() as conn, conn.transaction():
            before = list((await e2ee.get_device_keys(conn, [user_id])).get(user_id, {}))
            await e2ee.delete_device_e2ee(conn, user_id, device_ids)
            for device_id in (device_ids if device_ids is not None else before):
                await self.mark_changed(conn, user_id, device_id)
        await self.wake_sharers(user_id)

    # --- to-device messages ------------------------------------------------------------------

    async def send_to_device(
        self, requester: Requester, event_type: str, txn_id: str, body: dict[str, Any]
    ) -> None:
        messages = _require_dict(body.get("messages"), "messages")
        batch: list[tuple[str, str, dict[str, Any]]] = []
        recipients: set[str] = set()
        remote: dict[str, dict[str, Any]] = {}
        async with self.database.stream_lock("to_device"), self.database.pool.acquire() as conn, conn.transaction():
            if await e2ee.to_device_txn_seen(conn, requester.user_id, requester.device_id, txn_id, int(time.time() * 1000)):
                return
            for user_id, by_device in messages.items():
                if not isinstance(by_device, dict) or not is_valid_user_id(user_id):
                    raise bad_json("messages must map user ids to devices to contents")
                if not self._local(user_id):
                    remote.setdefault(server_of(user_id), {})[user_id] = by_device
                    continue
                devices = [d["device_id"] for d in await device_store.list_devices(conn, user_id)]
                for device_id, content in by_device.items():
                    if not isinstance(content, dict):
                        raise bad_json("to-device message contents must be objects")
                    targets = devices if device_id == "*" else [device_id] if device_id in devices else []
                    message = {"type": event_type, "sender": requester.user_id, "content": content}
                    batch.extend((user_id, target, message) for target in targets)
                    if targets:
                        recipients.add(user_id)
            await e2ee.add_to_device(conn, batch)
            if remote and self.federation_sender is not None:
                await federation_store.enqueue_edus(conn, [
                    (server, "m.direct_to_device", orjson.dumps({
                        "sender": requester.user_id, "type": event_type, "message_id": uuid.uuid4().hex,
                        "messages": users}).decode())
                    for server, users in remote.items()
                ])
        self.notifier.notify(recipients)
        if remote and self.federation_sender is not None:
            self.federation_sender.wake(remote)

    # --- cross-signing -------------------------------------------------------------------------

    async def upload_cross_signing(self, requester: Requester, method: str, path: str, body: dict[str, Any]) -> None:
        user_id = requester.user_id
        existing = (await e2ee.get_cross_signing_keys(self.database.pool, [user_id])).get(user_id, {})
        new_master = body.get("master_key")
        if existing.get("master") is not None and new_master is not None and new_master != existing["master"]:
            body = await self.reauthenticate(requester, method, path, body)
        uploads: dict[str, dict[str, Any]] = {}
        for field, key_type in CROSS_SIGNING_TYPES.items():
            if body.get(field) is not None:
                key_object = _require_dict(body[field], field)
                if key_object.get("user_id") != user_id:
                    raise invalid_param(f"{field} is for another user")
                usage = key_object.get("usage")
                if not isinstance(usage, list) or key_type not in usage:
                    raise invalid_param(f"{field} must have usage {key_type!r}")
                _ed25519_key(key_object, field)
                uploads[key_type] = key_object
        master = uploads.get("master", existing.get("master"))
        if master is None and uploads:
            raise invalid_param("A master key is needed first")
        if master is not None:
            master_id, master_public = _ed25519_key(master, "master key")
            for key_type in ("self_signing", "user_signing"):
                if key_type in uploads and not _verify(uploads[key_type], user_id, master_id, master_public):
                    raise invalid_param(f"The {key_type} key is not signed by the master key")
        async with self.database.stream_lock("device_lists"), self.database.pool.acquire() as conn, conn.transaction():
            for key_type, key_object in uploads.items():
                await e2ee.set_cross_signing_key(conn, user_id, key_type, key_object)
            # Only the user sees their user-signing key: a change of it alone tells nobody else.
            private = set(uploads) == {"user_signing"}
            if uploads:
                await self.mark_changed(conn, user_id, self_only=private)
        if uploads and private:
            self.notifier.notify([user_id])
        elif uploads:
            await self.wake_sharers(user_id)

    async def upload_signatures(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        """Store signatures: of one's own devices (by the self-signing key), of one's master key (by
        a device), of another user's master key (by the user-signing key). Each is verified."""
        user_id = requester.user_id
        pool = self.database.pool
        failures: dict[str, dict[str, Any]] = {}
        accepted: list[tuple[str, str, str, str]] = []

        def fail(target: str, key_id: str, errcode: str, message: str) -> None:
            failures.setdefault(target, {})[key_id] = {"errcode": errcode, "error": message}

        for target_user, by_key in body.items():
            if not isinstance(by_key, dict):
                raise bad_json("signatures must map users to key ids to signed objects")
            if not self._local(target_user):
                for key_id in by_key:
                    fail(target_user, key_id, "M_UNKNOWN", "Federation is not available yet")
                continue
            cross = (await e2ee.get_cross_signing_keys(pool, [target_user, user_id]))
            devices = (await e2ee.get_device_keys(pool, [target_user])).get(target_user, {})
            own = cross.get(user_id, {})
            for key_id, signed in by_key.items():
                if not isinstance(signed, dict):
                    fail(target_user, key_id, "M_BAD_JSON", "Not an object")
                    continue
                signer_key = self._signer_for(target_user == user_id, key_id, devices, cross.get(target_user, {}), own)
                if signer_key is None:
                    fail(target_user, key_id, "M_INVALID_SIGNATURE", "Unknown key or no key to check the signature with")
                    continue
                signer_id, signer_public = signer_key
                signature = signed.get("signatures", {}).get(user_id, {}).get(signer_id) \
                    if isinstance(signed.get("signatures"), dict) else None
                if not isinstance(signature, str) or not _verify(signed, user_id, signer_id, signer_public):
                    fail(target_user, key_id, "M_INVALID_SIGNATURE", "Invalid signature")
                    continue
                accepted.append((target_user, key_id, signer_id, signature))
        async with self.database.stream_lock("device_lists"), pool.acquire() as conn, conn.transaction():
            for target_user, key_id, signer_id, signature in accepted:
                await e2ee.add_signature(conn, target_user, key_id, user_id, signer_id, signature)
            devices_signed = {(a[0], a[1]) for a in accepted}
            for target_user, key_id in devices_signed:
                is_device = key_id in (await e2ee.get_device_keys(conn, [target_user])).get(target_user, {})
                await self.mark_changed(conn, target_user, key_id if is_device else None)
        for target_user in {a[0] for a in accepted}:
            await self.wake_sharers(target_user)
        return {"failures": failures}

    @staticmethod
    def _signer_for(
        own: bool, key_id: str, devices: dict[str, Any], target_cross: dict[str, Any], signer_cross: dict[str, Any]
    ) -> tuple[str, str] | None:
        """Which key must have signed a signature of `key_id`: (key id, public key)."""
        if own and key_id in devices:
            if "self_signing" not in signer_cross:
                return None
            return _ed25519_key(signer_cross["self_signing"], "self-signing key")
        master = target_cross.get("master")
        if master is None or _ed25519_key(master, "master key")[1] != key_id:
            return None
        if own:
            return None if not devices else next(
                ((f"ed25519:{d}", k["keys"][f"ed25519:{d}"]) for d, k in devices.items()
                 if isinstance(k.get("keys"), dict) and f"ed25519:{d}" in k["keys"]), None)
        if "user_signing" not in signer_cross:
            return None
        return _ed25519_key(signer_cross["user_signing"], "user-signing key")

    # --- key backup ------------------------------------------------------------------------------

    async def _backup(self, user_id: str, version: int | None) -> dict[str, Any]:
        backup = await e2ee.get_backup(self.database.pool, user_id, version)
        if backup is None:
            raise not_found("No current backup version" if version is None else "Unknown backup version")
        return backup

    async def _current_version_for_write(self, user_id: str, version: str | None) -> int:
        current = await e2ee.get_backup(self.database.pool, user_id, None)
        if version is None or not version.isdigit():
            raise invalid_param("version is required")
        if current is None or current["version"] != int(version):
            raise MatrixError(403, "M_WRONG_ROOM_KEYS_VERSION", "Wrong backup version",
                              current_version=str(current["version"]) if current else None)
        return int(version)

    async def create_backup(self, requester: Requester, body: dict[str, Any]) -> str:
        algorithm = body.get("algorithm")
        auth_data = body.get("auth_data")
        # auth_data is the algorithm's business; any JSON value is kept as given (as Synapse).
        if not isinstance(algorithm, str) or auth_data is None:
            raise bad_json("algorithm (a string) and auth_data are required")
        return str(await e2ee.create_backup(self.database.pool, requester.user_id, algorithm, auth_data))

    async def backup_info(self, requester: Requester, version: str | None) -> dict[str, Any]:
        if version is not None and not version.isdigit():
            raise not_found("Unknown backup version")
        backup = await self._backup(requester.user_id, int(version) if version else None)
        count = await e2ee.count_room_keys(self.database.pool, requester.user_id, backup["version"])
        return {"version": str(backup["version"]), "algorithm": backup["algorithm"],
                "auth_data": backup["auth_data"], "etag": str(backup["etag"]), "count": count}

    async def update_backup(self, requester: Requester, version: str, body: dict[str, Any]) -> None:
        backup = await self._backup(requester.user_id, int(version) if version.isdigit() else -1)
        if body.get("algorithm") != backup["algorithm"] or body.get("auth_data") is None:
            raise invalid_param("algorithm must stay the same and auth_data is required")
        if "version" in body and body["version"] != version:
            raise invalid_param("version in the body does not match")
        await e2ee.update_backup(self.database.pool, requester.user_id, backup["version"], body["auth_data"])

    async def delete_backup(self, requester: Requester, version: str) -> None:
        if not version.isdigit() or not await e2ee.delete_backup(self.database.pool, requester.user_id, int(version)):
            raise not_found("Unknown backup version")

    async def put_room_keys(
        self, requester: Requester, version: str | None, rooms: dict[str, Any]
    ) -> dict[str, Any]:
        """Store keys, keeping the better of an existing and a new session key (spec rules)."""
        user_id = requester.user_id
        number = await self._current_version_for_write(user_id, version)
        entries = []
        for room_id, room in rooms.items():
            sessions = _require_dict(_require_dict(room, "room").get("sessions"), "sessions")
            for session_id, key in sessions.items():
                key = _require_dict(key, "session key")
                for field, kind in (("first_message_index", int), ("forwarded_count", int), ("is_verified", bool)):
                    if not isinstance(key.get(field), kind) or (kind is int and isinstance(key.get(field), bool)):
                        raise bad_json(f"{field} must be {'an integer' if kind is int else 'a boolean'}")
                if key.get("session_data") is None:
                    raise bad_json("session_data is required")
                entries.append((room_id, session_id, key))
        changed = False
        async with self.database.pool.acquire() as conn, conn.transaction():
            for room_id, session_id, key in entries:
                old = await e2ee.get_room_key(conn, user_id, number, room_id, session_id)
                if old is None or _better(key, old):
                    await e2ee.put_room_key(conn, user_id, number, room_id, session_id, key)
                    changed = True
            if changed:
                await e2ee.bump_backup_etag(conn, user_id, number)
        info = await self.backup_info(requester, str(number))
        return {"etag": info["etag"], "count": info["count"]}

    async def get_room_keys(
        self, requester: Requester, version: str | None, room_id: str | None, session_id: str | None
    ) -> dict[str, Any]:
        backup = await self._backup(requester.user_id, _backup_version(version))
        keys = await e2ee.get_room_keys(self.database.pool, requester.user_id, backup["version"], room_id, session_id)
        shaped = {k["room_id"]: {} for k in keys}
        for k in keys:
            shaped[k["room_id"]][k["session_id"]] = {
                "first_message_index": k["first_message_index"], "forwarded_count": k["forwarded_count"],
                "is_verified": k["is_verified"], "session_data": k["session_data"],
            }
        if session_id is not None:
            if not keys:
                raise not_found("No such session key")
            return shaped[room_id][session_id]  # type: ignore[index]
        if room_id is not None:
            return {"sessions": shaped.get(room_id, {})}
        return {"rooms": {r: {"sessions": s} for r, s in shaped.items()}}

    async def delete_room_keys(
        self, requester: Requester, version: str | None, room_id: str | None, session_id: str | None
    ) -> dict[str, Any]:
        backup = await self._backup(requester.user_id, _backup_version(version))
        async with self.database.pool.acquire() as conn, conn.transaction():
            await e2ee.delete_room_keys(conn, requester.user_id, backup["version"], room_id, session_id)
            await e2ee.bump_backup_etag(conn, requester.user_id, backup["version"])
        info = await self.backup_info(requester, version)
        return {"etag": info["etag"], "count": info["count"]}


def _backup_version(version: str | None) -> int:
    """A backup version to read: a version that cannot exist is simply unknown (404, as Synapse)."""
    if version is None:
        raise invalid_param("version is required")
    if not version.isdigit():
        raise not_found("Unknown backup version")
    return int(version)


def _better(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """The spec's replacement rule: verified beats unverified, then a lower first message index,
    then a lower forwarded count."""
    if new["is_verified"] != old["is_verified"]:
        return bool(new["is_verified"])
    if new["first_message_index"] != old["first_message_index"]:
        return new["first_message_index"] < old["first_message_index"]
    return new["forwarded_count"] < old["forwarded_count"]
