"""Schema migrations: `migrations/NNNN_name.sql`, applied in order, each in its own transaction.

A session-level advisory lock makes concurrent start-ups apply each migration
once; a database whose schema is newer than this code refuses to start.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from homeserver.errors import StartupError

logger = logging.getLogger(__name__)

# An arbitrary constant that names our lock in pg_advisory_lock's key space.
MIGRATION_LOCK_KEY = 0x4D58_5253_4348_4D41
_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql\Z")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_dir() -> Path:
    """The migrations shipped with the code (a checkout or an installed package)."""
    return Path(__file__).resolve().parent.parent / "data" / "migrations"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    found = []
    for path in sorted(directory.iterdir()):
        m = _FILE_NAME.match(path.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StartupError(f"two migrations share a number in {directory}")
    return found


async def apply_migrations(
    pool: asyncpg.Pool, migrations: list[Migration] | None = None
) -> list[int]:
    """Bring the schema up to date; returns the versions applied now."""
    migrations = migrations if migrations is not None else load_migrations()
    newest_known = max((m.version for m in migrations), default=0)
    applied_now: list[int] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_version (
                       version INTEGER PRIMARY KEY,
                       name TEXT NOT NULL,
                       applied_ts BIGINT NOT NULL
                   )"""
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_version")}
            newest_applied = max(done, default=0)
            if newest_applied > newest_known:
                raise StartupError(
                    f"the database schema is at version {newest_applied}, newer than this "
                    f"server knows ({newest_known}); run a newer release of the server"
                )
            for migration in migrations:
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_version (version, name, applied_ts) "
                        "VALUES ($1, $2, (extract(epoch FROM now()) * 1000)::bigint)",
                        migration.version,
                        migration.name,
                    )
                logger.info("applied migration %04d_%s", migration.version, migration.name)
                applied_now.append(migration.version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied_now
