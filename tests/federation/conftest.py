"""Servers that federate: each with its own database, a TLS listener on loopback, and a server
name with an explicit port (`127.0.0.1:PORT`), so no DNS or .well-known is involved."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from homeserver.config import FederationConfig, ListenerConfig, ListenerResource
from homeserver.server import HomeServer
from tests.conftest import NewDatabase, test_config


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 (servers under test do not verify each other)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return TlsFiles(cert, key)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


StartFederating = Callable[..., Awaitable[HomeServer]]


@pytest.fixture
async def start_federating(
    new_database: NewDatabase, tmp_path: Path, tls_files: TlsFiles
) -> AsyncIterator[StartFederating]:
    """Start servers that federate with each other on loopback; all are stopped after the test.
    `port` and `dsn` restart a server that was stopped, on its old address and database."""
    started: list[HomeServer] = []

    async def start(port: int | None = None, dsn: str | None = None, **overrides: object) -> HomeServer:
        port = port or free_port()
        fields: dict[str, object] = {
            "server_name": f"127.0.0.1:{port}",
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "listeners": (ListenerConfig(
                port=port, tls=True, tls_certificate_path=tls_files.cert, tls_private_key_path=tls_files.key,
                resources=(ListenerResource(("client", "federation", "media")),),
            ),),
            "federation_verify_certificates": False,
            "federation_domain_whitelist": None,
            "ip_range_whitelist": ("127.0.0.0/8",),
            "trusted_key_servers": (),
            "federation": FederationConfig(destination_min_retry_interval="1s",
                                           destination_max_retry_interval="2s"),
        }
        fields.update(overrides)
        config = test_config(dsn or await new_database(), tmp_path / f"data{port}", **fields)
        hs = await HomeServer.create(config)
        started.append(hs)
        await hs.start_listeners()
        return hs

    yield start
    for hs in started:
        if not hs.database.pool.is_closing():
            await hs.stop()


@pytest.fixture
async def https() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
        yield session
