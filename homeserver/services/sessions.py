"""Access and refresh tokens: issuing, checking (cached), revoking, and devices' last-seen data.

Tokens are 256 random bits; only their SHA-256 is stored. A bounded LRU cache
answers most lookups without the database; every revocation goes through
`forget_*` so the cache never outlives a token. Last-seen data is kept in
memory and written in one batch a minute, not once per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from homeserver.config import Config
from homeserver.errors import MatrixError
from homeserver.storage import devices, tokens
from homeserver.storage.database import Database
from homeserver.storage.users import Executor

logger = logging.getLogger(__name__)

TOKEN_CACHE_SIZE = 10_000
LAST_SEEN_FLUSH_S = 60.0


@dataclass(frozen=True, slots=True)
class Requester:
    """Who made an authenticated request."""

    user_id: str
    device_id: str
    is_guest: bool
    token_hash: bytes


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def now_ms() -> int:
    return int(time.time() * 1000)


def unknown_token(soft_logout: bool = False) -> MatrixError:
    extra = {"soft_logout": True} if soft_logout else {}
    return MatrixError(401, "M_UNKNOWN_TOKEN", "Unknown or expired access token", **extra)


class Sessions:
    def __init__(self, config: Config, database: Database) -> None:
        self.config = config
        self.database = database
        self._cache: OrderedDict[bytes, tuple[Requester, int | None]] = OrderedDict()
        self._last_seen: dict[tuple[str, str], tuple[str, int, str | None]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_periodically())

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
        await self.flush_last_seen()

    async def issue(
        self, conn: Executor, user_id: str, device_id: str, with_refresh: bool
    ) -> dict[str, Any]:
        """New tokens for a device (the caller's transaction); the login/register response fields."""
        now = now_ms()
        access = new_token("hsat_")
        result: dict[str, Any] = {"access_token": access}
        refresh_hash = None
        expires = None
        if with_refresh:
            refresh = new_token("hsrt_")
            refresh_hash = hash_token(refresh)
            lifetime = self.config.refresh_token_lifetime
            await tokens.add_refresh_token(
                conn, refresh_hash, user_id, device_id, now, now + lifetime if lifetime else None  # type: ignore[operator]
            )
            expires_in = int(self.config.refreshable_access_token_lifetime)
            expires = now + expires_in
            result.update(refresh_token=refresh, expires_in_ms=expires_in)
        await tokens.add_access_token(conn, hash_token(access), user_id, device_id, now, expires, refresh_hash)
        return result

    async def authenticate(self, token: str, client_ip: str, user_agent: str | None) -> Requester:
        token_hash = hash_token(token)
        cached = self._cache.get(token_hash)
        if cached is None:
            row = await tokens.lookup_access_token(self.database.pool, token_hash)
            if row is None or row["deactivated"]:
                raise unknown_token()
            cached = (Requester(row["user_id"], row["device_id"], row["is_guest"], token_hash), row["expires_ts"])
            self._cache[token_hash] = cached
            if len(self._cache) > TOKEN_CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(token_hash)
        requester, expires_ts = cached
        now = now_ms()
        if expires_ts is not None and expires_ts <= now:
            raise unknown_token(soft_logout=True)
        self._last_seen[(requester.user_id, requester.device_id)] = (client_ip, now, user_agent)
        return requester

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """Exchange a refresh token for new tokens; the old pair stops working."""
        async with self.database.pool.acquire() as conn, conn.transaction():
            row = await tokens.take_refresh_token(conn, hash_token(refresh_token))
            if row is None or (row["expires_ts"] is not None and row["expires_ts"] <= now_ms()):
                raise unknown_token()
            issued = await self.issue(conn, row["user_id"], row["device_id"], with_refresh=True)
        self.forget_device(row["user_id"], row["device_id"], keep=hash_token(issued["access_token"]))
        return issued

    def forget_token(self, token_hash: bytes) -> None:
        self._cache.pop(token_hash, None)

    def forget_device(self, user_id: str, device_id: str | None, keep: bytes | None = None) -> None:
        """Drop cached tokens of a device (all of the user's when `device_id` is None)."""
        for token_hash, (requester, _exp) in list(self._cache.items()):
            if requester.user_id == user_id and device_id in (None, requester.device_id) and token_hash != keep:
                del self._cache[token_hash]

    async def flush_last_seen(self) -> None:
        if not self._last_seen:
            return
        batch, self._last_seen = self._last_seen, {}
        rows = [(u, d, ip, ts, ua) for (u, d), (ip, ts, ua) in batch.items()]
        try:
            await devices.record_last_seen(self.database.pool, rows)
        except Exception:
            logger.exception("could not record devices' last-seen data")

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(LAST_SEEN_FLUSH_S)
            await self.flush_last_seen()
