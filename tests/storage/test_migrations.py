"""Migrations: ordered, transactional, recorded, applied once under concurrency, never downgraded."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from homeserver.errors import StartupError
from homeserver.storage.migrations import Migration, apply_migrations, load_migrations


@pytest.fixture
async def pool(database_dsn: str):
    pool = await asyncpg.create_pool(database_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


def test_shipped_migrations_are_numbered_in_order() -> None:
    migrations = load_migrations()
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) and versions[0] == 1
    assert len(set(versions)) == len(versions)


async def test_apply_records_each_version_once(pool: asyncpg.Pool) -> None:
    shipped = load_migrations()
    assert await apply_migrations(pool) == [m.version for m in shipped]
    assert await apply_migrations(pool) == []
    rows = await pool.fetch("SELECT version, name FROM schema_version ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in shipped]


async def test_concurrent_starts_apply_once(pool: asyncpg.Pool) -> None:
    migrations = [
        Migration(1, "one", "CREATE TABLE a (x INT); SELECT pg_sleep(0.2);"),
        Migration(2, "two", "CREATE TABLE b (x INT)"),
    ]
    results = await asyncio.gather(*(apply_migrations(pool, migrations) for _ in range(3)))
    assert sorted(results) == [[], [], [1, 2]]


async def test_failed_migration_leaves_nothing_half_done(pool: asyncpg.Pool) -> None:
    good = Migration(1, "good", "CREATE TABLE a (x INT)")
    bad = Migration(2, "bad", "CREATE TABLE b (x INT); INSERT INTO nowhere VALUES (1);")
    with pytest.raises(asyncpg.UndefinedTableError):
        await apply_migrations(pool, [good, bad])
    assert await pool.fetchval("SELECT max(version) FROM schema_version") == 1
    assert await pool.fetchval("SELECT to_regclass('b')") is None


async def test_database_newer_than_code_refuses(pool: asyncpg.Pool) -> None:
    await apply_migrations(pool, [Migration(1, "a", "SELECT 1"), Migration(2, "b", "SELECT 1")])
    with pytest.raises(StartupError, match="schema is at version 2, newer than this server knows \\(1\\)"):
        await apply_migrations(pool, [Migration(1, "a", "SELECT 1")])
