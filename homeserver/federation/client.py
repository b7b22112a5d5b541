"""The one outbound federation client: resolves server names, signs requests (X-Matrix),
verifies TLS, and never connects to a forbidden address.

Every request to another server goes through `FederationClient.request`; it
refuses destinations outside `federation_domain_whitelist`, connects only to
addresses outside `ip_range_blacklist` (unless `ip_range_whitelist` allows
them), verifies certificates unless `federation_verify_certificates` is off
(with `federation_custom_ca_list` added to the system's authorities), and
raises `FederationError` for an error answer and `Unreachable` when no
target answered.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from nacl.signing import SigningKey
from yarl import URL

from homeserver.config import Config
from homeserver.core.canonical_json import encode_canonical_json
from homeserver.core.x_matrix import authorization_header
from homeserver.errors import StartupError
from homeserver.federation.resolver import ServerResolver, Target, dns_srv_lookup, max_age
from homeserver.ip_ranges import CheckedResolver, blocked, ip_literal, parse_networks

logger = logging.getLogger(__name__)

USER_AGENT = "homeserver federation"
MAX_RESPONSE_BYTES = 100 * 1024 * 1024
WELL_KNOWN_MAX_BYTES = 50 * 1024


class Unreachable(Exception):
    """No target of the destination answered (DNS, connection, TLS, timeout, forbidden address)."""


class FederationError(Exception):
    """The destination answered with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        super().__init__(f"HTTP {status}: {self.body.get('errcode', '')} {self.body.get('error', '')}".strip())

    @property
    def errcode(self) -> str | None:
        code = self.body.get("errcode")
        return code if isinstance(code, str) else None


def encode_path(*parts: str) -> str:
    """`/_matrix/...` with each variable part percent-encoded."""
    return "/".join(quote(p, safe="") if i else p for i, p in enumerate(parts))


def _ssl_context(config: Config) -> ssl.SSLContext | bool:
    if not config.federation_verify_certificates:
        return False
    ctx = ssl.create_default_context()
    for path in config.federation_custom_ca_list:
        try:
            ctx.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise StartupError(f"federation_custom_ca_list: cannot load {path}: {exc}") from None
    return ctx


