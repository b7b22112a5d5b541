"""The connection pool, on the configured PostgreSQL or the embedded one."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from homeserver.config import Config
from homeserver.errors import StartupError
from homeserver.storage.embedded import EmbeddedPostgres

logger = logging.getLogger(__name__)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Connections go back to the pool as they are: the server keeps no session state (no SET,
    no LISTEN, transactions always closed), and asyncpg's default reset costs a round trip
    per query."""


class Database:
    """An asyncpg pool plus, when embedded, the PostgreSQL it runs on."""

    def __init__(self, pool: asyncpg.Pool, embedded: EmbeddedPostgres | None) -> None:
        self.pool = pool
        self.embedded = embedded
        self._stream_locks: dict[str, asyncio.Lock] = {}

    def stream_lock(self, stream: str) -> asyncio.Lock:
        """Serialises a stream whose positions come from a sequence (account data, receipts, device
        lists, to-device): writers hold it from `nextval` to commit and sync reads the position
        under it, so a token never passes a write that is still in flight."""
        lock = self._stream_locks.get(stream)
        if lock is None:
            lock = self._stream_locks[stream] = asyncio.Lock()
        return lock

    @classmethod
    async def open(cls, config: Config) -> "Database":
        db = config.database
        embedded: EmbeddedPostgres | None = None
        kwargs: dict[str, Any] = db.connect_kwargs()
        if db.embedded:
            embedded = EmbeddedPostgres(config.embedded_database_dir)
            kwargs = {**kwargs, "dsn": await embedded.start()}
        try:
            pool = await asyncpg.create_pool(
                min_size=db.args.cp_min, max_size=db.args.cp_max, reset=_keep_session, **kwargs
            )
        except (OSError, asyncpg.PostgresError, ValueError) as exc:
            if embedded is not None:
                await embedded.stop()
            raise StartupError(f"database: cannot connect to PostgreSQL: {exc}") from None
        assert pool is not None
        return cls(pool, embedded)

    async def close(self) -> None:
        await self.pool.close()
        if self.embedded is not None:
            await self.embedded.stop()
