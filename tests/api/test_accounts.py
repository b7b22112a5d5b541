"""Registration, login, tokens, passwords, deactivation: happy paths and bad input over real HTTP."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from homeserver.config import LoginRateLimits, RateLimit
from tests.api.helpers import Api
from tests.conftest import StartServer

OPEN = {"enable_registration": True, "enable_registration_without_verification": True}


@pytest.fixture
async def api(start_server: StartServer, http) -> Api:  # noqa: ANN001
    return Api(http, await start_server(**OPEN, registration_shared_secret="s3cret"))


async def test_registration_disabled(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server())
    status, body = await api.call("POST", "/register", {"username": "alice", "password": "pw"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_dummy_registration_flow(api: Api) -> None:
    status, first = await api.call("POST", "/register", {"username": "alice", "password": "pw",
                                                          "initial_device_display_name": "Phone"})
    assert status == 401
    assert first["flows"] == [{"stages": ["m.login.dummy"]}]
    assert first["params"] == {} and isinstance(first["session"], str)
    assert "errcode" not in first and first["completed"] == []
    status, done = await api.call("POST", "/register", {"auth": {"type": "m.login.dummy", "session": first["session"]}})
    assert status == 200, done
    assert done["user_id"] == "@alice:test.local"
    assert done["access_token"] and done["device_id"]
    status, me = await api.call("GET", "/account/whoami", token=done["access_token"])
    assert me == {"user_id": "@alice:test.local", "device_id": done["device_id"], "is_guest": False}
    status, devices = await api.call("GET", "/devices", token=done["access_token"])
    assert [d["display_name"] for d in devices["devices"]] == ["Phone"]
    # The answer was lost and the client tries again in the same session: it is logged in to the
    # account the first try made (a new device), not told the name is taken.
    status, again = await api.call("POST", "/register", {"username": "alice", "password": "pw",
                                                          "auth": {"type": "m.login.dummy", "session": first["session"]}})
    assert status == 200, again
    assert again["user_id"] == "@alice:test.local" and again["device_id"] != done["device_id"]
    # Without the session the name is taken.
    status, taken = await api.call("POST", "/register", {"username": "alice", "password": "pw"})
    assert (status, taken["errcode"]) == (400, "M_USER_IN_USE")


async def test_abandoned_registration_sessions_are_cleaned_up(
    start_server: StartServer, http, database_dsn: str,  # noqa: ANN001
) -> None:
    hs = await start_server(enable_registration=True, enable_registration_without_verification=True)
    api = Api(http, hs)
    status, first = await api.call("POST", "/register", {"username": "ghost", "password": "pw"})
    assert status == 401
    conn = await asyncpg.connect(database_dsn)
    try:
        # A day later (the session's lifetime), at the next hourly clean-up, a new session starts.
        await conn.execute("UPDATE ui_auth_sessions SET created_ts = created_ts - 25 * 3600 * 1000")
        hs.uia._next_cleanup_ms = 0
        status, second = await api.call("POST", "/register", {"username": "ghost", "password": "pw"})
        assert status == 401
        left = [r["session_id"] for r in await conn.fetch("SELECT session_id FROM ui_auth_sessions")]
    finally:
        await conn.close()
    assert first["session"] not in left and second["session"] in left


async def test_registration_options(api: Api) -> None:
    done = await api.register("bob", device_id="MYDEVICE", refresh_token=True)
    assert done["device_id"] == "MYDEVICE"
    assert done["refresh_token"] and done["expires_in_ms"] == 300_000
    inhibited = await api.register("carol", inhibit_login=True)
    assert inhibited["user_id"] == "@carol:test.local"
    assert "access_token" not in inhibited and "device_id" not in inhibited
    status, _ = await api.login("carol")
    assert status == 200


async def test_usernames(api: Api) -> None:
    await api.register("dave")
    for name, errcode in (("dave", "M_USER_IN_USE"), ("DAVE", "M_USER_IN_USE"), ("bad name", "M_INVALID_USERNAME"),
                          ("_bridge", "M_INVALID_USERNAME"), ("é", "M_INVALID_USERNAME"),
                          ("@dave:elsewhere", "M_INVALID_USERNAME"), ("colon:", "M_INVALID_USERNAME"),
                          ("a:b", "M_INVALID_USERNAME")):
        status, body = await api.call("POST", "/register", {"username": name, "password": "pw"})
        assert (status, body["errcode"]) == (400, errcode), name
        status, body = await api.call("GET", "/register/available", query={"username": name})
        assert (status, body["errcode"]) == (400, errcode), name
    status, body = await api.call("GET", "/register/available", query={"username": "erin"})
    assert (status, body) == (200, {"available": True})
    status, body = await api.call("GET", "/register/available")
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    mixed = await api.register("Frank")
    assert mixed["user_id"] == "@frank:test.local"


async def test_bad_register_bodies(api: Api) -> None:
    status, body = await api.call("POST", "/register", raw=b"{nope")
    assert (status, body["errcode"]) == (400, "M_NOT_JSON")
    status, body = await api.call("POST", "/register", {"username": 5})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await api.call("POST", "/register", {"username": "x", "auth": {"type": "m.login.dummy", "session": "nope"}})
    assert status == 400
    status, body = await api.call("POST", "/register", {"username": "x"}, query={"kind": "guest"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_uia_session_cannot_switch_operation(api: Api) -> None:
    done = await api.register("gina")
    token = done["access_token"]
    status, first = await api.call("POST", "/account/password", {"new_password": "new"}, token=token)
    assert status == 401 and first["flows"] == [{"stages": ["m.login.password"]}]
    status, body = await api.call(
        "POST", "/account/deactivate",
        {"auth": {"type": "m.login.password", "password": "password", "session": first["session"]}}, token=token,
    )
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_login_variants_and_errors(api: Api) -> None:
    await api.register("hank")
    status, flows = await api.call("GET", "/login")
    assert flows == {"flows": [{"type": "m.login.password"}]}
    status, body = await api.login("hank")
    assert status == 200 and body["user_id"] == "@hank:test.local"
    status, body = await api.login("@hank:test.local")
    assert status == 200
    status, body = await api.call("POST", "/login", {"type": "m.login.password", "user": "hank", "password": "password"})
    assert status == 200
    status, body = await api.login("hank", "wrong")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.login("nobody")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("POST", "/login", {"type": "m.login.magic"})
    assert (status, body["errcode"]) == (400, "M_UNKNOWN")
    status, body = await api.call("POST", "/login", {"type": "m.login.password", "password": "x"})
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    status, body = await api.call("POST", "/login", {"type": "m.login.password", "password": "x",
                                                     "identifier": {"type": "m.id.thirdparty", "medium": "email"}})
    assert (status, body["errcode"]) == (400, "M_UNRECOGNIZED")


async def test_device_reuse_replaces_old_tokens(api: Api) -> None:
    await api.register("ivy")
    _, first = await api.login("ivy", device_id="LAPTOP")
    _, second = await api.login("ivy", device_id="LAPTOP")
    assert second["device_id"] == "LAPTOP"
    status, body = await api.call("GET", "/account/whoami", token=first["access_token"])
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    status, _ = await api.call("GET", "/account/whoami", token=second["access_token"])
    assert status == 200


async def test_missing_and_unknown_tokens(api: Api) -> None:
    status, body = await api.call("GET", "/account/whoami")
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
    status, body = await api.call("GET", "/account/whoami", token="hsat_forged")
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert "soft_logout" not in body
    done = await api.register("jack")
    status, body = await api.call("GET", "/account/whoami", query={"access_token": done["access_token"]})
    assert status == 200


async def test_tokens_are_stored_hashed(api: Api, database_dsn: str) -> None:
    done = await api.register("kate")
    conn = await asyncpg.connect(database_dsn)
    try:
        stored = await conn.fetch("SELECT token_hash FROM access_tokens")
    finally:
        await conn.close()
    import hashlib

    assert hashlib.sha256(done["access_token"].encode()).digest() in [r["token_hash"] for r in stored]
    assert all(done["access_token"].encode() not in bytes(r["token_hash"]) for r in stored)
    assert len(done["access_token"]) >= 43  # 256 random bits, base64


async def test_logout_and_logout_all(api: Api) -> None:
    await api.register("liam")
    _, a = await api.login("liam")
    _, b = await api.login("liam")
    _, c = await api.login("liam")
    status, _ = await api.call("POST", "/logout", {}, token=a["access_token"])
    assert status == 200
    assert (await api.call("GET", "/account/whoami", token=a["access_token"]))[0] == 401
    assert (await api.call("GET", "/account/whoami", token=b["access_token"]))[0] == 200
    status, _ = await api.call("POST", "/logout/all", {}, token=b["access_token"])
    assert status == 200
    for token in (b["access_token"], c["access_token"]):
        assert (await api.call("GET", "/account/whoami", token=token))[0] == 401


async def test_refresh_tokens(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN, refreshable_access_token_lifetime=300))
    await api.register("mia")
    _, login = await api.login("mia", refresh_token=True)
    assert login["expires_in_ms"] == 300
    await asyncio.sleep(0.4)
    status, body = await api.call("GET", "/account/whoami", token=login["access_token"])
    assert (status, body["errcode"], body["soft_logout"]) == (401, "M_UNKNOWN_TOKEN", True)
    status, refreshed = await api.call("POST", "/refresh", {"refresh_token": login["refresh_token"]})
    assert status == 200 and refreshed["refresh_token"] != login["refresh_token"]
    status, _ = await api.call("GET", "/account/whoami", token=refreshed["access_token"])
    assert status == 200
    status, body = await api.call("POST", "/refresh", {"refresh_token": login["refresh_token"]})
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    status, body = await api.call("POST", "/refresh", {})
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")


async def test_change_password(api: Api) -> None:
    await api.register("noah", "old-password")
    _, this = await api.login("noah", "old-password")
    _, other = await api.login("noah", "old-password")
    body = {"new_password": "new-password"}
    status, first = await api.call("POST", "/account/password", body, token=this["access_token"])
    assert status == 401
    status, failed = await api.call(
        "POST", "/account/password",
        {**body, "auth": {"type": "m.login.password", "password": "wrong", "session": first["session"]}},
        token=this["access_token"],
    )
    assert (status, failed["errcode"]) == (401, "M_FORBIDDEN") and failed["session"] == first["session"]
    status, _ = await api.call(
        "POST", "/account/password",
        {**body, "auth": {"type": "m.login.password", "session": first["session"], "password": "old-password",
                          "identifier": {"type": "m.id.user", "user": "noah"}}},
        token=this["access_token"],
    )
    assert status == 200
    assert (await api.login("noah", "old-password"))[0] == 403
    assert (await api.login("noah", "new-password"))[0] == 200
    assert (await api.call("GET", "/account/whoami", token=this["access_token"]))[0] == 200
    assert (await api.call("GET", "/account/whoami", token=other["access_token"]))[0] == 401


async def test_deactivate(api: Api) -> None:
    done = await api.register("olga")
    token = done["access_token"]
    status, first = await api.call("POST", "/account/deactivate", {}, token=token)
    assert status == 401
    status, body = await api.call(
        "POST", "/account/deactivate",
        {"auth": {"type": "m.login.password", "password": "password", "session": first["session"]}}, token=token,
    )
    assert (status, body) == (200, {"id_server_unbind_result": "no-support"})
    assert (await api.call("GET", "/account/whoami", token=token))[0] == 401
    status, body = await api.login("olga")
    assert (status, body["errcode"]) == (403, "M_USER_DEACTIVATED")
    status, body = await api.call("POST", "/register", {"username": "olga", "password": "x"})
    assert (status, body["errcode"]) == (400, "M_USER_IN_USE")


async def test_third_party_identifiers_are_not_supported(api: Api) -> None:
    token = (await api.register("pia"))["access_token"]
    assert await api.call("GET", "/account/3pid", token=token) == (200, {"threepids": []})
    status, body = await api.call("POST", "/account/3pid/add", {}, token=token)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("POST", "/register/email/requestToken", {})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_capabilities(api: Api) -> None:
    token = (await api.register("quinn"))["access_token"]
    status, body = await api.call("GET", "/capabilities", token=token)
    caps = body["capabilities"]
    assert caps["m.room_versions"]["default"] == "12"
    assert set(caps["m.room_versions"]["available"]) == {str(i) for i in range(1, 13)}
    assert caps["m.change_password"] == {"enabled": True}
    assert caps["m.3pid_changes"] == {"enabled": False}


async def test_login_rate_limits(start_server: StartServer, http) -> None:  # noqa: ANN001
    tight = RateLimit(0.001, 2)
    api = Api(http, await start_server(**OPEN, rc_login=LoginRateLimits(RateLimit(1000, 1000), tight, tight),
                                       rc_exempt_users=("@exempt:test.local",)))
    await api.register("rita")
    await api.register("exempt")
    assert (await api.login("rita", "wrong"))[0] == 403
    assert (await api.login("rita", "wrong"))[0] == 403
    status, body = await api.login("rita", "wrong")
    assert (status, body["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert body["retry_after_ms"] > 0
    for _ in range(4):
        assert (await api.login("exempt", "wrong"))[0] == 403


async def test_registration_rate_limit(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN, rc_registration=RateLimit(0.001, 1)))
    await api.register("sam")
    status, first = await api.call("POST", "/register", {"username": "tom", "password": "pw"})
    assert (status, first["errcode"]) == (429, "M_LIMIT_EXCEEDED")


async def test_shared_secret_registration_and_registration_tokens(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(enable_registration=True, registration_requires_token=True,
                                       registration_shared_secret="s3cret"))
    status, admin = await api.admin_register("s3cret", "admin", "adminpw", admin=True)
    assert status == 200 and admin["user_id"] == "@admin:test.local" and admin["access_token"]
    status, body = await api.admin_register("wrong", "eve", "pw", admin=False)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    token = admin["access_token"]
    status, created = await api.call("POST", "/_synapse/admin/v1/registration_tokens/new", {"uses_allowed": 1}, token=token)
    assert status == 200 and created["uses_allowed"] == 1 and created["completed"] == 0
    code = created["token"]
    status, body = await api.call("GET", "/_matrix/client/v1/register/m.login.registration_token/validity",
                                  query={"token": code})
    assert body == {"valid": True}

    status, first = await api.call("POST", "/register", {"username": "uma", "password": "pw"})
    assert first["flows"] == [{"stages": ["m.login.registration_token"]}]
    status, body = await api.call("POST", "/register", {"auth": {"type": "m.login.registration_token",
                                                                  "token": "bogus", "session": first["session"]}})
    assert (status, body["errcode"]) == (401, "M_FORBIDDEN")
    status, done = await api.call("POST", "/register", {"auth": {"type": "m.login.registration_token",
                                                                  "token": code, "session": first["session"]}})
    assert status == 200 and done["user_id"] == "@uma:test.local"
    status, body = await api.call("GET", "/_matrix/client/v1/register/m.login.registration_token/validity",
                                  query={"token": code})
    assert body == {"valid": False}
    status, info = await api.call("GET", f"/_synapse/admin/v1/registration_tokens/{code}", token=token)
    assert info["completed"] == 1
    status, body = await api.call("GET", "/_synapse/admin/v1/registration_tokens", token=done["access_token"])
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("PUT", f"/_synapse/admin/v1/registration_tokens/{code}", {"uses_allowed": 2}, token=token)
    assert body["uses_allowed"] == 2
    status, body = await api.call("POST", "/_synapse/admin/v1/registration_tokens/new", {"token": "bad token!"}, token=token)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, _ = await api.call("DELETE", f"/_synapse/admin/v1/registration_tokens/{code}", token=token)
    assert status == 200
    status, body = await api.call("GET", f"/_synapse/admin/v1/registration_tokens/{code}", token=token)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_shared_secret_registration_off(api: Api, start_server: StartServer, http) -> None:  # noqa: ANN001
    bare = Api(http, await start_server())
    status, body = await bare.call("GET", "/_synapse/admin/v1/register")
    assert status == 400
    status, body = await api.call("POST", "/_synapse/admin/v1/register", {"nonce": "made-up", "username": "x",
                                                                          "password": "y", "mac": "00"})
    assert status == 400


async def test_synapse_password_hashes_verify(api: Api, database_dsn: str) -> None:
    """An account imported from Synapse keeps its bcrypt hash ($2b$, 12 rounds) and logs in."""
    import bcrypt

    synapse_hash = bcrypt.hashpw(b"imported password", bcrypt.gensalt(12)).decode()
    conn = await asyncpg.connect(database_dsn)
    try:
        await conn.execute(
            "INSERT INTO users (user_id, password_hash, creation_ts) VALUES ('@imported:test.local', $1, 0)",
            synapse_hash,
        )
    finally:
        await conn.close()
    status, body = await api.login("imported", "imported password")
    assert status == 200 and body["user_id"] == "@imported:test.local"
    assert (await api.login("imported", "other"))[0] == 403
