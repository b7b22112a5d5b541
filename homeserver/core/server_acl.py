"""Server ACLs (`m.room.server_acl`): is a server allowed to take part in a room?

The rules of the event's schema: ports are ignored; an IP literal is denied
when `allow_ip_literals` is false; a `deny` match denies; an `allow` match
allows; anything else is denied. Globs are the spec's (`*` and `?`), case-insensitive.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any

from homeserver.core.ids import split_host_port


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern)
    return re.compile("".join(parts) + r"\Z", re.IGNORECASE | re.DOTALL)


def _patterns(value: Any) -> list[str]:
    return [p for p in value if isinstance(p, str)] if isinstance(value, list) else []


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def server_allowed(content: dict[str, Any], server_name: str) -> bool:
    try:
        host, _port = split_host_port(server_name)
    except ValueError:
        return False
    if content.get("allow_ip_literals", True) is False and _is_ip(host):
        return False
    if any(_glob(p).match(host) for p in _patterns(content.get("deny"))):
        return False
    return any(_glob(p).match(host) for p in _patterns(content.get("allow")))
