"""A real client, matrix-nio from PyPI: register, log in on a second device, list devices, log out."""

from __future__ import annotations

import nio
import pytest

from tests.conftest import StartServer, base_url


@pytest.fixture
async def homeserver_url(start_server: StartServer) -> str:
    hs = await start_server(enable_registration=True, enable_registration_without_verification=True)
    return base_url(hs)


async def test_register_login_devices_logout(homeserver_url: str) -> None:
    first = nio.AsyncClient(homeserver_url, "@nio:test.local")
    second = nio.AsyncClient(homeserver_url, "@nio:test.local")
    try:
        registered = await first.register("nio", "correct horse battery", device_name="nio one")
        assert isinstance(registered, nio.RegisterResponse), registered
        assert registered.user_id == "@nio:test.local"
        assert first.access_token

        logged_in = await second.login("correct horse battery", device_name="nio two")
        assert isinstance(logged_in, nio.LoginResponse), logged_in
        assert logged_in.device_id != registered.device_id

        whoami = await second.whoami()
        assert isinstance(whoami, nio.WhoamiResponse) and whoami.user_id == "@nio:test.local"

        devices = await first.devices()
        assert isinstance(devices, nio.DevicesResponse), devices
        names = {d.id: d.display_name for d in devices.devices}
        assert names == {registered.device_id: "nio one", logged_in.device_id: "nio two"}

        stranger = nio.AsyncClient(homeserver_url, "@nio:test.local")
        try:
            bad = await stranger.login("wrong password")
        finally:
            await stranger.close()
        assert isinstance(bad, nio.LoginError) and bad.status_code == "M_FORBIDDEN"

        logged_out = await second.logout()
        assert isinstance(logged_out, nio.LogoutResponse), logged_out
        after = await first.devices()
        assert [d.id for d in after.devices] == [registered.device_id]
    finally:
        await first.close()
        await second.close()
