"""Synapse's shared-secret registration (`/_synapse/admin/v1/register`), for `register_new_matrix_user`.

A client fetches a nonce, then posts the account with
HMAC-SHA1(registration_shared_secret, nonce NUL user NUL password NUL admin|notadmin [NUL user_type]).
Nonces are single-use and expire after a minute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from homeserver.errors import MatrixError, bad_json, forbidden, missing_param
from homeserver.services.accounts import Accounts

NONCE_LIFETIME_S = 60.0


class AdminRegistration:
    def __init__(self, shared_secret: str | None, accounts: Accounts) -> None:
        self.shared_secret = shared_secret
        self.accounts = accounts
        self._nonces: dict[str, float] = {}

    def _require_enabled(self) -> str:
        if not self.shared_secret:
            raise MatrixError(400, "M_UNKNOWN", "Shared secret registration is not enabled")
        return self.shared_secret

    def new_nonce(self) -> str:
        self._require_enabled()
        now = time.monotonic()
        self._nonces = {n: t for n, t in self._nonces.items() if now - t < NONCE_LIFETIME_S}
        nonce = secrets.token_hex(32)
        self._nonces[nonce] = now
        return nonce

    async def register(self, body: dict[str, Any]) -> dict[str, Any]:
        secret = self._require_enabled()
        for key in ("nonce", "username", "password", "mac"):
            if key not in body:
                raise missing_param(f"{key} is required")
            if not isinstance(body[key], str):
                raise bad_json(f"{key} must be a string")
        admin = body.get("admin", False)
        user_type = body.get("user_type")
        displayname = body.get("displayname")
        if not isinstance(admin, bool) or (user_type is not None and not isinstance(user_type, str)):
            raise bad_json("admin must be a boolean and user_type a string")
        if displayname is not None and not isinstance(displayname, str):
            raise bad_json("displayname must be a string")
        issued = self._nonces.pop(body["nonce"], None)
        if issued is None or time.monotonic() - issued >= NONCE_LIFETIME_S:
            raise MatrixError(400, "M_UNKNOWN", "unrecognised nonce")
        if "\x00" in body["username"] or "\x00" in body["password"]:
            raise MatrixError(400, "M_INVALID_PARAM", "Invalid username or password")
        mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha1)
        mac.update(body["nonce"].encode("utf-8") + b"\x00" + body["username"].encode("utf-8") + b"\x00")
        mac.update(body["password"].encode("utf-8") + b"\x00" + (b"admin" if admin else b"notadmin"))
        if user_type is not None:
            mac.update(b"\x00" + user_type.encode("utf-8"))
        if not hmac.compare_digest(mac.hexdigest(), body["mac"]):
            raise forbidden("HMAC incorrect")
        return await self.accounts.admin_register(body["username"], body["password"], admin, displayname)
