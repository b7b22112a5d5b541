"""Accounts: registration, login, logout, passwords, deactivation, devices.

Client-server API "Account registration and management", "Login",
"Device management". Every change that touches several rows (an account and
its first device and token; a password and the other devices' sessions) is
one transaction.
"""

from __future__ import annotations

import secrets
import string
from typing import Any, Awaitable, Callable

from homeserver.config import Config
from homeserver.core.ids import MAX_ID_LENGTH, is_valid_user_localpart, split_id
from homeserver.errors import MatrixError, bad_json, forbidden, missing_param, not_found
from homeserver.services.passwords import check_password, hash_password
from homeserver.services.ratelimit import RateLimiter
from homeserver.services.sessions import Requester, Sessions, now_ms
from homeserver.services.uia import StageChecker, UserInteractiveAuth
from homeserver.storage import devices, profiles, registration_tokens, tokens, users
from homeserver.storage import uia as uia_store
from homeserver.storage.database import Database

_DEVICE_CHARS = string.ascii_uppercase
MAX_DISPLAY_NAME = 256
MAX_PASSWORD = 512


def new_device_id() -> str:
    return "".join(secrets.choice(_DEVICE_CHARS) for _ in range(10))


def optional_str(body: dict[str, Any], key: str, max_length: int = 4096) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_json(f"{key} must be a string")
    if len(value) > max_length:
        raise MatrixError(400, "M_INVALID_PARAM", f"{key} is too long")
    return value


