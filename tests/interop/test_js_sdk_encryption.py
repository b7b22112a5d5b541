"""matrix-js-sdk with its Rust crypto (Node, from npm) end to end against our server: encrypted
messaging both ways, cross-signing, secret storage, key backup, restoring the backup on a new
device to read an old message, and a dehydrated device. The Node packages come from `npm ci --prefix tests/interop/js`
(part of the README's test command)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from tests.api.helpers import Api
from tests.conftest import StartServer, base_url

JS = Path(__file__).parent / "js"
PASSWORD = "correct horse battery"


async def test_js_sdk_encryption_cross_signing_and_backup(start_server: StartServer, http) -> None:  # noqa: ANN001
    node = shutil.which("node")
    assert node, "Node.js is needed for the matrix-js-sdk interop test"
    assert (JS / "node_modules" / "matrix-js-sdk").is_dir(), "run `npm ci --prefix tests/interop/js` first"
    hs = await start_server(enable_registration=True, enable_registration_without_verification=True,
                            rc_exempt_users=("@alice:test.local", "@bob:test.local"))
    api = Api(http, hs)
    for user in ("alice", "bob"):
        await api.register(user, PASSWORD)
    process = await asyncio.create_subprocess_exec(
        node, str(JS / "e2ee_backup.mjs"), base_url(hs), PASSWORD, cwd=JS,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=180)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()[-3000:]
    result = [line for line in stdout.decode().splitlines() if line.startswith("RESULT ")]
    assert result, stdout.decode()[-3000:]
    found = json.loads(result[-1].removeprefix("RESULT "))
    assert found["crossSigningReady"] and found["secretStorageReady"], found
    assert found["imported"] >= 1 and found["total"] >= 1, found
    assert {"secret one", "secret three"} <= set(found["oldMessage"]), found
    assert found["dehydrationSupported"] and found["rehydratedRoomKeys"] >= 1, found
    assert found["newDeviceCrossSigned"] and found["newDeviceSignedByOwnerForAlice"], found
