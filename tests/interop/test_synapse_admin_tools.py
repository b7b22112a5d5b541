"""Synapse's own `register_new_matrix_user` tool (installed with matrix-synapse) against our server."""

from __future__ import annotations

import asyncio
import shutil
import sys

import pytest

from tests.api.helpers import Api
from tests.conftest import StartServer, base_url


@pytest.mark.skipif(shutil.which("register_new_matrix_user") is None, reason="matrix-synapse is not installed")
async def test_register_new_matrix_user(start_server: StartServer, http) -> None:  # noqa: ANN001
    hs = await start_server(registration_shared_secret="tool-secret")
    proc = await asyncio.create_subprocess_exec(
        shutil.which("register_new_matrix_user") or sys.executable,
        "-u", "toolman", "-p", "tool password", "-a", "-k", "tool-secret", base_url(hs),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out, err)
    assert b"Success" in out
    api = Api(http, hs)
    status, body = await api.login("toolman", "tool password")
    assert status == 200 and body["user_id"] == "@toolman:test.local"
    user = await hs.database.pool.fetchrow("SELECT admin FROM users WHERE user_id = '@toolman:test.local'")
    assert user["admin"] is True
