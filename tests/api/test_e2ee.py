"""End-to-end encryption support: device and one-time keys, to-device, cross-signing, key backup."""

from __future__ import annotations

import pytest
from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key

from homeserver.core.signing import sign_json
from tests.api.helpers import Api
from tests.conftest import StartServer

OPEN = {"enable_registration": True, "enable_registration_without_verification": True}


class Device:
    """A client device with a real ed25519 key."""

    def __init__(self, user_id: str, device_id: str, token: str) -> None:
        self.user_id, self.device_id, self.token = user_id, device_id, token
        self.key = generate_signing_key(device_id)
        self.public = encode_verify_key_base64(get_verify_key(self.key))

    def device_keys(self) -> dict:
        keys = {"user_id": self.user_id, "device_id": self.device_id,
                "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
                "keys": {f"curve25519:{self.device_id}": "curvecurve", f"ed25519:{self.device_id}": self.public}}
        return sign_json(keys, self.user_id, self.key)


@pytest.fixture
async def setup(start_server: StartServer, http):  # noqa: ANN201, ANN001
    api = Api(http, await start_server(**OPEN))
    alice = await api.register("alice")
    bob = await api.register("bob")
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice["access_token"])
    await api.call("POST", f"/rooms/{created['room_id']}/join", {}, token=bob["access_token"])
    return api, Device(alice["user_id"], alice["device_id"], alice["access_token"]), \
        Device(bob["user_id"], bob["device_id"], bob["access_token"])


async def test_device_and_one_time_keys(setup) -> None:  # noqa: ANN001
    api, alice, bob = setup
    _, start = await api.call("GET", "/sync", token=bob.token)
    status, body = await api.call("POST", "/keys/upload", {
        "device_keys": alice.device_keys(),
        "one_time_keys": {f"signed_curve25519:AAA{i}": sign_json({"key": f"otk{i}"}, alice.user_id, alice.key)
                          for i in range(3)},
        "fallback_keys": {"signed_curve25519:FB": sign_json({"key": "fb", "fallback": True}, alice.user_id, alice.key)},
    }, token=alice.token)
    assert (status, body["one_time_key_counts"]["signed_curve25519"]) == (200, 3)
    _, synced = await api.call("GET", "/sync", token=bob.token, query={"since": start["next_batch"], "timeout": "1000"})
    assert alice.user_id in synced["device_lists"]["changed"]
    _, changes = await api.call("GET", "/keys/changes", token=bob.token,
                                query={"from": start["next_batch"], "to": synced["next_batch"]})
    assert changes["changed"] == [alice.user_id]

    _, query = await api.call("POST", "/keys/query", {"device_keys": {alice.user_id: []}}, token=bob.token)
    assert query["device_keys"][alice.user_id][alice.device_id]["keys"] == alice.device_keys()["keys"]
    _, remote = await api.call("POST", "/keys/query", {"device_keys": {"@x:elsewhere.org": []}}, token=bob.token)
    assert "elsewhere.org" in remote["failures"]

    claimed_ids = []
    for _ in range(4):
        _, claim = await api.call("POST", "/keys/claim", {"one_time_keys": {alice.user_id: {
            alice.device_id: "signed_curve25519"}}}, token=bob.token)
        claimed_ids.extend(claim["one_time_keys"][alice.user_id][alice.device_id])
    assert claimed_ids[:3] == [f"signed_curve25519:AAA{i}" for i in range(3)]
    assert claimed_ids[3] == "signed_curve25519:FB"
    _, own = await api.call("GET", "/sync", token=alice.token)
    assert own["device_one_time_keys_count"]["signed_curve25519"] == 0
    assert own["device_unused_fallback_key_types"] == []
    _, claim = await api.call("POST", "/keys/claim", {"one_time_keys": {alice.user_id: {"NODEVICE": "signed_curve25519"}}},
                              token=bob.token)
    assert claim["one_time_keys"] == {}


