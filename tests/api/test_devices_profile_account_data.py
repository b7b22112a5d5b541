"""Devices, profiles and account data over real HTTP."""

from __future__ import annotations

import pytest

from tests.api.helpers import Api
from tests.conftest import StartServer


@pytest.fixture
async def api(start_server: StartServer, http) -> Api:  # noqa: ANN001
    return Api(http, await start_server(enable_registration=True, enable_registration_without_verification=True))


async def test_devices(api: Api) -> None:
    await api.register("alice")
    _, phone = await api.login("alice", device_id="PHONE", initial_device_display_name="Phone")
    _, laptop = await api.login("alice", device_id="LAPTOP")
    token = phone["access_token"]
    await api.call("GET", "/account/whoami", token=laptop["access_token"])
    status, body = await api.call("GET", "/devices", token=token)
    by_id = {d["device_id"]: d for d in body["devices"]}
    assert {"PHONE", "LAPTOP"} <= set(by_id)
    assert by_id["PHONE"]["display_name"] == "Phone"
    assert by_id["LAPTOP"]["last_seen_ip"] == "127.0.0.1" and by_id["LAPTOP"]["last_seen_ts"] > 0
    status, body = await api.call("GET", "/devices/PHONE", token=token)
    assert (status, body["device_id"]) == (200, "PHONE")
    status, body = await api.call("PUT", "/devices/LAPTOP", {"display_name": "Work laptop"}, token=token)
    assert status == 200
    assert (await api.call("GET", "/devices/LAPTOP", token=token))[1]["display_name"] == "Work laptop"
    status, body = await api.call("PUT", "/devices/NOPE", {"display_name": "x"}, token=token)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await api.call("PUT", "/devices/LAPTOP", {"display_name": 5}, token=token)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await api.call("GET", "/devices/NOPE", token=token)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")

    status, first = await api.call("DELETE", "/devices/LAPTOP", {}, token=token)
    assert status == 401 and first["flows"] == [{"stages": ["m.login.password"]}]
    # Someone else's correct password authorises nothing (a stolen access token is not enough).
    await api.register("eve", "eve password")
    status, body = await api.call("DELETE", "/devices/LAPTOP", {"auth": {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "eve"}, "password": "eve password",
        "session": first["session"]}}, token=token)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert (await api.call("GET", "/devices/LAPTOP", token=token))[0] == 200
    status, first = await api.call("DELETE", "/devices/LAPTOP", {}, token=token)
    status, _ = await api.call("DELETE", "/devices/LAPTOP", {"auth": {"type": "m.login.password", "password": "password",
                                                                      "session": first["session"]}}, token=token)
    assert status == 200
    assert (await api.call("GET", "/account/whoami", token=laptop["access_token"]))[0] == 401

    _, tablet = await api.login("alice", device_id="TABLET")
    status, first = await api.call("POST", "/delete_devices", {"devices": ["TABLET"]}, token=token)
    assert status == 401
    status, _ = await api.call("POST", "/delete_devices", {"devices": ["TABLET"], "auth": {
        "type": "m.login.password", "password": "password", "session": first["session"]}}, token=token)
    assert status == 200
    assert (await api.call("GET", "/account/whoami", token=tablet["access_token"]))[0] == 401
    status, body = await api.call("POST", "/delete_devices", {"devices": "TABLET", "auth": {
        "type": "m.login.password", "password": "password"}}, token=token)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_profiles(api: Api) -> None:
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    status, body = await api.call("GET", "/profile/@alice:test.local")
    assert (status, body) == (200, {"displayname": "alice"})
    status, _ = await api.call("PUT", "/profile/@alice:test.local/displayname", {"displayname": "Alice A."}, token=alice)
    assert status == 200
    status, _ = await api.call("PUT", "/profile/@alice:test.local/avatar_url", {"avatar_url": "mxc://test.local/abc"},
                               token=alice)
    assert status == 200
    assert (await api.call("GET", "/profile/@alice:test.local"))[1] == {
        "displayname": "Alice A.", "avatar_url": "mxc://test.local/abc"}
    assert (await api.call("GET", "/profile/@alice:test.local/displayname"))[1] == {"displayname": "Alice A."}
    status, body = await api.call("PUT", "/profile/@alice:test.local/displayname", {"displayname": "x"}, token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("PUT", "/profile/@alice:test.local/displayname", {"displayname": 1}, token=alice)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await api.call("PUT", "/profile/@alice:test.local/displayname", {"displayname": "x" * 300}, token=alice)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    # Any string is stored, as Synapse does (old clients and bridges set http URLs).
    status, body = await api.call("PUT", "/profile/@alice:test.local/avatar_url", {"avatar_url": "https://x"}, token=alice)
    assert status == 200
    status, body = await api.call("PUT", "/profile/@alice:test.local/avatar_url", {"avatar_url": 5}, token=alice)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    status, body = await api.call("GET", "/profile/@nobody:test.local")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await api.call("PUT", "/profile/@alice:test.local/displayname", {"displayname": "x"})
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")


async def test_account_data(api: Api) -> None:
    alice = (await api.register("alice"))["access_token"]
    bob = (await api.register("bob"))["access_token"]
    base = "/user/@alice:test.local"
    assert (await api.call("PUT", f"{base}/account_data/m.direct", {"@bob:test.local": ["!r:test.local"]},
                           token=alice))[0] == 200
    assert (await api.call("GET", f"{base}/account_data/m.direct", token=alice)) == (
        200, {"@bob:test.local": ["!r:test.local"]})
    secret = {"key": {"encrypted": {"k": {"iv": "a", "ciphertext": "b", "mac": "c"}}}}
    for data_type in ("m.secret_storage.default_key", "m.cross_signing.master"):
        assert (await api.call("PUT", f"{base}/account_data/{data_type}", secret, token=alice))[0] == 200
        assert (await api.call("GET", f"{base}/account_data/{data_type}", token=alice))[1] == secret
    room = f"{base}/rooms/!room:test.local/account_data"
    assert (await api.call("PUT", f"{room}/m.tag", {"tags": {}}, token=alice))[0] == 200
    assert (await api.call("GET", f"{room}/m.tag", token=alice)) == (200, {"tags": {}})
    status, body = await api.call("GET", f"{base}/account_data/m.tag", token=alice)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await api.call("GET", f"{base}/account_data/m.direct", token=bob)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("PUT", f"{room}/m.fully_read", {"event_id": "$x"}, token=alice)
    assert (status, body["errcode"]) == (405, "M_BAD_JSON")
    status, body = await api.call("PUT", f"{base}/account_data/m.push_rules", {}, token=alice)
    assert (status, body["errcode"]) == (405, "M_BAD_JSON")
    status, body = await api.call("PUT", f"{base}/rooms/not-a-room/account_data/m.tag", {}, token=alice)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await api.call("PUT", f"{base}/account_data/m.direct", raw=b"[]", token=alice)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
