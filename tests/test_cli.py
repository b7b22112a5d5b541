"""The command line, run as a user would: real processes, real embedded PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg
import pytest
import yaml

from homeserver import __version__
from homeserver.config import parse_config
from homeserver.signing_key_file import load_signing_key

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def hs(*args: str, cwd: Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "homeserver", *args],
        cwd=cwd, env=ENV, capture_output=True, text=True, timeout=120, input=input,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_version_and_help(tmp_path: Path) -> None:
    result = hs("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, f"homeserver {__version__}")
    for command in ([], ["run"], ["generate-config"], ["register-user"], ["migrate"]):
        result = hs(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("listeners: [{port: eighty}]\n", "error: listeners[0].port: expected an integer, got string 'eighty'"),
        ("unknown_key: 1\n", "error: unknown_key: unknown key; allowed here: "),
        ("server_name: [\n", "error: "),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, config: str, expected: str) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(config)
    result = hs("--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(expected)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = hs("migrate", "--config", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot read config file")
    assert result.stderr.count("\n") == 1


def test_generate_config(tmp_path: Path) -> None:
    out = tmp_path / "etc" / "homeserver.yaml"
    out.parent.mkdir()
    result = hs("generate-config", "--server-name", "example.org", "--output", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.startswith("# Configuration of the homeserver.")
    config = parse_config(yaml.safe_load(text))
    assert config.server_name == "example.org"
    assert config.data_dir == out.parent / "data"
    assert config.registration_shared_secret and len(config.registration_shared_secret) >= 32
    key_line = config.signing_key_file.read_text().strip().split(" ")
    assert key_line[0] == "ed25519" and key_line[1].startswith("a_") and len(key_line) == 3
    assert load_signing_key(config.signing_key_file).version == key_line[1]
    again = hs("generate-config", "--server-name", "example.org", "--output", str(out), cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_generate_config_to_stdout(tmp_path: Path) -> None:
    result = hs("generate-config", "--server-name", "example.net:8448", cwd=tmp_path)
    assert result.returncode == 0
    assert parse_config(yaml.safe_load(result.stdout)).server_name == "example.net:8448"
    assert (tmp_path / "data" / "signing.key").exists()


async def test_migrate_and_register_user_against_a_dsn(tmp_path: Path, database_dsn: str) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump({"server_name": "example.org", "database": {"dsn": database_dsn}}))
    result = hs("migrate", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    from homeserver.storage.migrations import load_migrations

    assert f"applied {len(load_migrations())} migration(s)" in result.stdout
    result = hs("register-user", "alice", "--password", "correct horse", "--admin", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "registered @alice:example.org (admin)" in result.stdout
    result = hs("register-user", "@bob:example.org", "-p", "pw", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    conn = await asyncpg.connect(database_dsn)
    try:
        rows = await conn.fetch("SELECT user_id, admin, password_hash FROM users ORDER BY user_id")
    finally:
        await conn.close()
    assert [(r["user_id"], r["admin"]) for r in rows] == [("@alice:example.org", True), ("@bob:example.org", False)]
    import bcrypt

    assert bcrypt.checkpw(b"correct horse", rows[0]["password_hash"].encode())
    for args, message in (
        (["alice", "-p", "x"], "user @alice:example.org already exists"),
        (["Alice!", "-p", "x"], "user name 'Alice!' is not allowed"),
        (["@carol:elsewhere.org", "-p", "x"], "is not on this server"),
        (["dave"], "no --password given"),
    ):
        result = hs("register-user", *args, "--config", str(path), cwd=tmp_path, input="")
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and result.stderr.count("\n") == 1


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _wait_until_up(proc: subprocess.Popen, url: str, seconds: float = 90) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read()}")  # type: ignore[union-attr]
        try:
            return _get_json(url)
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not come up")


def _start(tmp_path: Path, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "homeserver", *args], cwd=tmp_path, env=ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err
    return err


def test_zero_setup_start_restart_reuses_data_and_key(tmp_path: Path) -> None:
    """`python -m homeserver` with no arguments: embedded PostgreSQL and a new key in ./data."""
    if port_is_free(8008):
        args: list[str] = []
        port = 8008
    else:  # something else holds the default port on this machine; change only the port
        port = free_port()
        (tmp_path / "hs.yaml").write_text(f"listeners: [{{port: {port}, x_forwarded: true}}]\n")
        args = ["--config", "hs.yaml"]
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    proc = _start(tmp_path, args)
    try:
        versions = _wait_until_up(proc, base + "/_matrix/client/versions")
        assert "versions" in versions
        assert time.monotonic() - started < 60
        first_key = _get_json(base + "/_matrix/key/v2/server")
        assert first_key["server_name"] == "localhost"
        # The embedded database accepts a second client while the server runs.
        result = hs("register-user", "alice", "-p", "pw", *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    finally:
        log = _stop(proc)
    assert "embedded PostgreSQL stopped" in log
    data = tmp_path / "data"
    assert (data / "signing.key").exists()
    assert (data / "postgres" / "PG_VERSION").exists()
    assert not (data / "postgres" / "postmaster.pid").exists(), "embedded PostgreSQL left running"
    assert not any(p.name.startswith(".s.PGSQL") and p.suffix == "" for p in (data / "postgres").iterdir())

    proc = _start(tmp_path, args)
    try:
        _wait_until_up(proc, base + "/_matrix/client/versions")
        second_key = _get_json(base + "/_matrix/key/v2/server")
        assert second_key["verify_keys"] == first_key["verify_keys"]
        result = hs("register-user", "alice", "-p", "pw", *args, cwd=tmp_path)
        assert result.returncode == 2 and "already exists" in result.stderr
    finally:
        _stop(proc)


def test_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        (tmp_path / "hs.yaml").write_text(f"listeners: [{{port: {port}}}]\n")
        result = hs("--config", "hs.yaml", cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines == [lines[0]] and f"cannot listen on 127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in result.stderr
