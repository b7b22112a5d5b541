"""Guest accounts: registration, what they may do, joining guest rooms, revocation, upgrade."""

from __future__ import annotations

from tests.api.helpers import Api
from tests.conftest import StartServer

OPEN = {"enable_registration": True, "enable_registration_without_verification": True}


async def test_guests_off_by_default(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN))
    status, body = await api.call("POST", "/register", {}, query={"kind": "guest"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_guest_lifecycle(start_server: StartServer, http) -> None:  # noqa: ANN001
    api = Api(http, await start_server(**OPEN, allow_guest_access=True))
    alice = (await api.register("alice"))["access_token"]
    status, guest = await api.call("POST", "/register", {}, query={"kind": "guest"})
    assert status == 200 and guest["user_id"][1:].split(":")[0].isdigit(), guest
    token = guest["access_token"]
    status, who = await api.call("GET", "/account/whoami", token=token)
    assert status == 200 and who["is_guest"] is True
    status, body = await api.call("POST", "/createRoom", {}, token=token)
    assert (status, body["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")
    status, _ = await api.call("GET", "/_matrix/client/v1/media/config", token=token)
    assert status == 200  # guests may read media

    status, closed = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    status, body = await api.call("POST", f"/join/{closed['room_id']}", {}, token=token)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "initial_state": [
        {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "can_join"}}]}, token=alice)
    room = created["room_id"]
    status, body = await api.call("POST", f"/join/{room}", {}, token=token)
    assert status == 200, body
    status, sent = await api.call("PUT", f"/rooms/{room}/send/m.room.message/g1", {"msgtype": "m.text", "body": "hi"},
                                  token=token)
    assert status == 200, sent
    # Revoking guest access removes the guest.
    await api.call("PUT", f"/rooms/{room}/state/m.room.guest_access/", {"guest_access": "forbidden"}, token=alice)
    status, members = await api.call("GET", f"/rooms/{room}/joined_members", token=alice)
    assert guest["user_id"] not in members["joined"]

    # Numeric names are the guests'; a guest upgrades to a full account under its user id.
    status, body = await api.call("POST", "/register", {"username": "12345", "password": "pw",
                                                        "auth": {"type": "m.login.dummy"}})
    assert (status, body["errcode"]) == (400, "M_INVALID_USERNAME")
    status, first = await api.call("POST", "/register", {"password": "pw", "guest_access_token": token})
    status, upgraded = await api.call("POST", "/register", {
        "password": "pw", "guest_access_token": token, "auth": {"type": "m.login.dummy", "session": first["session"]}})
    assert status == 200 and upgraded["user_id"] == guest["user_id"], upgraded
    status, who = await api.call("GET", "/account/whoami", token=upgraded["access_token"])
    assert who["is_guest"] is False
    status, body = await api.call("POST", "/createRoom", {}, token=upgraded["access_token"])
    assert status == 200