async def test_bad_key_uploads_store_nothing(setup) -> None:  # noqa: ANN001
    api, alice, bob = setup
    # Self-signatures are the clients' to check (as in Synapse); the owner and device must match.
    for device_keys in (bob.device_keys(), {**alice.device_keys(), "device_id": "OTHER"}):
        status, body = await api.call("POST", "/keys/upload", {"device_keys": device_keys}, token=alice.token)
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await api.call("POST", "/keys/upload", {"one_time_keys": {"nocolon": "x"}}, token=alice.token)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    await api.call("POST", "/keys/upload", {"one_time_keys": {"signed_curve25519:K": "a"}}, token=alice.token)
    status, body = await api.call("POST", "/keys/upload", {
        "device_keys": alice.device_keys(), "one_time_keys": {"signed_curve25519:K": "b"}}, token=alice.token)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    _, query = await api.call("POST", "/keys/query", {"device_keys": {alice.user_id: []}}, token=bob.token)
    assert query["device_keys"][alice.user_id] == {}


async def test_to_device(setup) -> None:  # noqa: ANN001
    api, alice, bob = setup
    _, start = await api.call("GET", "/sync", token=bob.token)
    body = {"messages": {bob.user_id: {bob.device_id: {"n": 1}}, "@nobody:test.local": {"*": {"n": 0}}}}
    assert (await api.call("PUT", "/sendToDevice/m.test/t1", body, token=alice.token))[0] == 200
    assert (await api.call("PUT", "/sendToDevice/m.test/t1", body, token=alice.token))[0] == 200
    for i in range(2, 105):
        await api.call("PUT", f"/sendToDevice/m.test/t{i}", {"messages": {bob.user_id: {"*": {"n": i}}}},
                       token=alice.token)
    _, first = await api.call("GET", "/sync", token=bob.token, query={"since": start["next_batch"], "timeout": "1000"})
    numbers = [e["content"]["n"] for e in first["to_device"]["events"]]
    assert numbers == list(range(1, 101))
    assert first["to_device"]["events"][0] == {"type": "m.test", "sender": alice.user_id, "content": {"n": 1}}
    _, again = await api.call("GET", "/sync", token=bob.token, query={"since": start["next_batch"]})
    assert [e["content"]["n"] for e in again["to_device"]["events"]] == numbers
    _, second = await api.call("GET", "/sync", token=bob.token, query={"since": first["next_batch"]})
    assert [e["content"]["n"] for e in second["to_device"]["events"]] == list(range(101, 105))
    _, third = await api.call("GET", "/sync", token=bob.token, query={"since": second["next_batch"]})
    assert third["to_device"]["events"] == []
    status, body = await api.call("PUT", "/sendToDevice/m.test/bad", {"messages": {bob.user_id: "x"}},
                                  token=alice.token)
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


def cross_signing_keys(user_id: str) -> tuple[dict, dict, dict, object, object, object]:
    master_key, ssk_key, usk_key = (generate_signing_key(n) for n in ("m", "s", "u"))
    master_pub, ssk_pub, usk_pub = (encode_verify_key_base64(get_verify_key(k)) for k in (master_key, ssk_key, usk_key))
    master = {"user_id": user_id, "usage": ["master"], "keys": {f"ed25519:{master_pub}": master_pub}}
    ssk = sign_json({"user_id": user_id, "usage": ["self_signing"], "keys": {f"ed25519:{ssk_pub}": ssk_pub}},
                    user_id, _named(master_key, master_pub))
    usk = sign_json({"user_id": user_id, "usage": ["user_signing"], "keys": {f"ed25519:{usk_pub}": usk_pub}},
                    user_id, _named(master_key, master_pub))
    return master, ssk, usk, _named(master_key, master_pub), _named(ssk_key, ssk_pub), _named(usk_key, usk_pub)


def _named(key, public: str):  # noqa: ANN001, ANN202
    key.version = public
    return key


