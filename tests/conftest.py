"""Shared fixtures: a throwaway PostgreSQL for the session, a fresh database per test,
and the server running in-process on a free loopback port."""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import asyncpg
import pytest

from homeserver.config import (
    Config,
    DatabaseConfig,
    ListenerConfig,
    ListenerResource,
    LoginRateLimits,
    RateLimit,
)
from homeserver.server import HomeServer

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One embedded PostgreSQL (pgserver) for the whole test session, deleted afterwards."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def pg_admin_dsn(pg_server: object) -> str:
    return str(pg_server.get_uri("postgres"))  # type: ignore[attr-defined]


NewDatabase = Callable[[], Awaitable[str]]


@pytest.fixture
async def new_database(pg_server: object, pg_admin_dsn: str) -> AsyncIterator[NewDatabase]:
    """Create new, empty databases for this test (dropped afterwards)."""
    names: list[str] = []
    admin = await asyncpg.connect(pg_admin_dsn)

    async def create() -> str:
        name = f"test_{next(_db_counter)}"
        await admin.execute(f"CREATE DATABASE {name}")
        names.append(name)
        return str(pg_server.get_uri(name))  # type: ignore[attr-defined]

    try:
        yield create
        for name in names:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def database_dsn(new_database: NewDatabase) -> str:
    """A new, empty database for this test."""
    return await new_database()


def test_config(dsn: str, data_dir: Path, **overrides: object) -> Config:
    """A config for an in-process test server: loopback, a free port, the given database."""
    generous = RateLimit(1000, 1000)
    fields: dict[str, object] = {
        "server_name": "test.local",
        "bcrypt_rounds": 4,
        "rc_login": LoginRateLimits(generous, generous, generous),
        "rc_registration": generous,
        "rc_message": generous,
        "data_dir": data_dir,
        # No test may reach beyond loopback: servers that do not federate in a test refuse every
        # other server before any DNS lookup, and no notary is asked.
        "federation_domain_whitelist": (),
        "trusted_key_servers": (),
        "database": DatabaseConfig(dsn=dsn),
        "listeners": (
            ListenerConfig(
                port=0,
                resources=(ListenerResource(("client", "federation", "media")),),
            ),
        ),
    }
    fields.update(overrides)
    return Config(**fields)  # type: ignore[arg-type]


test_config.__test__ = False  # type: ignore[attr-defined]


StartServer = Callable[..., Awaitable[HomeServer]]


@pytest.fixture
async def start_server(database_dsn: str, tmp_path: Path) -> AsyncIterator[StartServer]:
    """Start servers on this test's database; all are stopped after the test."""
    started: list[HomeServer] = []

    async def start(**overrides: object) -> HomeServer:
        config = test_config(database_dsn, tmp_path / f"data{len(started)}", **overrides)
        hs = await HomeServer.create(config)
        started.append(hs)
        await hs.start_listeners()
        return hs

    yield start
    for hs in started:
        await hs.stop()


def base_url(hs: HomeServer, scheme: str | None = None) -> str:
    host, port = hs.bound_addresses[0]
    if scheme is None:
        scheme = "https" if hs.config.listeners[0].uses_tls else "http"
    return f"{scheme}://{host}:{port}"


@pytest.fixture
async def server(start_server: StartServer) -> HomeServer:
    return await start_server()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def replace_config(config: Config, **changes: object) -> Config:
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]
