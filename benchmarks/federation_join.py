"""Federation join benchmark: our server and a second Synapse join the same big room on a Synapse host.

    python -m benchmarks.federation_join [--members 1000] [--messages 2000] [--order synapse-first]

A host Synapse (PostgreSQL) gets a public room with `--members` members (created through an
application service, so no password hashing) and a history of `--messages` messages with a state
change every 50. Then, in one run, our server (its embedded PostgreSQL) and a second Synapse
(PostgreSQL) each register a user and join the room over TLS on loopback. Reported per joiner:
the time until `/join` answers, the time until the joined server holds the room's full state
(`/members` lists every member; Synapse joins with partial state and answers `/join` early, then
fetches the rest in the background, so its full-state time is the comparable figure), and the
peak resident memory of the server process and of its database during the join (sampled every
20 ms). All traffic stays on 127.0.0.1. Needs `pip install '.[bench]'`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml

from benchmarks.load import GENEROUS, postmaster_pid
from benchmarks.load import Server as ProcessServer

AS_TOKEN = "bench_as_token"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


class Peak:
    """Samples the RSS of a process (and, separately, of a PostgreSQL cluster) in a thread."""

    def __init__(self, pid: int, pg_pid: int) -> None:
        self.pid, self.pg_pid = pid, pg_pid
        self.server_mb = 0.0
        self.db_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        server = psutil.Process(self.pid)
        postmaster = psutil.Process(self.pg_pid)
        while not self._stop.is_set():
            try:
                self.server_mb = max(self.server_mb, server.memory_info().rss / 2**20)
                db = sum(p.memory_info().rss for p in [postmaster, *postmaster.children(recursive=True)])
                self.db_mb = max(self.db_mb, db / 2**20)
            except psutil.Error:
                pass
            self._stop.wait(0.02)

    def __enter__(self) -> "Peak":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Server(ProcessServer):
    """A federating server on loopback over TLS, named by its address."""

    def __init__(self, workdir: Path, cert: Path, key: Path) -> None:
        super().__init__(workdir.name, workdir)
        self.server_name = f"127.0.0.1:{self.port}"
        self.base = f"https://127.0.0.1:{self.port}"
        self.cert, self.key = cert, key


class Ours(Server):
    def start(self) -> None:
        config = {
            "server_name": self.server_name, "data_dir": str(self.workdir / "data"), "log_level": "WARNING",
            "listeners": [{"port": self.port, "tls": True, "tls_certificate_path": str(self.cert),
                           "tls_private_key_path": str(self.key), "resources": ["client", "federation"]}],
            "enable_registration": True, "enable_registration_without_verification": True, "bcrypt_rounds": 4,
            "rc_login": {"address": GENEROUS, "account": GENEROUS, "failed_attempts": GENEROUS},
            "rc_registration": GENEROUS, "rc_message": GENEROUS,
            "federation_verify_certificates": False, "ip_range_whitelist": ["127.0.0.0/8"],
            "trusted_key_servers": [],
        }
        path = self.workdir / "homeserver.yaml"
        path.write_text(yaml.safe_dump(config))
        log = open(self.workdir / "server.log", "wb")  # noqa: SIM115 - closed with the process
        checkout = str(Path(__file__).resolve().parents[1])
        self.proc = subprocess.Popen([sys.executable, "-m", "homeserver", "--config", str(path)], stdout=log,
                                     stderr=log, cwd=self.workdir, env={**os.environ, "PYTHONPATH": checkout})
        self.pgdata = self.workdir / "data" / "postgres"


class SynapseServer(Server):
    def start(self, appservice: bool = False) -> None:
        import pgserver

        self.pgdata = self.workdir / "postgres"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._pg = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        self._pg.psql("CREATE DATABASE synapse TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';")
        config_path = self.workdir / "hs.yaml"
        subprocess.run(
            [sys.executable, "-m", "synapse.app.homeserver", "--server-name", self.server_name, "--config-path",
             str(config_path), "--generate-config", "--report-stats=no", "--data-directory", str(self.workdir)],
            check=True, capture_output=True, cwd=self.workdir)
        config = yaml.safe_load(config_path.read_text())
        config.update({
            "listeners": [{"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": True,
                           "resources": [{"names": ["client", "federation"], "compress": False}]}],
            "tls_certificate_path": str(self.cert), "tls_private_key_path": str(self.key),
            "database": {"name": "psycopg2", "args": {"user": "postgres", "database": "synapse",
                                                     "host": str(self.pgdata), "cp_min": 5, "cp_max": 10}},
            "enable_registration": True, "enable_registration_without_verification": True, "bcrypt_rounds": 4,
            "rc_message": GENEROUS, "rc_registration": GENEROUS, "rc_joins": {"local": GENEROUS, "remote": GENEROUS},
            "rc_login": {"address": GENEROUS, "account": GENEROUS, "failed_attempts": GENEROUS},
            "rc_joins_per_room": GENEROUS, "rc_room_creation": GENEROUS,
            "rc_federation": {"window_size": 1000, "sleep_limit": 10000, "sleep_delay": 1, "reject_limit": 10000,
                              "concurrent": 1000},
            "suppress_key_server_warning": True, "trusted_key_servers": [],
            "federation_verify_certificates": False, "ip_range_whitelist": ["127.0.0.0/8"],
            "federation_ip_range_blacklist": [],
        })
        if appservice:
            registration = self.workdir / "appservice.yaml"
            registration.write_text(yaml.safe_dump({
                "id": "bench", "url": None, "as_token": AS_TOKEN, "hs_token": "bench_hs_token",
                "sender_localpart": "bench_bot", "rate_limited": False,
                "namespaces": {"users": [{"exclusive": True, "regex": "@m_.*"}], "aliases": [], "rooms": []},
            }))
            config["app_service_config_files"] = [str(registration)]
        config_path.write_text(yaml.safe_dump(config))
        log_config = Path(config["log_config"])
        log_config.write_text(log_config.read_text().replace("level: INFO", "level: WARNING"))
        log = open(self.workdir / "server.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([sys.executable, "-m", "synapse.app.homeserver", "--config-path",
                                      str(config_path)], stdout=log, stderr=log, cwd=self.workdir,
                                     env={**os.environ, "SYNAPSE_ASYNC_IO_REACTOR": "0"})

    def stop(self) -> None:
        super().stop()
        self._pg.cleanup()


async def call(http: aiohttp.ClientSession, server: Server, method: str, path: str, token: str | None = None,
               body: Any = None, params: dict[str, str] | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, server.base + "/_matrix/client/v3" + path, json=body, headers=headers,
                            params=params, timeout=aiohttp.ClientTimeout(total=1800)) as resp:
        data = await resp.json(content_type=None)
        if resp.status != 200 and not (resp.status == 401 and path == "/register"):
            raise RuntimeError(f"{method} {path}: {resp.status} {data}")
        return data


async def register(http: aiohttp.ClientSession, server: Server, name: str) -> str:
    first = await call(http, server, "POST", "/register", body={"username": name, "password": "bench password"})
    done = await call(http, server, "POST", "/register", body={
        "username": name, "password": "bench password", "auth": {"type": "m.login.dummy", "session": first["session"]}})
    return done["access_token"]


async def fill_room(http: aiohttp.ClientSession, host: SynapseServer, members: int, messages: int) -> str:
    owner = await register(http, host, "owner")
    room = await call(http, host, "POST", "/createRoom", owner, {"preset": "public_chat", "room_version": "10",
                                                                   "name": "Big room"})
    room_id = room["room_id"]
    semaphore = asyncio.Semaphore(8)

    async def member(i: int) -> None:
        async with semaphore:
            user_id = f"@m_{i}:{host.server_name}"
            await call(http, host, "POST", "/register", AS_TOKEN,
                       {"type": "m.login.application_service", "username": f"m_{i}"})
            await call(http, host, "POST", f"/join/{room_id}", AS_TOKEN, {}, params={"user_id": user_id})

    started = time.monotonic()
    await asyncio.gather(*(member(i) for i in range(members)))
    print(f"  {members} members joined in {time.monotonic() - started:.0f} s", flush=True)
    started = time.monotonic()
    for i in range(messages):
        if i % 50 == 49:
            await call(http, host, "PUT", f"/rooms/{room_id}/state/m.room.topic/", owner, {"topic": f"topic {i}"})
        else:
            await call(http, host, "PUT", f"/rooms/{room_id}/send/m.room.message/h{i}", owner,
                       {"msgtype": "m.text", "body": f"history {i}"})
    print(f"  {messages} history events in {time.monotonic() - started:.0f} s", flush=True)
    return room_id


async def join(http: aiohttp.ClientSession, joiner: Server, host: SynapseServer, room_id: str,
               members: int) -> dict[str, float]:
    token = await register(http, joiner, "joiner")
    assert joiner.proc is not None and joiner.pgdata is not None
    with Peak(joiner.proc.pid, postmaster_pid(joiner.pgdata)) as peak:
        started = time.monotonic()
        await call(http, joiner, "POST", f"/join/{room_id}", token, {}, params={"server_name": host.server_name})
        answered = time.monotonic() - started
        while True:
            found = await call(http, joiner, "GET", f"/rooms/{room_id}/joined_members", token)
            if len(found["joined"]) >= members + 2:
                break
            await asyncio.sleep(0.05)
        full = time.monotonic() - started
    return {"join_answered_s": answered, "full_state_s": full, "peak_server_mb": peak.server_mb,
            "peak_db_mb": peak.db_mb}


async def run(members: int, messages: int, order: str) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-join-") as tmp:
        root = Path(tmp)
        cert, key = make_certificate(root)
        host = SynapseServer(root / "host", cert, key)
        ours = Ours(root / "ours", cert, key)
        second = SynapseServer(root / "synapse", cert, key)
        for server in (host, ours, second):
            server.workdir.mkdir()
        servers: list[Server] = []
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
                host.start(appservice=True)
                servers.append(host)
                ours.start()
                servers.append(ours)
                second.start()
                servers.append(second)
                for server in servers:
                    await server.wait_ready()
                print("filling the room on the host Synapse", flush=True)
                room_id = await fill_room(http, host, members, messages)
                joiners: list[tuple[str, Server]] = [("homeserver", ours), ("synapse", second)]
                if order == "synapse-first":
                    joiners.reverse()
                results = {}
                for name, joiner in joiners:
                    print(f"{name} joins", flush=True)
                    results[name] = await join(http, joiner, host, room_id, members)
                return results
        finally:
            for server in servers:
                server.stop()


ROWS = (
    ("join_answered_s", "/join answered (s)"),
    ("full_state_s", "full room state held (s)"),
    ("peak_server_mb", "peak server RSS during join (MiB)"),
    ("peak_db_mb", "peak database RSS during join (MiB)"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.federation_join", description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--order", choices=["homeserver-first", "synapse-first"], default="synapse-first")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.members, args.messages, args.order))
    print(f"room: {args.members} members, {args.messages} history events; joins in order {args.order}")
    print(f"{'':<36}{'homeserver':>12}{'synapse':>12}   ratio")
    for key, label in ROWS:
        ours, theirs = results["homeserver"][key], results["synapse"][key]
        print(f"{label:<36}{ours:>12.2f}{theirs:>12.2f}   {theirs / ours:.1f}x")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SYNAPSE_ASYNC_IO_REACTOR", "0")
    raise SystemExit(main())