async def test_cross_signing(setup) -> None:  # noqa: ANN001
    api, alice, bob = setup
    await api.call("POST", "/keys/upload", {"device_keys": alice.device_keys()}, token=alice.token)
    await api.call("POST", "/keys/upload", {"device_keys": bob.device_keys()}, token=bob.token)
    master, ssk, usk, master_key, ssk_key, _ = cross_signing_keys(alice.user_id)
    status, _ = await api.call("POST", "/keys/device_signing/upload",
                               {"master_key": master, "self_signing_key": ssk, "user_signing_key": usk},
                               token=alice.token)
    assert status == 200
    _, query = await api.call("POST", "/keys/query", {"device_keys": {alice.user_id: []}}, token=bob.token)
    assert query["master_keys"][alice.user_id]["keys"] == master["keys"]
    assert query["self_signing_keys"][alice.user_id]["keys"] == ssk["keys"]
    assert alice.user_id not in query["user_signing_keys"]
    _, own = await api.call("POST", "/keys/query", {"device_keys": {alice.user_id: []}}, token=alice.token)
    assert own["user_signing_keys"][alice.user_id]["keys"] == usk["keys"]

    # A new user-signing key only concerns alice (nobody else can see it): her device list
    # changes for her own syncs, not for bob's.
    _, bob_before = await api.call("GET", "/sync", token=bob.token)
    _, alice_before = await api.call("GET", "/sync", token=alice.token)
    usk2_key = generate_signing_key("u2")
    usk2_pub = encode_verify_key_base64(get_verify_key(usk2_key))
    usk2 = sign_json({"user_id": alice.user_id, "usage": ["user_signing"], "keys": {f"ed25519:{usk2_pub}": usk2_pub}},
                     alice.user_id, master_key)
    status, _ = await api.call("POST", "/keys/device_signing/upload", {"user_signing_key": usk2}, token=alice.token)
    assert status == 200
    _, bob_after = await api.call("GET", "/sync", token=bob.token, query={"since": bob_before["next_batch"]})
    assert alice.user_id not in bob_after["device_lists"]["changed"]
    _, alice_after = await api.call("GET", "/sync", token=alice.token, query={"since": alice_before["next_batch"]})
    assert alice.user_id in alice_after["device_lists"]["changed"]
    _, changes = await api.call("GET", "/keys/changes", token=bob.token,
                                query={"from": bob_before["next_batch"], "to": bob_after["next_batch"]})
    assert alice.user_id not in changes["changed"]

    signed_device = sign_json(alice.device_keys(), alice.user_id, ssk_key)
    status, result = await api.call("POST", "/keys/signatures/upload",
                                    {alice.user_id: {alice.device_id: signed_device}}, token=alice.token)
    assert (status, result["failures"]) == (200, {})
    _, query = await api.call("POST", "/keys/query", {"device_keys": {alice.user_id: []}}, token=bob.token)
    device_sigs = query["device_keys"][alice.user_id][alice.device_id]["signatures"][alice.user_id]
    assert f"ed25519:{ssk_key.version}" in device_sigs
    bad = sign_json(alice.device_keys(), alice.user_id, generate_signing_key(ssk_key.version))
    _, result = await api.call("POST", "/keys/signatures/upload", {alice.user_id: {alice.device_id: bad}},
                               token=alice.token)
    assert result["failures"][alice.user_id][alice.device_id]["errcode"] == "M_INVALID_SIGNATURE"

    bob_master, bob_ssk, bob_usk, _bm, _bs, bob_usk_key = cross_signing_keys(bob.user_id)
    await api.call("POST", "/keys/device_signing/upload",
                   {"master_key": bob_master, "self_signing_key": bob_ssk, "user_signing_key": bob_usk}, token=bob.token)
    alice_master_pub = next(iter(master["keys"].values()))
    signed_master = sign_json(master, bob.user_id, bob_usk_key)
    _, result = await api.call("POST", "/keys/signatures/upload", {alice.user_id: {alice_master_pub: signed_master}},
                               token=bob.token)
    assert result["failures"] == {}
    _, by_bob = await api.call("POST", "/keys/query", {"device_keys": {alice.user_id: []}}, token=bob.token)
    assert bob.user_id in by_bob["master_keys"][alice.user_id]["signatures"]
    _, by_alice = await api.call("POST", "/keys/query", {"device_keys": {alice.user_id: []}}, token=alice.token)
    assert bob.user_id not in by_alice["master_keys"][alice.user_id].get("signatures", {})

    new_master, new_ssk, _nu, _a, _b, _c = cross_signing_keys(alice.user_id)
    status, body = await api.call("POST", "/keys/device_signing/upload",
                                  {"master_key": new_master, "self_signing_key": new_ssk}, token=alice.token)
    assert status == 401 and body["flows"] == [{"stages": ["m.login.password"]}]
    status, _ = await api.call("POST", "/keys/device_signing/upload", {
        "master_key": new_master, "self_signing_key": new_ssk,
        "auth": {"type": "m.login.password", "password": "password", "session": body["session"]}}, token=alice.token)
    assert status == 200
    status, body = await api.call("POST", "/keys/device_signing/upload", {"self_signing_key": ssk}, token=alice.token)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


