"""Outbound address checks shared by URL previews and federation.

Host names are resolved here and the connection is made to an address that
passed the check, so a second DNS answer cannot rebind the request to a
forbidden address. IP literals never reach a resolver; callers check them
with `blocked` directly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedAddress(OSError):
    """Every address of a host is in a forbidden range."""


def parse_networks(ranges: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in ranges)


def blocked(address: str, blacklist: tuple[Network, ...], whitelist: tuple[Network, ...]) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in whitelist):
        return False
    return any(ip in network for network in blacklist)


def ip_literal(host: str) -> str | None:
    """The address when `host` is an IP literal (IPv6 with or without brackets), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class CheckedResolver(AbstractResolver):
    """Resolves host names and keeps only the addresses we may connect to."""

    def __init__(self, blacklist: tuple[Network, ...], whitelist: tuple[Network, ...]) -> None:
        self.blacklist = blacklist
        self.whitelist = whitelist

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        allowed: list[ResolveResult] = [
            {"hostname": host, "host": info[4][0], "port": port, "family": info[0], "proto": 0,
             "flags": socket.AI_NUMERICHOST}
            for info in infos if not blocked(str(info[4][0]), self.blacklist, self.whitelist)
        ]
        if not allowed:
            raise BlockedAddress(f"{host} resolves only to addresses we may not reach")
        return allowed

    async def close(self) -> None:
        return None
