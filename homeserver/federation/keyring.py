"""The keyring: other servers' signing keys, fetched, verified, cached and served as a notary.

Keys come from the server itself (`GET /_matrix/key/v2/server`) or, when it
cannot be reached, from the `trusted_key_servers` notaries
(`POST /_matrix/key/v2/query`), whose answers must carry both the origin's
self-signature and the notary's. Key documents are kept in memory and in
PostgreSQL with their `valid_until_ts`; a key past it is fetched again when
needed, and used as it is when no fresh copy can be had. `old_verify_keys`
are kept with their `expired_ts` (they verify events, not requests).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable

import orjson
from nacl.signing import VerifyKey
from unpaddedbase64 import decode_base64, encode_base64

from homeserver.core.signing import SignatureError, verify_json
from homeserver.federation.client import FederationClient, FederationError, Unreachable
from homeserver.storage import federation as store
from homeserver.storage.database import Database

logger = logging.getLogger(__name__)

# A key document valid for less than this long is refetched first (a notary may pass on an old one).
REFRESH_MARGIN_MS = 5 * 60 * 1000


@dataclass(frozen=True, slots=True)
class ServerKey:
    verify_key: VerifyKey
    valid_until_ts: int
    expired_ts: int | None
    """Set for an old_verify_key: valid for events sent before it, never for requests."""
    key_json: str


class KeyNotFound(Exception):
    """No key with this id could be found for the server."""


def _verify_key(encoded: Any) -> VerifyKey | None:
    if not isinstance(encoded, str):
        return None
    try:
        return VerifyKey(decode_base64(encoded))
    except Exception:
        return None


def parse_key_document(doc: Any, server_name: str) -> dict[str, ServerKey]:
    """The keys of a self-signed key document for `server_name`; ValueError when it is not one."""
    if not isinstance(doc, dict) or doc.get("server_name") != server_name:
        raise ValueError("key document for another server")
    valid_until = doc.get("valid_until_ts")
    if not isinstance(valid_until, int) or isinstance(valid_until, bool):
        raise ValueError("key document without valid_until_ts")
    verify_keys = doc.get("verify_keys")
    if not isinstance(verify_keys, dict) or not verify_keys:
        raise ValueError("key document without verify_keys")
    raw = orjson.dumps(doc).decode("utf-8")
    keys: dict[str, ServerKey] = {}
    for key_id, entry in verify_keys.items():
        key = _verify_key(entry.get("key") if isinstance(entry, dict) else None)
        if key is None or not key_id.startswith("ed25519:"):
            continue
        try:
            verify_json(doc, server_name, key_id, key)
        except SignatureError:
            raise ValueError(f"key document not signed with its key {key_id}") from None
        keys[key_id] = ServerKey(key, valid_until, None, raw)
    if not keys:
        raise ValueError("key document without an ed25519 key")
    old = doc.get("old_verify_keys")
    if isinstance(old, dict):
        for key_id, entry in old.items():
            if not isinstance(entry, dict) or key_id in keys:
                continue
            key = _verify_key(entry.get("key"))
            expired = entry.get("expired_ts")
            if key is not None and isinstance(expired, int):
                keys[key_id] = ServerKey(key, expired, expired, raw)
    return keys


class Keyring:
    def __init__(
        self, database: Database, client: FederationClient, own_name: str, own_key_id: str, own_key: VerifyKey,
        own_document: Any,
    ) -> None:
        self.database = database
        self.client = client
        self.own_name = own_name
        self.own_document = own_document
        self._keys: dict[str, dict[str, ServerKey]] = {own_name: {own_key_id: ServerKey(own_key, 2**62, None, "")}}
        self._loaded: set[str] = {own_name}
        self._fetching: dict[str, asyncio.Future[None]] = {}

    def lookup(self, server: str, key_id: str) -> VerifyKey | None:
        """A key already in memory (after `prefetch`), for the synchronous PDU checks."""
        found = self._keys.get(server, {}).get(key_id)
        return found.verify_key if found is not None else None

    async def prefetch(self, wanted: dict[str, set[str]]) -> None:
        """Make the wanted keys available to `lookup`, fetching servers in parallel."""
        await asyncio.gather(*(self._ensure(server, ids) for server, ids in wanted.items()), return_exceptions=True)

    async def warm(self, servers: Iterable[str]) -> None:
        """Fetch the keys of servers we know none of yet (ahead of a join's batch of events)."""
        async def one(server: str) -> None:
            if server not in self._loaded:
                await self._load(server)
            if not any(k.expired_ts is None for k in self._keys.get(server, {}).values()):
                await self._fetch(server, set())

        await asyncio.gather(*(one(s) for s in set(servers)), return_exceptions=True)

    async def request_key(self, server: str, key_id: str) -> VerifyKey:
        """A current key for authenticating a request (old keys do not count)."""
        await self._ensure(server, {key_id})
        found = self._keys.get(server, {}).get(key_id)
        if found is None or found.expired_ts is not None:
            raise KeyNotFound(f"no key {key_id} of {server}")
        return found.verify_key

    async def _ensure(self, server: str, key_ids: Iterable[str]) -> None:
        key_ids = set(key_ids)
        if server not in self._loaded:
            await self._load(server)
        now = int(time.time() * 1000)
        known = self._keys.get(server, {})
        if all(k in known and (known[k].valid_until_ts > now or known[k].expired_ts is not None) for k in key_ids):
            return
        pending = self._fetching.get(server)
        if pending is None:
            pending = self._fetching[server] = asyncio.ensure_future(self._fetch(server, key_ids))
            pending.add_done_callback(lambda _f: self._fetching.pop(server, None))
        await asyncio.shield(pending)

    async def _load(self, server: str) -> None:
        rows = await store.server_keys(self.database.pool, server)
        self._keys.setdefault(server, {}).update({
            r["key_id"]: ServerKey(VerifyKey(decode_base64(r["verify_key"])), r["valid_until_ts"], r["expired_ts"],
                                   r["key_json"])
            for r in rows
        })
        self._loaded.add(server)

    async def _fetch(self, server: str, key_ids: set[str]) -> None:
        try:
            doc = await self.client.request("GET", server, "/_matrix/key/v2/server", timeout_s=15)
            await self._store(server, parse_key_document(doc, server))
            return
        except (Unreachable, FederationError, ValueError) as exc:
            logger.info("keys of %s: direct fetch failed (%s); asking notaries", server, exc)
        for notary in self.client.config.trusted_key_servers:
            if notary.server_name in (server, self.own_name):
                continue
            try:
                await self._fetch_from_notary(notary.server_name, notary.verify_keys, server, key_ids)
                return
            except (Unreachable, FederationError, ValueError, KeyNotFound) as exc:
                logger.info("keys of %s from notary %s failed: %s", server, notary.server_name, exc)

    async def _fetch_from_notary(
        self, notary: str, pinned: dict[str, str], server: str, key_ids: set[str]
    ) -> None:
        now = int(time.time() * 1000)
        answer = await self.client.request(
            "POST", notary, "/_matrix/key/v2/query",
            body={"server_keys": {server: {k: {"minimum_valid_until_ts": now} for k in key_ids}}}, timeout_s=15,
        )
        docs = answer.get("server_keys") if isinstance(answer, dict) else None
        if not isinstance(docs, list):
            raise ValueError("notary answer without server_keys")
        notary_keys = {k: v for k, v in ((k, _verify_key(v)) for k, v in pinned.items()) if v is not None}
        for doc in docs:
            keys = parse_key_document(doc, server)
            if not notary_keys:
                await self._ensure(notary, set(doc.get("signatures", {}).get(notary, {})))
                notary_keys = {k: v.verify_key for k, v in self._keys.get(notary, {}).items()}
            if not any(self._signed_by(doc, notary, k, v) for k, v in notary_keys.items()):
                raise ValueError(f"notary {notary} did not sign the keys of {server}")
            await self._store(server, keys)

    @staticmethod
    def _signed_by(doc: dict[str, Any], server: str, key_id: str, key: VerifyKey) -> bool:
        try:
            verify_json(doc, server, key_id, key)
            return True
        except SignatureError:
            return False

    async def _store(self, server: str, keys: dict[str, ServerKey]) -> None:
        now = int(time.time() * 1000)
        await store.store_server_keys(self.database.pool, [
            (server, key_id, encode_base64(k.verify_key.encode()), k.valid_until_ts, k.expired_ts, k.key_json, now)
            for key_id, k in keys.items()
        ])
        current = self._keys.setdefault(server, {})
        for key_id, key in keys.items():
            if key_id not in current or current[key_id].valid_until_ts <= key.valid_until_ts:
                current[key_id] = key

    async def notary_documents(self, server: str, minimum_valid_until_ts: int, signer: Any) -> list[dict[str, Any]]:
        """Key documents of `server` as we know them, each countersigned by us (`signer`: (doc) -> doc).
        A document not valid until `minimum_valid_until_ts` is fetched again first."""
        if server == self.own_name:
            return [self.own_document()]
        if server not in self._loaded:
            await self._load(server)
        known = self._keys.get(server, {})
        current = [k for k in known.values() if k.expired_ts is None]
        if not current or max(k.valid_until_ts for k in current) < minimum_valid_until_ts + REFRESH_MARGIN_MS:
            try:
                doc = await self.client.request("GET", server, "/_matrix/key/v2/server", timeout_s=15)
                await self._store(server, parse_key_document(doc, server))
            except (Unreachable, FederationError, ValueError) as exc:
                logger.info("notary: keys of %s unavailable: %s", server, exc)
        documents = {k.key_json for k in self._keys.get(server, {}).values() if k.key_json}
        return [signer(orjson.loads(d)) for d in documents]