class FederationClient:
    def __init__(self, config: Config, signing_key: SigningKey) -> None:
        self.config = config
        self.signing_key = signing_key
        self.server_name = config.server_name
        self.blacklist = parse_networks(config.ip_range_blacklist)
        self.whitelist = parse_networks(config.ip_range_whitelist)
        self.timeout_s = int(config.federation.client_timeout) / 1000
        self.whitelist_domains = (
            frozenset(config.federation_domain_whitelist) if config.federation_domain_whitelist is not None else None
        )
        self._ssl = _ssl_context(config)
        self._session: aiohttp.ClientSession | None = None
        self.resolver = ServerResolver(self._fetch_well_known, dns_srv_lookup)

    def allowed(self, server_name: str) -> bool:
        """Whether `federation_domain_whitelist` lets us talk with this server."""
        return self.whitelist_domains is None or server_name in self.whitelist_domains

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=CheckedResolver(self.blacklist, self.whitelist), use_dns_cache=False, ssl=self._ssl,
                limit_per_host=10,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers={"User-Agent": USER_AGENT}, auto_decompress=True,
            )
        return self._session

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, destination: str, path: str, *, query: dict[str, Any] | None = None,
        body: Any = None, timeout_s: float | None = None,
    ) -> Any:
        """A signed request; the parsed JSON answer."""
        async with self._send(method, destination, path, query=query, body=body, timeout_s=timeout_s) as resp:
            raw = await self._read(resp)
            try:
                data = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                raise FederationError(resp.status, {}) if resp.status >= 400 else Unreachable(
                    f"{destination} answered with invalid JSON"
                ) from None
            if resp.status >= 400:
                raise FederationError(resp.status, data)
            return data

    async def download(
        self, destination: str, path: str, query: dict[str, Any] | None, max_bytes: int
    ) -> tuple[str, bytes, dict[str, str]]:
        """(content type, body, headers) of a signed GET (federation media)."""
        async with self._send("GET", destination, path, query=query, body=None, timeout_s=None) as resp:
            raw = await self._read(resp, max_bytes)
            if resp.status >= 400:
                try:
                    data = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    data = {}
                raise FederationError(resp.status, data)
            return resp.headers.get("Content-Type", "application/octet-stream"), raw, dict(resp.headers)

    async def fetch_url(self, url: str, max_bytes: int) -> tuple[str, bytes]:
        """A plain GET (the `Location` a media answer may point to), through the same address checks."""
        literal = ip_literal(URL(url).host or "")
        if literal is not None and blocked(literal, self.blacklist, self.whitelist):
            raise Unreachable(f"{literal} is in ip_range_blacklist")
        try:
            async with self._http().get(url, allow_redirects=False) as resp:
                body = await self._read(resp, max_bytes)
                if resp.status != 200:
                    raise Unreachable(f"{url} answered HTTP {resp.status}")
                return resp.headers.get("Content-Type", "application/octet-stream"), body
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise Unreachable(f"{url}: {exc}") from None

    @staticmethod
    async def _read(resp: aiohttp.ClientResponse, limit: int = MAX_RESPONSE_BYTES) -> bytes:
        body = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            body += chunk
            if len(body) > limit:
                raise Unreachable("response too large")
        return bytes(body)

    def _send(
        self, method: str, destination: str, path: str, *, query: dict[str, Any] | None, body: Any,
        timeout_s: float | None,
    ) -> "_Sending":
        return _Sending(self, method, destination, path, query, body, timeout_s)

    def _check_target(self, target: Target) -> None:
        if target.tls_name is None and blocked(target.connect_host, self.blacklist, self.whitelist):
            raise Unreachable(f"{target.connect_host} is in ip_range_blacklist")

    def signed_headers(self, method: str, destination: str, uri: str, body: Any) -> dict[str, str]:
        return {
            "Authorization": authorization_header(
                method, uri, self.server_name, destination, self.signing_key, body
            ),
        }

    async def _fetch_well_known(self, host: str) -> tuple[str | None, int | None]:
        """`m.server` from https://host/.well-known/matrix/server, with its cache lifetime."""
        url = f"https://{host}/.well-known/matrix/server"
        try:
            async with self._http().get(url, allow_redirects=True, max_redirects=5,
                                        timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status != 200:
                    return None, None
                raw = await self._read(resp, WELL_KNOWN_MAX_BYTES)
                data = orjson.loads(raw)
                server = data.get("m.server") if isinstance(data, dict) else None
                return (server if isinstance(server, str) else None), max_age(resp.headers.get("Cache-Control"))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, orjson.JSONDecodeError, Unreachable):
            return None, None


class _Sending:
    """An async context manager that tries the destination's targets in order."""

    def __init__(
        self, client: FederationClient, method: str, destination: str, path: str, query: dict[str, Any] | None,
        body: Any, timeout_s: float | None,
    ) -> None:
        self.client = client
        self.method = method
        self.destination = destination
        self.uri = path + ("?" + urlencode(query, doseq=True) if query else "")
        self.body = body
        self.timeout_s = timeout_s
        self._resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        client = self.client
        if not client.allowed(self.destination):
            raise Unreachable(f"{self.destination} is not in federation_domain_whitelist")
        if self.destination == client.server_name:
            raise Unreachable("a request to ourselves")
        targets = await client.resolver.resolve(self.destination)
        headers = client.signed_headers(self.method, self.destination, self.uri, self.body)
        data = None
        if self.body is not None:
            data = encode_canonical_json(self.body)
            headers["Content-Type"] = "application/json"
        last_error: Exception | None = None
        timeout = aiohttp.ClientTimeout(total=self.timeout_s) if self.timeout_s else None
        for target in targets:
            try:
                client._check_target(target)
                host = f"[{target.connect_host}]" if ":" in target.connect_host else target.connect_host
                url = URL(f"https://{host}:{target.port}{self.uri}", encoded=True)
                self._resp = await client._http().request(
                    self.method, url, data=data, headers={**headers, "Host": target.host_header},
                    server_hostname=target.tls_name, allow_redirects=False,
                    **({"timeout": timeout} if timeout else {}),
                )
                return self._resp
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, Unreachable) as exc:
                last_error = exc
                logger.debug("federation %s %s via %s: %s", self.method, self.destination, target, exc)
        raise Unreachable(f"{self.destination}: {last_error}")

    async def __aexit__(self, *exc: object) -> None:
        if self._resp is not None:
            self._resp.release()


