"""An embedded PostgreSQL in the data directory, for a zero-setup start.

Started through the `pgserver` package (its own PostgreSQL binaries), listening
on a Unix socket only, and stopped when the server stops.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from typing import Any

from homeserver.errors import StartupError

logger = logging.getLogger(__name__)

DATABASE_NAME = "homeserver"
START_ATTEMPTS = 3


class EmbeddedPostgres:
    """Handle on a pgserver-managed PostgreSQL cluster in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._server: Any = None

    async def start(self) -> str:
        """Start (or attach to) the cluster and return a DSN for our database."""
        return await asyncio.get_running_loop().run_in_executor(None, self._start_sync)

    def _start_sync(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            self.directory.mkdir(parents=True, exist_ok=True)
            for attempt in range(START_ATTEMPTS):
                try:
                    self._server = pgserver.get_server(self.directory, cleanup_mode="stop")
                    break
                except Exception as exc:
                    # pgserver waits only 10 s for pg_ctl; a busy or slow machine can need longer, and
                    # a second attempt attaches to the postmaster the first one started.
                    if attempt + 1 == START_ATTEMPTS:
                        raise StartupError(
                            f"cannot start the embedded PostgreSQL in {self.directory}: {exc}; "
                            f"see {self.directory / 'log'}"
                        ) from None
                    logger.warning("embedded PostgreSQL slow to start (%s); trying again", exc)
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"
        )
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        logger.info("embedded PostgreSQL running in %s", self.directory)
        return str(self._server.get_uri(DATABASE_NAME))

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        await asyncio.get_running_loop().run_in_executor(None, server.cleanup)
        logger.info("embedded PostgreSQL stopped")
