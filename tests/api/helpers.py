"""Small clients for API tests: JSON requests with an optional access token."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import aiohttp

from homeserver.server import HomeServer
from tests.conftest import base_url


class Api:
    def __init__(self, http: aiohttp.ClientSession, hs: HomeServer | str) -> None:
        """`hs`: one of our servers, or the base URL of another (a Synapse peer)."""
        self.http = http
        self.base = hs if isinstance(hs, str) else base_url(hs)

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = None, raw: bytes | None = None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = self.base + (path if path.startswith(("/_", "/.")) else "/_matrix/client/v3" + path)
        kwargs: dict[str, Any] = {"headers": headers, "params": query}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with self.http.request(method, url, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def register(self, username: str, password: str = "password", **extra: Any) -> dict[str, Any]:
        """Register through the m.login.dummy flow."""
        body = {"username": username, "password": password, **extra}
        status, first = await self.call("POST", "/register", body)
        assert status == 401, first
        status, done = await self.call(
            "POST", "/register", {**body, "auth": {"type": "m.login.dummy", "session": first["session"]}}
        )
        assert status == 200, done
        return done

    async def login(self, user: str, password: str = "password", **extra: Any) -> tuple[int, Any]:
        return await self.call(
            "POST", "/login",
            {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password,
             **extra},
        )

    async def admin_register(self, secret: str, username: str, password: str, admin: bool) -> tuple[int, Any]:
        """Synapse's register_new_matrix_user protocol."""
        _status, nonce = await self.call("GET", "/_synapse/admin/v1/register")
        mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce["nonce"].encode(), username.encode(), password.encode(),
                                 b"admin" if admin else b"notadmin"]))
        return await self.call(
            "POST", "/_synapse/admin/v1/register",
            {"nonce": nonce["nonce"], "username": username, "password": password, "admin": admin,
             "mac": mac.hexdigest()},
        )