async def test_key_backup(setup) -> None:  # noqa: ANN001
    api, alice, _bob = setup
    token = alice.token
    status, body = await api.call("GET", "/room_keys/version", token=token)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    _, created = await api.call("POST", "/room_keys/version", {
        "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": {"public_key": "abc"}}, token=token)
    version = created["version"]
    _, info = await api.call("GET", "/room_keys/version", token=token)
    assert (info["version"], info["count"], info["auth_data"]) == (version, 0, {"public_key": "abc"})
    key = {"first_message_index": 5, "forwarded_count": 1, "is_verified": False, "session_data": {"c": "1"}}
    status, body = await api.call("PUT", "/room_keys/keys/!r:test.local/sess", key, token=token,
                                  query={"version": version})
    assert status == 200 and body["count"] == 1
    etag = body["etag"]
    worse = {**key, "first_message_index": 9, "session_data": {"c": "worse"}}
    _, body = await api.call("PUT", "/room_keys/keys/!r:test.local/sess", worse, token=token, query={"version": version})
    assert body["etag"] == etag
    better = {**key, "is_verified": True, "first_message_index": 20, "session_data": {"c": "verified"}}
    _, body = await api.call("PUT", "/room_keys/keys/!r:test.local", {"sessions": {"sess": better}}, token=token,
                             query={"version": version})
    assert body["etag"] != etag
    await api.call("PUT", "/room_keys/keys", {"rooms": {"!s:test.local": {"sessions": {"other": key}}}}, token=token,
                   query={"version": version})
    _, all_keys = await api.call("GET", "/room_keys/keys", token=token, query={"version": version})
    assert all_keys["rooms"]["!r:test.local"]["sessions"]["sess"]["session_data"] == {"c": "verified"}
    assert set(all_keys["rooms"]) == {"!r:test.local", "!s:test.local"}
    _, one = await api.call("GET", "/room_keys/keys/!s:test.local/other", token=token, query={"version": version})
    assert one == key
    status, body = await api.call("PUT", "/room_keys/keys/!r:test.local/sess", key, token=token, query={"version": "999"})
    assert (status, body["errcode"], body["current_version"]) == (403, "M_WRONG_ROOM_KEYS_VERSION", version)
    status, body = await api.call("PUT", "/room_keys/keys/!r:test.local/sess", {**key, "is_verified": "yes"},
                                  token=token, query={"version": version})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    assert (await api.call("PUT", f"/room_keys/version/{version}", {
        "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": {"public_key": "def"}}, token=token))[0] == 200
    _, body = await api.call("DELETE", "/room_keys/keys/!s:test.local", token=token, query={"version": version})
    assert body["count"] == 1
    assert (await api.call("DELETE", f"/room_keys/version/{version}", token=token))[0] == 200
    status, body = await api.call("GET", f"/room_keys/version/{version}", token=token)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


DEHYDRATED = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"


