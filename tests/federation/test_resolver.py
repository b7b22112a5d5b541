"""Server name resolution steps, with the network lookups replaced by recorded answers."""

from __future__ import annotations

import pytest

from homeserver.federation.resolver import ServerResolver, Target


class Lookups:
    def __init__(self, well_known: dict[str, str | None], srv: dict[str, list[tuple[str, int]]]) -> None:
        self.well_known = well_known
        self.srv = srv
        self.well_known_asked: list[str] = []

    async def fetch(self, host: str) -> tuple[str | None, int | None]:
        self.well_known_asked.append(host)
        return self.well_known.get(host), 60

    async def lookup(self, name: str) -> list[tuple[str, int]]:
        return self.srv.get(name, [])


@pytest.mark.parametrize("server, well_known, srv, expected", [
    ("1.2.3.4", {}, {}, [Target("1.2.3.4", 8448, "1.2.3.4", None)]),
    ("1.2.3.4:99", {}, {}, [Target("1.2.3.4", 99, "1.2.3.4:99", None)]),
    ("[::1]:99", {}, {}, [Target("::1", 99, "[::1]:99", None)]),
    ("a.example:99", {}, {}, [Target("a.example", 99, "a.example:99", "a.example")]),
    ("a.example", {"a.example": "b.example:443"}, {}, [Target("b.example", 443, "b.example:443", "b.example")]),
    ("a.example", {"a.example": "5.6.7.8"}, {}, [Target("5.6.7.8", 8448, "5.6.7.8", None)]),
    ("a.example", {"a.example": "b.example"}, {"_matrix-fed._tcp.b.example": [("c.example", 8000)]},
     [Target("c.example", 8000, "b.example", "b.example")]),
    ("a.example", {"a.example": "b.example"}, {"_matrix._tcp.b.example": [("c.example", 8001)]},
     [Target("c.example", 8001, "b.example", "b.example")]),
    ("a.example", {"a.example": "b.example"}, {}, [Target("b.example", 8448, "b.example", "b.example")]),
    ("a.example", {}, {"_matrix-fed._tcp.a.example": [("s1.example", 1), ("s2.example", 2)]},
     [Target("s1.example", 1, "a.example", "a.example"), Target("s2.example", 2, "a.example", "a.example")]),
    ("a.example", {"a.example": "not a server name!"}, {}, [Target("a.example", 8448, "a.example", "a.example")]),
    ("a.example", {}, {}, [Target("a.example", 8448, "a.example", "a.example")]),
])
async def test_resolution(server: str, well_known: dict, srv: dict, expected: list[Target]) -> None:
    lookups = Lookups(well_known, srv)
    assert await ServerResolver(lookups.fetch, lookups.lookup).resolve(server) == expected


async def test_well_known_is_cached() -> None:
    lookups = Lookups({"a.example": "b.example:1"}, {})
    resolver = ServerResolver(lookups.fetch, lookups.lookup)
    for _ in range(3):
        await resolver.resolve("a.example")
    assert lookups.well_known_asked == ["a.example"]


def test_unreadable_custom_ca_stops_start_up(tmp_path) -> None:  # noqa: ANN001
    from nacl.signing import SigningKey

    from homeserver.config import Config
    from homeserver.errors import StartupError
    from homeserver.federation.client import FederationClient

    with pytest.raises(StartupError, match="federation_custom_ca_list"):
        FederationClient(Config(federation_custom_ca_list=(tmp_path / "missing.pem",)), SigningKey.generate())
