"""Server name resolution (server-server API, Resolving server names).

IP literals and explicit ports are used as they are; otherwise
`/.well-known/matrix/server` may delegate (cached by its Cache-Control, 24 h
by default, at most 48 h; failures for an hour), then SRV records
(`_matrix-fed._tcp`, then the deprecated `_matrix._tcp`), then port 8448.
The Host header and the certificate name are the (delegated) server name,
never an SRV target.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from homeserver.core.ids import is_valid_server_name, split_host_port
from homeserver.ip_ranges import ip_literal

DEFAULT_PORT = 8448
WELL_KNOWN_DEFAULT_CACHE_S = 24 * 3600
WELL_KNOWN_MAX_CACHE_S = 48 * 3600
WELL_KNOWN_ERROR_CACHE_S = 3600

WellKnownFetch = Callable[[str], Awaitable["tuple[str | None, int | None]"]]
"""host -> (m.server or None when absent/invalid, cache lifetime in seconds or None)."""
SrvLookup = Callable[[str], Awaitable["list[tuple[str, int]]"]]
"""SRV name -> [(target host, port)] in preference order; [] when there is none."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect, and what to present there."""

    connect_host: str
    port: int
    host_header: str
    tls_name: str | None
    """The name the certificate must carry (sent as SNI); None for IP addresses."""


def max_age(cache_control: str | None) -> int | None:
    if not cache_control:
        return None
    match = re.search(r"max-age=(\d+)", cache_control)
    return int(match.group(1)) if match else None


class ServerResolver:
    def __init__(self, fetch_well_known: WellKnownFetch, lookup_srv: SrvLookup) -> None:
        self.fetch_well_known = fetch_well_known
        self.lookup_srv = lookup_srv
        self._well_known: dict[str, tuple[float, str | None]] = {}

    async def resolve(self, server_name: str) -> list[Target]:
        """Targets to try in order."""
        host, port = split_host_port(server_name)
        literal = ip_literal(host)
        if literal is not None:
            return [Target(literal, port or DEFAULT_PORT, server_name, None)]
        if port is not None:
            return [Target(host, port, server_name, host)]
        delegated = await self._delegation(host)
        if delegated is not None:
            d_host, d_port = split_host_port(delegated)
            d_literal = ip_literal(d_host)
            if d_literal is not None:
                return [Target(d_literal, d_port or DEFAULT_PORT, delegated, None)]
            if d_port is not None:
                return [Target(d_host, d_port, delegated, d_host)]
            return await self._srv_or_default(d_host)
        return await self._srv_or_default(host)

    async def _srv_or_default(self, host: str) -> list[Target]:
        for prefix in ("_matrix-fed._tcp.", "_matrix._tcp."):
            records = await self.lookup_srv(prefix + host)
            if records:
                return [Target(target, port, host, host) for target, port in records]
        return [Target(host, DEFAULT_PORT, host, host)]

    async def _delegation(self, host: str) -> str | None:
        now = time.monotonic()
        cached = self._well_known.get(host)
        if cached is not None and cached[0] > now:
            return cached[1]
        delegated, lifetime = await self.fetch_well_known(host)
        if delegated is not None and not is_valid_server_name(delegated):
            delegated = None
        if delegated is None:
            lifetime = WELL_KNOWN_ERROR_CACHE_S
        elif lifetime is None:
            lifetime = WELL_KNOWN_DEFAULT_CACHE_S
        self._well_known[host] = (now + min(lifetime, WELL_KNOWN_MAX_CACHE_S), delegated)
        return delegated


async def dns_srv_lookup(name: str) -> list[tuple[str, int]]:
    """SRV records by priority, then weight (heaviest first); [] when there are none."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    try:
        answer = await dns.asyncresolver.resolve(name, "SRV", lifetime=10)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers, dns.exception.Timeout):
        return []
    records = sorted(answer, key=lambda r: (r.priority, -r.weight))  # type: ignore[attr-defined]
    return [(str(r.target).rstrip("."), int(r.port)) for r in records  # type: ignore[attr-defined]
            if str(r.target) != "."]
