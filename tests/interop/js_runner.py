"""Running a Node script of `tests/interop/js` (matrix-js-sdk from npm) and reading its findings."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

JS = Path(__file__).parent / "js"


async def run_js(script: str, *args: str, timeout: float) -> dict[str, Any]:
    """Run `node script args...` in `tests/interop/js`; the JSON of its last `RESULT ` line."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the matrix-js-sdk interop tests"
    assert (JS / "node_modules" / "matrix-js-sdk").is_dir(), "run `npm ci --prefix tests/interop/js` first"
    process = await asyncio.create_subprocess_exec(
        node, str(JS / script), *args, cwd=JS, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()[-3000:]
    result = [line for line in stdout.decode().splitlines() if line.startswith("RESULT ")]
    assert result, stdout.decode()[-3000:]
    return json.loads(result[-1].removeprefix("RESULT "))
