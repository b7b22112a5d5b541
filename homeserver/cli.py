"""Command line: run the server, generate a config, register a user, migrate.

Every start-up problem (bad config, unreachable database, busy port) is one
line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import re
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

from homeserver import __version__
from homeserver.config import Config, load_config, parse_config
from homeserver.core.ids import is_valid_user_localpart, split_id
from homeserver.errors import StartupError
from homeserver.signing_key_file import write_new_signing_key

EXIT_STARTUP_ERROR = 2


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # pgserver narrates every command it runs at INFO; only its problems matter here.
    logging.getLogger("pgserver").setLevel(logging.WARNING)


def run_async(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run on uvloop when it is installed, else on the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro_fn())  # type: ignore[arg-type]


def example_config_text() -> str:
    return (Path(__file__).resolve().parent / "data" / "config.example.yaml").read_text("utf-8")


def _cmd_run(args: argparse.Namespace, config: Config) -> int:
    from homeserver.server import run

    run_async(lambda: run(config))
    return 0


def _cmd_migrate(args: argparse.Namespace, config: Config) -> int:
    from homeserver.storage.database import Database
    from homeserver.storage.migrations import apply_migrations

    async def migrate() -> list[int]:
        db = await Database.open(config)
        try:
            return await apply_migrations(db.pool)
        finally:
            await db.close()

    applied = run_async(migrate)
    print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
    return 0


def _user_id_for(user: str, server_name: str) -> str:
    if user.startswith("@"):
        localpart, domain = split_id(user, "@")
        if domain != server_name:
            raise StartupError(f"user {user} is not on this server ({server_name})")
    else:
        localpart = user
    if not is_valid_user_localpart(localpart):
        raise StartupError(
            f"user name {localpart!r} is not allowed: use only a-z, 0-9, '.', '_', '=', '-', '/', '+'"
        )
    return f"@{localpart}:{server_name}"


def _cmd_register_user(args: argparse.Namespace, config: Config) -> int:
    from homeserver.services.passwords import hash_password
    from homeserver.storage.database import Database
    from homeserver.storage.users import create_user

    user_id = _user_id_for(args.user, config.server_name)
    password = args.password
    if password is None:
        if not sys.stdin.isatty():
            raise StartupError("no --password given and no terminal to ask for one")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Confirm password: "):
            raise StartupError("the passwords do not match")
    if not password:
        raise StartupError("the password must not be empty")

    async def register() -> bool:
        db = await Database.open(config)
        try:
            from homeserver.storage.migrations import apply_migrations

            await apply_migrations(db.pool)
            hashed = await hash_password(password, config.bcrypt_rounds)
            return await create_user(db.pool, user_id, hashed, args.admin, int(time.time() * 1000))
        finally:
            await db.close()

    if not run_async(register):
        raise StartupError(f"user {user_id} already exists")
    print(f"registered {user_id}" + (" (admin)" if args.admin else ""))
    return 0


def _cmd_generate_config(args: argparse.Namespace) -> int:
    text = example_config_text()
    out: Path | None = args.output
    base = (out.parent if out else Path.cwd()).resolve()
    data_dir = base / "data"
    text = re.sub(r"(?m)^server_name: .*$", f"server_name: {args.server_name}", text)
    text = re.sub(r"(?m)^data_dir: .*$", f"data_dir: {data_dir}", text)
    text = re.sub(
        r"(?m)^registration_shared_secret: .*$",
        f"registration_shared_secret: {secrets.token_urlsafe(32)}",
        text,
    )
    import yaml

    config = parse_config(yaml.safe_load(text))
    if out is not None and out.exists():
        raise StartupError(f"{out} already exists; not overwriting it")
    key_path = config.signing_key_file
    if key_path.exists():
        print(f"keeping the existing signing key {key_path}", file=sys.stderr)
    else:
        write_new_signing_key(key_path)
        print(f"wrote signing key {key_path}", file=sys.stderr)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        out.chmod(0o600)
        print(f"wrote {out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m homeserver",
        description="A Matrix homeserver. Without a command, runs the server.",
    )
    parser.add_argument("--version", action="version", version=f"homeserver {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", type=Path, default=argparse.SUPPRESS, help="YAML config file")
    common.add_argument(
        "--data-dir", type=Path, default=argparse.SUPPRESS, help="data directory (overrides data_dir)"
    )
    parser.add_argument("--config", "-c", type=Path, help="YAML config file (default: built-in defaults)")
    parser.add_argument("--data-dir", type=Path, help="data directory (overrides data_dir)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", parents=[common], help="run the server (the default)")
    gen = sub.add_parser("generate-config", help="write a commented config and a signing key")
    gen.add_argument("--server-name", required=True, help="the server name, e.g. example.com")
    gen.add_argument("--output", "-o", type=Path, help="config file to write (default: stdout)")
    reg = sub.add_parser("register-user", parents=[common], help="create an account")
    reg.add_argument("user", help="localpart or full user id")
    reg.add_argument("--password", "-p", help="password (asked for when omitted)")
    reg.add_argument("--admin", action="store_true", help="make the user a server admin")
    sub.add_parser("migrate", parents=[common], help="apply database migrations and exit")
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace, Config], int]] = {
    "run": _cmd_run,
    "migrate": _cmd_migrate,
    "register-user": _cmd_register_user,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    try:
        if command == "generate-config":
            return _cmd_generate_config(args)
        config = load_config(args.config, args.data_dir)
        setup_logging(config.log_level)
        return COMMANDS[command](args, config)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STARTUP_ERROR
    except KeyboardInterrupt:
        return 130
