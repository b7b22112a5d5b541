"""Load benchmark: our server beside Synapse (from PyPI), same workload, same machine, one run.

    python -m benchmarks.load [--users 20] [--rooms 10] [--messages 40] [--only homeserver|synapse]

Each server gets its own PostgreSQL (pgserver) and runs as a real process on
loopback. The workload, in order: register users; measure idle memory; join
everyone to the rooms; senders post messages concurrently while syncing users
long-poll (delivery latency from send to sync); one user in 100 rooms does an
initial sync. Reported: messages/s acknowledged, delivery latency p50/p99,
initial sync time, and resident memory of the server and of its database,
with the ratios; and, as the floor under the idle figure, the idle memory of
the bare stack (aiohttp on uvloop with an asyncpg pool, no homeserver code).
Needs `pip install '.[bench]'` (Synapse, psycopg2) for the Synapse side; all
traffic stays on 127.0.0.1 and every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml

GENEROUS = {"per_second": 10000, "burst_count": 10000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int, with_children: bool = False) -> float:
    process = psutil.Process(pid)
    processes = [process, *process.children(recursive=True)] if with_children else [process]
    return sum(p.memory_info().rss for p in processes if p.is_running()) / 2**20


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])


class Server:
    """One homeserver process and its database cluster."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.pgdata: Path | None = None

    async def wait_ready(self, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        # Loopback only: a server with a test certificate is asked without checking it.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: see {self.workdir}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.base + "/_matrix/client/versions") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.5)
        raise RuntimeError(f"{self.name} did not start")

    def memory(self) -> tuple[float, float]:
        """(server RSS, database RSS) in MiB."""
        assert self.proc is not None and self.pgdata is not None
        return rss_mb(self.proc.pid), rss_mb(postmaster_pid(self.pgdata), with_children=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Ours(Server):
    def start(self) -> None:
        config = {
            "server_name": "bench.local",
            "data_dir": str(self.workdir / "data"),
            "log_level": "WARNING",
            "listeners": [{"port": self.port, "resources": ["client", "federation"]}],
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "bcrypt_rounds": 4,
            "rc_login": {"address": GENEROUS, "account": GENEROUS, "failed_attempts": GENEROUS},
            "rc_registration": GENEROUS,
            "rc_message": GENEROUS,
        }
        path = self.workdir / "homeserver.yaml"
        path.write_text(yaml.safe_dump(config))
        log = open(self.workdir / "server.log", "wb")  # noqa: SIM115 - closed with the process
        checkout = str(Path(__file__).resolve().parents[1])  # this checkout, not an older installed copy
        self.proc = subprocess.Popen([sys.executable, "-m", "homeserver", "--config", str(path)],
                                     stdout=log, stderr=log, cwd=self.workdir, env={**os.environ, "PYTHONPATH": checkout})
        self.pgdata = self.workdir / "data" / "postgres"


class OwnPostgres(Server):
    """A server whose PostgreSQL the benchmark starts (ours starts its embedded one itself)."""

    def start_postgres(self) -> Any:
        import pgserver

        self.pgdata = self.workdir / "postgres"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._pg = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        return self._pg

    def stop(self) -> None:
        super().stop()
        self._pg.cleanup()


class Synapse(OwnPostgres):
    def start(self) -> None:
        self.start_postgres()
        self._pg.psql("CREATE DATABASE synapse TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';")
        config_path = self.workdir / "hs.yaml"
        subprocess.run(
            [sys.executable, "-m", "synapse.app.homeserver", "--server-name", "bench.local", "--config-path",
             str(config_path), "--generate-config", "--report-stats=no", "--data-directory", str(self.workdir)],
            check=True, capture_output=True, cwd=self.workdir,
        )
        config = yaml.safe_load(config_path.read_text())
        config.update({
            "listeners": [{"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                           "x_forwarded": True, "resources": [{"names": ["client", "federation"], "compress": False}]}],
            "database": {"name": "psycopg2", "args": {"user": "postgres", "database": "synapse",
                                                     "host": str(self.pgdata), "cp_min": 5, "cp_max": 10}},
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "bcrypt_rounds": 4,
            "rc_message": GENEROUS, "rc_registration": GENEROUS, "rc_joins": {"local": GENEROUS, "remote": GENEROUS},
            "rc_login": {"address": GENEROUS, "account": GENEROUS, "failed_attempts": GENEROUS},
            "rc_invites": {"per_room": GENEROUS, "per_user": GENEROUS, "per_issuer": GENEROUS},
            "rc_joins_per_room": GENEROUS, "rc_room_creation": GENEROUS,
            "suppress_key_server_warning": True,
            "trusted_key_servers": [],
        })
        config_path.write_text(yaml.safe_dump(config))
        log_config = Path(config["log_config"])
        log_config.write_text(log_config.read_text().replace("level: INFO", "level: WARNING"))
        log = open(self.workdir / "server.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([sys.executable, "-m", "synapse.app.homeserver", "--config-path",
                                      str(config_path)], stdout=log, stderr=log, cwd=self.workdir)


# The floor under the idle-memory figure: the stack the server is built on (aiohttp on uvloop
# with an asyncpg pool) answering one route, with none of the homeserver's code.
BARE_STACK_SERVER = """
import asyncio, sys, asyncpg, uvloop
from aiohttp import web

async def main():
    pool = await asyncpg.create_pool(sys.argv[1], min_size=1, max_size=10)

    async def versions(request):
        async with pool.acquire() as conn:
            return web.json_response({"versions": [], "n": await conn.fetchval("SELECT 1")})

    app = web.Application()
    app.router.add_get("/_matrix/client/versions", versions)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[2])).start()
    await asyncio.Event().wait()

uvloop.run(main())
"""


class BareStack(OwnPostgres):
    def start(self) -> None:
        uri = self.start_postgres().get_uri()
        self.proc = subprocess.Popen([sys.executable, "-c", BARE_STACK_SERVER, uri, str(self.port)], cwd=self.workdir)


async def bare_stack_idle_mb() -> float:
    """Idle RSS of the bare stack after the same warm-up as the servers' (a few requests, 2 s)."""
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        server = BareStack("bare stack", Path(tmp))
        server.start()
        try:
            await server.wait_ready()
            async with aiohttp.ClientSession() as http:
                for _ in range(20):
                    async with http.get(server.base + "/_matrix/client/versions") as resp:
                        await resp.read()
            await asyncio.sleep(2)
            return server.memory()[0]
        finally:
            server.stop()


class Client:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def call(self, method: str, path: str, token: str | None = None, body: Any = None,
                   params: dict[str, str] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.base + "/_matrix/client/v3" + path, json=body, headers=headers,
                                     params=params, timeout=aiohttp.ClientTimeout(total=120)) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200 and not (resp.status == 401 and path == "/register"):
                raise RuntimeError(f"{method} {path}: {resp.status} {data}")
            return data

    async def register(self, name: str) -> str:
        first = await self.call("POST", "/register", body={"username": name, "password": "bench password"})
        done = await self.call("POST", "/register", body={"username": name, "password": "bench password",
                                                          "auth": {"type": "m.login.dummy", "session": first["session"]}})
        return done["access_token"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def workload(server: Server, users: int, rooms: int, messages: int) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:
        client = Client(http, server.base)
        tokens = [await client.register(f"user{i}") for i in range(users)]
        await asyncio.sleep(2)
        idle_server, idle_db = server.memory()
        room_ids = [(await client.call("POST", "/createRoom", tokens[0], {"preset": "public_chat"}))["room_id"]
                    for _ in range(rooms)]
        await asyncio.gather(*(client.call("POST", f"/rooms/{room}/join", token, {})
                               for token in tokens[1:] for room in room_ids))
        senders, syncers = tokens[: max(1, users // 2)], tokens[users // 2:]
        latencies: list[float] = []
        expected = len(senders) * messages
        sent_at: dict[str, float] = {}
        stop = asyncio.Event()

        async def sync_loop(token: str) -> None:
            since = (await client.call("GET", "/sync", token, params={"timeout": "0"}))["next_batch"]
            seen = 0
            while not stop.is_set():
                result = await client.call("GET", "/sync", token, params={"since": since, "timeout": "5000"})
                since = result["next_batch"]
                now = time.perf_counter()
                for room in result.get("rooms", {}).get("join", {}).values():
                    for event in room.get("timeline", {}).get("events", []):
                        tag = event.get("content", {}).get("bench")
                        if tag in sent_at:
                            latencies.append((now - sent_at[tag]) * 1000)
                            seen += 1

        async def send_loop(index: int, token: str) -> None:
            for n in range(messages):
                tag = f"{index}-{n}"
                room = room_ids[(index + n) % len(room_ids)]
                sent_at[tag] = time.perf_counter()
                await client.call("PUT", f"/rooms/{room}/send/m.room.message/{tag}", token,
                                  {"msgtype": "m.text", "body": f"message {tag}", "bench": tag})

        sync_tasks = [asyncio.create_task(sync_loop(t)) for t in syncers]
        await asyncio.sleep(1)
        started = time.perf_counter()
        await asyncio.gather(*(send_loop(i, t) for i, t in enumerate(senders)))
        elapsed = time.perf_counter() - started
        await asyncio.sleep(3)
        stop.set()
        await asyncio.gather(*sync_tasks, return_exceptions=True)

        many = await client.register("many")
        for _ in range(100):
            await client.call("POST", "/createRoom", many, {"preset": "private_chat", "name": "room"})
        initial = []
        for _ in range(3):
            began = time.perf_counter()
            await client.call("GET", "/sync", many, params={"timeout": "0"})
            initial.append((time.perf_counter() - began) * 1000)
        loaded_server, loaded_db = server.memory()
    return {
        "messages_per_s": expected / elapsed,
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p99_ms": percentile(latencies, 0.99),
        "deliveries": len(latencies),
        "initial_sync_100_rooms_ms": statistics.median(initial),
        "idle_server_mb": idle_server,
        "idle_db_mb": idle_db,
        "loaded_server_mb": loaded_server,
        "loaded_db_mb": loaded_db,
    }


async def run(kind: str, users: int, rooms: int, messages: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        server: Server = Ours(kind, Path(tmp)) if kind == "homeserver" else Synapse(kind, Path(tmp))
        server.start()
        try:
            await server.wait_ready()
            return await workload(server, users, rooms, messages)
        finally:
            server.stop()


ROWS = (
    ("messages_per_s", "messages/s acknowledged", "higher"),
    ("latency_p50_ms", "send-to-sync latency p50 (ms)", "lower"),
    ("latency_p99_ms", "send-to-sync latency p99 (ms)", "lower"),
    ("initial_sync_100_rooms_ms", "initial sync, 100 rooms (ms)", "lower"),
    ("idle_server_mb", "idle server RSS (MiB)", "lower"),
    ("idle_db_mb", "idle database RSS (MiB)", "lower"),
    ("loaded_server_mb", "server RSS after load (MiB)", "lower"),
    ("loaded_db_mb", "database RSS after load (MiB)", "lower"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--messages", type=int, default=40, help="messages per sender")
    parser.add_argument("--only", choices=["homeserver", "synapse"])
    args = parser.parse_args(argv)
    kinds = [args.only] if args.only else ["homeserver", "synapse"]
    results = {kind: asyncio.run(run(kind, args.users, args.rooms, args.messages)) for kind in kinds}
    bare = asyncio.run(bare_stack_idle_mb())
    print(f"{args.users} users, {args.rooms} rooms, {args.users // 2 or 1} senders x {args.messages} messages")
    print(f"{'':<34}" + "".join(f"{k:>14}" for k in kinds) + ("   ratio" if len(kinds) == 2 else ""))
    for key, label, better in ROWS:
        values = [results[k][key] for k in kinds]
        line = f"{label:<34}" + "".join(f"{v:>14.1f}" for v in values)
        if len(kinds) == 2 and values[0] and values[1]:
            ratio = values[0] / values[1] if better == "higher" else values[1] / values[0]
            line += f"   {ratio:.1f}x"
        print(line)
    print(f"{'idle RSS of the bare stack (MiB)':<34}{bare:>14.1f}   (aiohttp + uvloop + an asyncpg pool, no homeserver code)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SYNAPSE_ASYNC_IO_REACTOR", "0")
    raise SystemExit(main())
