"""The server's ed25519 signing key on disk, in Synapse's file format.

One line per key: `ed25519 <key id version> <unpadded base64 seed>`, so a
Synapse key file can be reused and ours can be read by Synapse tools.
"""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

from signedjson.key import generate_signing_key, read_signing_keys, write_signing_keys
from nacl.signing import SigningKey

from homeserver.config_schema import ConfigError

_VERSION_CHARS = string.ascii_letters + string.digits


def new_key_version() -> str:
    """Synapse-style key version: `a_` and four random characters."""
    return "a_" + "".join(secrets.choice(_VERSION_CHARS) for _ in range(4))


def write_new_signing_key(path: Path) -> SigningKey:
    """Generate a key and write it with owner-only permissions; never overwrites."""
    key = generate_signing_key(new_key_version())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as stream:
        write_signing_keys(stream, [key])
    return key


def load_signing_key(path: Path) -> SigningKey:
    """Read the first key of the file; a broken file is a configuration error."""
    try:
        with path.open(encoding="ascii") as stream:
            keys = read_signing_keys(stream)
    except OSError as exc:
        raise ConfigError(f"signing_key_path: cannot read {path}: {exc.strerror}") from None
    except Exception:
        raise ConfigError(
            f"signing_key_path: {path} is not a signing key file "
            "(expected lines of 'ed25519 <version> <base64 seed>')"
        ) from None
    if not keys:
        raise ConfigError(f"signing_key_path: {path} holds no key")
    return keys[0]


def load_or_create_signing_key(path: Path) -> SigningKey:
    """The key at `path`, generated there on first start."""
    if path.exists():
        return load_signing_key(path)
    return write_new_signing_key(path)