class Accounts:
    def __init__(self, config: Config, database: Database, sessions: Sessions, uia: UserInteractiveAuth) -> None:
        self.config = config
        self.database = database
        self.sessions = sessions
        self.uia = uia
        self.login_by_address = RateLimiter(config.rc_login.address)
        self.login_by_account = RateLimiter(config.rc_login.account)
        self.failed_logins = RateLimiter(config.rc_login.failed_attempts)
        self.registrations = RateLimiter(config.rc_registration)
        self.on_deactivate: Callable[[str], Awaitable[None]] | None = None
        """Leaves every room; set by the server once the rooms service exists."""
        self.on_devices_deleted: Callable[[str, list[str] | None], Awaitable[None]] | None = None
        self.on_device_changed: Callable[[str, str], Awaitable[None]] | None = None
        """Told of a new or renamed device (device lists of users sharing a room change)."""
        """Drops the devices' keys and messages (None: all of the user's); set by the server."""

    # --- user ids ------------------------------------------------------------------

    def user_id_for(self, name: str) -> str:
        """A full user id from a localpart or a user id of this server (case-folded, as Synapse)."""
        if name.startswith("@"):
            try:
                localpart, domain = split_id(name, "@")
            except ValueError:
                raise MatrixError(400, "M_INVALID_USERNAME", "Invalid user id") from None
            if domain != self.config.server_name:
                raise MatrixError(400, "M_INVALID_USERNAME", "User id is not on this server")
        else:
            localpart = name
        return f"@{localpart.lower()}:{self.config.server_name}"

    def validate_new_user_id(self, username: str) -> str:
        if not username or username.startswith("_"):
            raise MatrixError(400, "M_INVALID_USERNAME", "User ID cannot be empty or start with '_'")
        user_id = self.user_id_for(username)
        localpart = user_id[1:-len(self.config.server_name) - 1]
        if localpart.isdigit():
            raise MatrixError(400, "M_INVALID_USERNAME", "Numeric user IDs are reserved for guest users")
        if not is_valid_user_localpart(localpart):
            raise MatrixError(
                400, "M_INVALID_USERNAME", "User ID can only contain characters a-z, 0-9, or '=_-./+'"
            )
        if len(user_id) > MAX_ID_LENGTH:
            raise MatrixError(400, "M_INVALID_USERNAME", "User ID is too long")
        return user_id

    async def check_available(self, username: str) -> str:
        user_id = self.validate_new_user_id(username)
        if await users.user_exists(self.database.pool, user_id):
            raise MatrixError(400, "M_USER_IN_USE", "User ID already taken.")
        return user_id

    def exempt(self, user_id: str | None) -> bool:
        return user_id is not None and user_id in self.config.rc_exempt_users

    # --- registration ----------------------------------------------------------------

    def registration_flows(self) -> list[list[str]]:
        if self.config.registration_requires_token:
            return [["m.login.registration_token"]]
        return [["m.login.dummy"]]

    async def _check_registration_token(self, auth: dict[str, Any]) -> str:
        token = auth.get("token")
        if not isinstance(token, str):
            raise missing_param("Missing registration token")
        if not await self.token_valid(token):
            raise MatrixError(401, "M_FORBIDDEN", "Invalid registration token")
        return token

    async def token_valid(self, token: str) -> bool:
        row = await registration_tokens.get_token(self.database.pool, token)
        if row is None:
            return False
        if row["expiry_time"] is not None and row["expiry_time"] <= now_ms():
            return False
        return row["uses_allowed"] is None or row["completed"] < row["uses_allowed"]

    async def register_guest(self, body: dict[str, Any], client_ip: str) -> dict[str, Any]:
        """`POST /register?kind=guest`: a passwordless account with a numeric localpart."""
        if not self.config.allow_guest_access:
            raise forbidden("Guest access is disabled")
        self.registrations.check(client_ip)
        display = optional_str(body, "initial_device_display_name", MAX_DISPLAY_NAME)
        device_id = new_device_id()
        async with self.database.pool.acquire() as conn, conn.transaction():
            user_id = f"@{await users.next_guest_number(conn)}:{self.config.server_name}"
            if not await users.create_user(conn, user_id, None, False, now_ms(), is_guest=True):
                raise MatrixError(400, "M_USER_IN_USE", "User ID already taken.")
            await devices.ensure_device(conn, user_id, device_id, display)
            issued = await self.sessions.issue(conn, user_id, device_id, False)
        return {"user_id": user_id, "home_server": self.config.server_name, "device_id": device_id, **issued}

    async def register(self, method: str, path: str, body: dict[str, Any], kind: str, client_ip: str) -> dict[str, Any]:
        if kind == "guest":
            return await self.register_guest(body, client_ip)
        if kind != "user":
            raise MatrixError(400, "M_INVALID_PARAM", "kind must be 'user' or 'guest'")
        if not self.config.enable_registration:
            raise forbidden("Registration has been disabled")
        username = optional_str(body, "username", 255)
        password = optional_str(body, "password", MAX_PASSWORD)
        auth = body.get("auth")
        if username is not None and not (isinstance(auth, dict) and "session" in auth):
            # Early, before any auth: an unavailable name is said at once (a session's retry is not
            # refused here: it may be the one that registered the name).
            await self.check_available(username)
        self.registrations.check(client_ip, update=False)

        async def dummy(auth: dict[str, Any]) -> bool:
            return True

        checkers: dict[str, StageChecker] = {
            "m.login.dummy": dummy,
            "m.login.registration_token": self._check_registration_token,
        }
        done = await self.uia.authenticate(method, path, body, self.registration_flows(), checkers, keep=True)
        params, completed = done.params, done.stages
        self.registrations.check(client_ip)
        device_id = optional_str(params, "device_id", 255) or new_device_id()
        display = optional_str(params, "initial_device_display_name", MAX_DISPLAY_NAME)
        inhibit_login = params.get("inhibit_login", False) is True
        with_refresh = params.get("refresh_token", False) is True
        if done.registered_user_id is not None:
            # A retry of a registration that went through (its answer was lost): log in to the
            # account it made rather than fail with M_USER_IN_USE (as Synapse).
            result = {"user_id": done.registered_user_id, "home_server": self.config.server_name}
            if not inhibit_login:
                async with self.database.pool.acquire() as conn, conn.transaction():
                    await devices.ensure_device(conn, done.registered_user_id, device_id, display)
                    result["device_id"] = device_id
                    result.update(await self.sessions.issue(conn, done.registered_user_id, device_id, with_refresh))
            return result
        username = optional_str(params, "username", 255) or self._generated_localpart()
        password = optional_str(params, "password", MAX_PASSWORD)
        guest = await self._guest_to_upgrade(params.get("guest_access_token"))
        user_id = guest if guest is not None else await self.check_available(username)
        password_hash = await hash_password(password, self.config.bcrypt_rounds) if password else None
        token = completed.get("m.login.registration_token")
        async with self.database.pool.acquire() as conn, conn.transaction():
            if token is not None and not await registration_tokens.use_token(conn, token, now_ms()):
                raise MatrixError(401, "M_FORBIDDEN", "Invalid registration token")
            if guest is not None:
                # A guest becomes a full account under the same user id (as Synapse), keeping its rooms.
                if not await users.upgrade_guest(conn, user_id, password_hash):
                    raise forbidden("Only guest accounts can be upgraded")
                self.sessions.forget_device(user_id, None)
            elif not await users.create_user(conn, user_id, password_hash, False, now_ms()):
                raise MatrixError(400, "M_USER_IN_USE", "User ID already taken.")
            await uia_store.set_registered_user(conn, done.session_id, user_id)
            await profiles.set_profile_field(conn, user_id, "displayname", user_id[1:].partition(":")[0])
            result: dict[str, Any] = {"user_id": user_id, "home_server": self.config.server_name}
            if not inhibit_login:
                await devices.ensure_device(conn, user_id, device_id, display)
                result["device_id"] = device_id
                result.update(await self.sessions.issue(conn, user_id, device_id, with_refresh))
        return result

    async def _guest_to_upgrade(self, guest_token: Any) -> str | None:
        """The guest account named by `guest_access_token`, if any (an invalid one is refused)."""
        if guest_token is None:
            return None
        if not isinstance(guest_token, str):
            raise bad_json("guest_access_token must be a string")
        requester = await self.sessions.authenticate(guest_token, "-", None)
        if not requester.is_guest:
            raise forbidden("guest_access_token is not a guest's token")
        return requester.user_id

    def _generated_localpart(self) -> str:
        return "u" + secrets.token_hex(6)

    async def admin_register(
        self, localpart: str, password: str, admin: bool, displayname: str | None
    ) -> dict[str, Any]:
        """Registration through the shared secret (the nonce and MAC were checked by the caller)."""
        user_id = await self.check_available(localpart)
        password_hash = await hash_password(password, self.config.bcrypt_rounds)
        device_id = new_device_id()
        async with self.database.pool.acquire() as conn, conn.transaction():
            if not await users.create_user(conn, user_id, password_hash, admin, now_ms()):
                raise MatrixError(400, "M_USER_IN_USE", "User ID already taken.")
            await profiles.set_profile_field(conn, user_id, "displayname", displayname or localpart.lower())
            await devices.ensure_device(conn, user_id, device_id, None)
            issued = await self.sessions.issue(conn, user_id, device_id, with_refresh=False)
        return {"user_id": user_id, "home_server": self.config.server_name, "device_id": device_id, **issued}

    # --- login -----------------------------------------------------------------------

    def login_user_id(self, body: dict[str, Any]) -> str:
        """The user id named by `identifier` (m.id.user), or by the deprecated `user`."""
        identifier = body.get("identifier")
        if identifier is None:
            name = body.get("user")
            if not isinstance(name, str):
                raise missing_param("Missing identifier")
            return self.user_id_for(name)
        if not isinstance(identifier, dict):
            raise bad_json("identifier must be an object")
        if identifier.get("type") != "m.id.user":
            raise MatrixError(400, "M_UNRECOGNIZED", "Only m.id.user identifiers are supported")
        name = identifier.get("user")
        if not isinstance(name, str):
            raise missing_param("identifier.user is required")
        return self.user_id_for(name)

    async def check_credentials(self, user_id: str, password: Any) -> None:
        """Password check with the failed-attempts limit; one error for unknown users and bad passwords."""
        if not isinstance(password, str):
            raise missing_param("Missing password")
        exempt = self.exempt(user_id)
        if not exempt:
            self.failed_logins.check(user_id, update=False)
        user = await users.get_user(self.database.pool, user_id)
        if user is not None and user["deactivated"]:
            raise MatrixError(403, "M_USER_DEACTIVATED", "This account has been deactivated")
        hashed = user["password_hash"] if user is not None else None
        if hashed is None or not await check_password(password, hashed):
            if not exempt:
                self.failed_logins.record(user_id)
            raise forbidden("Invalid username or password")

    async def login(self, body: dict[str, Any], client_ip: str) -> dict[str, Any]:
        login_type = body.get("type")
        if login_type != "m.login.password":
            raise MatrixError(400, "M_UNKNOWN", f"Unknown login type {login_type!r}")
        user_id = self.login_user_id(body)
        exempt = self.exempt(user_id)
        if not exempt:
            self.login_by_address.check(client_ip)
            self.login_by_account.check(user_id)
        await self.check_credentials(user_id, body.get("password"))
        device_id = optional_str(body, "device_id", 255) or new_device_id()
        display = optional_str(body, "initial_device_display_name", MAX_DISPLAY_NAME)
        with_refresh = body.get("refresh_token", False) is True
        async with self.database.pool.acquire() as conn, conn.transaction():
            await tokens.delete_device_tokens(conn, user_id, device_id)
            await devices.ensure_device(conn, user_id, device_id, display)
            issued = await self.sessions.issue(conn, user_id, device_id, with_refresh)
        self.sessions.forget_device(user_id, device_id, keep=None)
        await self._device_changed(user_id, device_id)
        return {"user_id": user_id, "device_id": device_id, "home_server": self.config.server_name, **issued}

    async def _device_changed(self, user_id: str, device_id: str) -> None:
        if self.on_device_changed is not None:
            await self.on_device_changed(user_id, device_id)

    async def _devices_deleted(self, user_id: str, device_ids: list[str] | None) -> None:
        if self.on_devices_deleted is not None:
            await self.on_devices_deleted(user_id, device_ids)

    async def logout(self, requester: Requester) -> None:
        """Log out this device: the device and its tokens go."""
        async with self.database.pool.acquire() as conn, conn.transaction():
            await devices.delete_devices(conn, requester.user_id, [requester.device_id])
        self.sessions.forget_device(requester.user_id, requester.device_id)
        await self._devices_deleted(requester.user_id, [requester.device_id])

    async def logout_all(self, requester: Requester) -> None:
        async with self.database.pool.acquire() as conn, conn.transaction():
            await devices.delete_devices(conn, requester.user_id, None)
        self.sessions.forget_device(requester.user_id, None)
        await self._devices_deleted(requester.user_id, None)

    # --- user-interactive auth of a logged-in user ---------------------------------

    async def reauthenticate(
        self, requester: Requester, method: str, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """UIA with the user's own password (password change, deactivation, deleting devices)."""

        async def password_stage(auth: dict[str, Any]) -> str:
            user_id = self.login_user_id(auth) if ("identifier" in auth or "user" in auth) else requester.user_id
            await self.check_credentials(user_id, auth.get("password"))
            return user_id

        done = await self.uia.authenticate(
            method, path, body, [["m.login.password"]], {"m.login.password": password_stage}
        )
        # Someone else's correct credentials complete the session but authorise nothing (as Synapse).
        if done.stages.get("m.login.password") != requester.user_id:
            raise forbidden("Can only authenticate as yourself")
        return done.params

    async def change_password(self, requester: Requester, method: str, path: str, body: dict[str, Any]) -> None:
        params = await self.reauthenticate(requester, method, path, body)
        new_password = params.get("new_password")
        if not isinstance(new_password, str) or not new_password:
            raise missing_param("Missing new_password")
        if len(new_password) > MAX_PASSWORD:
            raise MatrixError(400, "M_INVALID_PARAM", "Password too long")
        logout_devices = params.get("logout_devices", True)
        if not isinstance(logout_devices, bool):
            raise bad_json("logout_devices must be a boolean")
        password_hash = await hash_password(new_password, self.config.bcrypt_rounds)
        async with self.database.pool.acquire() as conn, conn.transaction():
            await users.set_password_hash(conn, requester.user_id, password_hash)
            if logout_devices:
                others = [d["device_id"] for d in await devices.list_devices(conn, requester.user_id)
                          if d["device_id"] != requester.device_id]
                await devices.delete_devices(conn, requester.user_id, others)
        if logout_devices:
            self.sessions.forget_device(requester.user_id, None, keep=requester.token_hash)
            await self._devices_deleted(requester.user_id, others)

    async def deactivate(self, requester: Requester, method: str, path: str, body: dict[str, Any]) -> None:
        params = await self.reauthenticate(requester, method, path, body)
        erase = params.get("erase", False)
        if not isinstance(erase, bool):
            raise bad_json("erase must be a boolean")
        if self.on_deactivate is not None:
            await self.on_deactivate(requester.user_id)
        async with self.database.pool.acquire() as conn, conn.transaction():
            await users.mark_deactivated(conn, requester.user_id)
            await devices.delete_devices(conn, requester.user_id, None)
            await profiles.set_profile_field(conn, requester.user_id, "avatar_url", None)
            if erase:
                await profiles.set_profile_field(conn, requester.user_id, "displayname", None)
        self.sessions.forget_device(requester.user_id, None)
        await self._devices_deleted(requester.user_id, None)

    async def whois_devices(self, user_id: str) -> dict[str, Any]:
        """`/admin/whois`: each device's last connection."""
        found = await devices.list_devices_with_agents(self.database.pool, user_id)
        return {
            d["device_id"]: {"sessions": [{"connections": [
                {"ip": d["last_seen_ip"], "last_seen": d["last_seen_ts"], "user_agent": d["last_seen_user_agent"]}
            ] if d["last_seen_ts"] else []}]}
            for d in found
        }

    # --- devices ---------------------------------------------------------------------

    async def list_devices(self, requester: Requester) -> list[dict[str, Any]]:
        await self.sessions.flush_last_seen()
        found = await devices.list_devices(self.database.pool, requester.user_id)
        return [self._device_json(requester.user_id, d) for d in found]

    async def get_device(self, requester: Requester, device_id: str) -> dict[str, Any]:
        await self.sessions.flush_last_seen()
        device = await devices.get_device(self.database.pool, requester.user_id, device_id)
        if device is None:
            raise not_found("Device not found")
        return self._device_json(requester.user_id, device)

    @staticmethod
    def _device_json(user_id: str, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "device_id": row["device_id"],
            "user_id": user_id,
            "display_name": row["display_name"],
            "last_seen_ip": row["last_seen_ip"],
            "last_seen_ts": row["last_seen_ts"],
        }

    async def rename_device(self, requester: Requester, device_id: str, body: dict[str, Any]) -> None:
        name = optional_str(body, "display_name", MAX_DISPLAY_NAME)
        if not await devices.set_display_name(self.database.pool, requester.user_id, device_id, name):
            raise not_found("Device not found")
        await self._device_changed(requester.user_id, device_id)

    async def delete_devices(
        self, requester: Requester, device_ids: list[str] | None, method: str, path: str, body: dict[str, Any]
    ) -> None:
        params = await self.reauthenticate(requester, method, path, body)
        if device_ids is None:
            listed = params.get("devices")
            if not isinstance(listed, list) or not all(isinstance(d, str) for d in listed):
                raise bad_json("devices must be a list of device ids")
            device_ids = listed
        async with self.database.pool.acquire() as conn, conn.transaction():
            await devices.delete_devices(conn, requester.user_id, device_ids)
        for device_id in device_ids:
            self.sessions.forget_device(requester.user_id, device_id)
        await self._devices_deleted(requester.user_id, device_ids)
