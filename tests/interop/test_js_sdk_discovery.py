"""Element's check of a homeserver before login, done by matrix-js-sdk from npm: the server's
/versions must list a spec version the SDK supports, or Element refuses the server."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from tests.conftest import StartServer, base_url

JS = Path(__file__).parent / "js"


async def test_element_accepts_the_server(start_server: StartServer) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for the matrix-js-sdk interop test"
    assert (JS / "node_modules" / "matrix-js-sdk").is_dir(), "run `npm ci --prefix tests/interop/js` first"
    hs = await start_server()
    process = await asyncio.create_subprocess_exec(
        node, str(JS / "discovery.mjs"), base_url(hs), cwd=JS,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()[-3000:]
    result = [line for line in stdout.decode().splitlines() if line.startswith("RESULT ")]
    assert result, stdout.decode()[-3000:]
    verdict = json.loads(result[-1].removeprefix("RESULT "))
    assert verdict["state"] == "SUCCESS", verdict
    assert verdict["base_url"] == base_url(hs)
