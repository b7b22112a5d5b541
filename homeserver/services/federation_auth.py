"""Authenticating requests from other servers (server-server API, Request Authentication).

The X-Matrix header names the origin, our server as destination, a key id and
a signature over the method, URI, origin, destination and JSON body. The key
is fetched through the keyring when unknown; an unknown key, a bad signature
or a wrong destination is 401 `M_UNAUTHORIZED`; a server outside
`federation_domain_whitelist` is 403 `M_FORBIDDEN`.
"""

from __future__ import annotations

from typing import Any, Callable

from homeserver.core.ids import is_valid_server_name
from homeserver.core.signing import SignatureError, verify_json
from homeserver.core.x_matrix import XMatrixError, parse_authorization, request_json
from homeserver.errors import MatrixError, forbidden
from homeserver.federation.client import FederationClient
from homeserver.federation.keyring import KeyNotFound, Keyring


def unauthorized(message: str) -> MatrixError:
    return MatrixError(401, "M_UNAUTHORIZED", message)


class RequestAuth:
    def __init__(self, server_name: str, keyring: Keyring, client: FederationClient,
                 on_origin: Callable[[str], None]) -> None:
        self.server_name = server_name
        self.keyring = keyring
        self.client = client
        self.on_origin = on_origin
        """Told of every authenticated origin (the sender ends its backoff towards it)."""

    async def authenticate(self, method: str, uri: str, content: Any, headers: list[str]) -> str:
        """The origin server of a signed request."""
        if not headers:
            raise unauthorized("Missing X-Matrix Authorization header")
        last: MatrixError | None = None
        for header in headers:
            try:
                origin = await self._check(method, uri, content, header)
            except MatrixError as exc:
                last = exc
                continue
            self.on_origin(origin)
            return origin
        assert last is not None
        raise last

    async def _check(self, method: str, uri: str, content: Any, header: str) -> str:
        try:
            auth = parse_authorization(header)
        except XMatrixError as exc:
            raise unauthorized(str(exc)) from None
        if not is_valid_server_name(auth.origin):
            raise unauthorized("Invalid origin server name")
        if auth.destination is not None and auth.destination != self.server_name:
            raise unauthorized("The request is for another server")
        if not self.client.allowed(auth.origin):
            raise forbidden("Federation with your server is not allowed here")
        try:
            key = await self.keyring.request_key(auth.origin, auth.key)
        except KeyNotFound:
            raise unauthorized(f"Unknown key {auth.key} of {auth.origin}") from None
        signed = request_json(method, uri, auth.origin, self.server_name, content)
        signed["signatures"] = {auth.origin: {auth.key: auth.sig}}
        try:
            verify_json(signed, auth.origin, auth.key, key)
        except SignatureError:
            raise unauthorized("Invalid request signature") from None
        return auth.origin
