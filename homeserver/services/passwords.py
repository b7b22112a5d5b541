"""Password hashing with bcrypt, always off the event loop.

The `$2b$` format is what Synapse stores, so an imported Synapse database's
hashes verify unchanged.
"""

from __future__ import annotations

import asyncio

import bcrypt

DEFAULT_BCRYPT_ROUNDS = 12


def _hash(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def _check(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii"))
    except ValueError:
        return False


async def hash_password(password: str, rounds: int = DEFAULT_BCRYPT_ROUNDS) -> str:
    return await asyncio.get_running_loop().run_in_executor(None, _hash, password, rounds)


async def check_password(password: str, hashed: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, _check, password, hashed)