async def test_dehydrated_devices(setup) -> None:  # noqa: ANN001
    api, alice, bob = setup
    status, body = await api.call("GET", DEHYDRATED, token=bob.token)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    _, versions = await api.call("GET", "/_matrix/client/versions")
    assert versions["unstable_features"]["org.matrix.msc3814"] is True

    parked = Device(bob.user_id, "PARKED1", bob.token)
    upload = {"device_id": "PARKED1", "device_data": {"algorithm": "m.dehydration.v2", "ciphertext": "abc"},
              "initial_device_display_name": "Dehydrated device",
              "device_keys": {**parked.device_keys()}, "one_time_keys": {"signed_curve25519:AAAA": {"key": "k"}}}
    assert (await api.call("PUT", DEHYDRATED, upload, token=bob.token)) == (200, {"device_id": "PARKED1"})
    _, got = await api.call("GET", DEHYDRATED, token=bob.token)
    assert got == {"device_id": "PARKED1", "device_data": upload["device_data"]}
    # Others see the device and can encrypt to it.
    _, queried = await api.call("POST", "/keys/query", {"device_keys": {bob.user_id: []}}, token=alice.token)
    assert "PARKED1" in queried["device_keys"][bob.user_id]
    _, claimed = await api.call("POST", "/keys/claim", {"one_time_keys": {bob.user_id: {"PARKED1": "signed_curve25519"}}},
                                token=alice.token)
    assert claimed["one_time_keys"][bob.user_id]["PARKED1"] == {"signed_curve25519:AAAA": {"key": "k"}}

    for i in range(150):
        await api.call("PUT", f"/sendToDevice/m.room_key/d{i}", {"messages": {bob.user_id: {"PARKED1": {"n": i}}}},
                       token=alice.token)
    events = f"{DEHYDRATED}/PARKED1/events"
    _, first = await api.call("POST", events, {}, token=bob.token)
    assert [e["content"]["n"] for e in first["events"]] == list(range(100))
    _, second = await api.call("POST", events, {"next_batch": first["next_batch"]}, token=bob.token)
    assert [e["content"]["n"] for e in second["events"]] == list(range(100, 150))
    _, done = await api.call("POST", events, {"next_batch": second["next_batch"]}, token=bob.token)
    assert done["events"] == []
    for body, path, expected in [({"next_batch": "x"}, events, (400, "M_INVALID_PARAM")),
                                 ({}, f"{DEHYDRATED}/{bob.device_id}/events", (403, "M_FORBIDDEN"))]:
        status, answer = await api.call("POST", path, body, token=bob.token)
        assert (status, answer["errcode"]) == expected

    # A new dehydrated device replaces the old one, its keys and messages.
    replacement = Device(bob.user_id, "PARKED2", bob.token)
    await api.call("PUT", DEHYDRATED, {**upload, "device_id": "PARKED2", "device_keys": replacement.device_keys()},
                   token=bob.token)
    _, devices = await api.call("GET", "/devices", token=bob.token)
    assert {d["device_id"] for d in devices["devices"]} == {bob.device_id, "PARKED2"}
    for bad, errcode in [
        ({**upload, "device_id": bob.device_id, "device_keys": bob.device_keys()}, "M_INVALID_PARAM"),
        ({**upload, "device_id": "PARKED3"}, "M_INVALID_PARAM"),
        ({k: v for k, v in upload.items() if k != "device_data"}, "M_BAD_JSON"),
        ({k: v for k, v in upload.items() if k != "device_keys"}, "M_MISSING_PARAM"),
    ]:
        status, answer = await api.call("PUT", DEHYDRATED, bad, token=bob.token)
        assert (status, answer["errcode"]) == (400, errcode), bad
    assert (await api.call("GET", DEHYDRATED, token=bob.token))[1]["device_id"] == "PARKED2"
    assert (await api.call("DELETE", DEHYDRATED, token=bob.token)) == (200, {"device_id": "PARKED2"})
    assert (await api.call("GET", DEHYDRATED, token=bob.token))[0] == 404
    _, devices = await api.call("GET", "/devices", token=bob.token)
    assert [d["device_id"] for d in devices["devices"]] == [bob.device_id]


async def test_new_and_former_room_sharers_in_device_lists(setup) -> None:  # noqa: ANN001
    api, alice, _bob = setup
    carol = await api.register("carol")
    carol_id, carol_token = carol["user_id"], carol["access_token"]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice.token)
    room = created["room_id"]
    _, first = await api.call("GET", "/sync", token=alice.token)
    await api.call("POST", f"/join/{room}", {}, token=carol_token)
    _, joined = await api.call("GET", "/sync", token=alice.token, query={"since": first["next_batch"]})
    assert carol_id in joined["device_lists"]["changed"]
    _, changes = await api.call("GET", "/keys/changes", token=alice.token,
                                query={"from": first["next_batch"], "to": joined["next_batch"]})
    assert carol_id in changes["changed"]
    await api.call("POST", f"/rooms/{room}/leave", {}, token=carol_token)
    _, gone = await api.call("GET", "/sync", token=alice.token, query={"since": joined["next_batch"]})
    assert carol_id in gone["device_lists"]["left"] and carol_id not in gone["device_lists"]["changed"]
    # An invited user is someone to encrypt for (as Synapse counts them): changed, never "left".
    dave = await api.register("dave")
    await api.call("POST", f"/rooms/{room}/invite", {"user_id": dave["user_id"]}, token=alice.token)
    _, invited = await api.call("GET", "/sync", token=alice.token, query={"since": gone["next_batch"]})
    assert dave["user_id"] in invited["device_lists"]["changed"]
    assert dave["user_id"] not in invited["device_lists"]["left"]
