"""matrix-js-sdk with its Rust crypto (Node, from npm) end to end against our server: encrypted
messaging both ways, cross-signing, secret storage, key backup, restoring the backup on a new
device to read an old message, and a dehydrated device. The Node packages come from `npm ci --prefix tests/interop/js`
(part of the README's test command)."""

from __future__ import annotations

from tests.api.helpers import Api
from tests.conftest import StartServer, base_url
from tests.interop.js_runner import run_js

PASSWORD = "correct horse battery"


async def test_js_sdk_encryption_cross_signing_and_backup(start_server: StartServer, http) -> None:  # noqa: ANN001
    hs = await start_server(enable_registration=True, enable_registration_without_verification=True,
                            rc_exempt_users=("@alice:test.local", "@bob:test.local"))
    api = Api(http, hs)
    for user in ("alice", "bob"):
        await api.register(user, PASSWORD)
    found = await run_js("e2ee_backup.mjs", base_url(hs), PASSWORD, timeout=180)
    assert found["crossSigningReady"] and found["secretStorageReady"], found
    assert found["imported"] >= 1 and found["total"] >= 1, found
    assert {"secret one", "secret three"} <= set(found["oldMessage"]), found
    assert found["dehydrationSupported"] and found["rehydratedRoomKeys"] >= 1, found
    assert found["newDeviceCrossSigned"] and found["newDeviceSignedByOwnerForAlice"], found
