"""A real Synapse (from PyPI) on loopback as a federation peer: TLS with our test certificate,
SQLite, open registration, certificate checks off and the loopback range allowed."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path

import aiohttp

SYNAPSE_AVAILABLE = shutil.which("register_new_matrix_user") is not None

CONFIG = """\
server_name: "127.0.0.1:{port}"
pid_file: {dir}/homeserver.pid
listeners:
  - port: {port}
    tls: true
    type: http
    bind_addresses: ['127.0.0.1']
    resources: [{{names: [client, federation], compress: false}}]
tls_certificate_path: {cert}
tls_private_key_path: {key}
database: {{name: sqlite3, args: {{database: {dir}/homeserver.db}}}}
media_store_path: {dir}/media
signing_key_path: {dir}/signing.key
log_config: {dir}/log.yaml
trusted_key_servers: []
suppress_key_server_warning: true
enable_registration: true
enable_registration_without_verification: true
report_stats: false
federation_verify_certificates: false
ip_range_whitelist: ['127.0.0.0/8']
# Synapse checks IP-literal server names against this list alone (its allowlist is not consulted
# there), so the test peer clears it.
federation_ip_range_blacklist: []
federation:
  destination_min_retry_interval: 1s
  destination_max_retry_interval: 3s
rc_message: {{per_second: 1000, burst_count: 1000}}
rc_joins: {{local: {{per_second: 1000, burst_count: 1000}}, remote: {{per_second: 1000, burst_count: 1000}}}}
rc_invites: {{per_room: {{per_second: 1000, burst_count: 1000}}, per_user: {{per_second: 1000, burst_count: 1000}}, per_issuer: {{per_second: 1000, burst_count: 1000}}}}
rc_login: {{address: {{per_second: 1000, burst_count: 1000}}, account: {{per_second: 1000, burst_count: 1000}}, failed_attempts: {{per_second: 1000, burst_count: 1000}}}}
rc_registration: {{per_second: 1000, burst_count: 1000}}
rc_federation: {{window_size: 1000, sleep_limit: 1000, sleep_delay: 1, reject_limit: 1000, concurrent: 100}}
"""

LOG_CONFIG = """\
version: 1
formatters: {{precise: {{format: '%(asctime)s %(name)s %(levelname)s %(message)s'}}}}
handlers: {{file: {{class: logging.FileHandler, formatter: precise, filename: {dir}/homeserver.log}}}}
root: {{level: INFO, handlers: [file]}}
disable_existing_loggers: false
"""


class SynapsePeer:
    def __init__(self, directory: Path, port: int, cert: Path, key: Path) -> None:
        self.directory = directory
        self.port = port
        self.server_name = f"127.0.0.1:{port}"
        self.base_url = f"https://127.0.0.1:{port}"
        self.cert = cert
        self.key = key
        self.process: asyncio.subprocess.Process | None = None

    @property
    def config_path(self) -> Path:
        return self.directory / "homeserver.yaml"

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(CONFIG.format(port=self.port, dir=self.directory, cert=self.cert, key=self.key))
        (self.directory / "log.yaml").write_text(LOG_CONFIG.format(dir=self.directory))
        if not (self.directory / "signing.key").exists():
            generate = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path), "--generate-keys",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            assert await generate.wait() == 0
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "SYNAPSE_ASYNC_IO_REACTOR": "0"},
        )
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
            for _ in range(240):
                if self.process.returncode is not None:
                    raise RuntimeError(f"Synapse exited; see {self.directory}/homeserver.log")
                try:
                    async with http.get(self.base_url + "/_matrix/client/versions") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.25)
        raise RuntimeError("Synapse did not start within 60 s")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.process = None

    def log(self) -> str:
        path = self.directory / "homeserver.log"
        return path.read_text(errors="replace") if path.exists() else ""
