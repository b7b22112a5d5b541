"""Matrix identifier grammars (appendices: server names, user ids, room ids, event ids).

User and room ids are split on the *first* colon only, so server names with
explicit ports (`@alice:localhost:8448`) keep their port.
"""

from __future__ import annotations

import functools
import ipaddress
import re

_PORT = r"(?::[0-9]{1,5})?"
_DNS_NAME = re.compile(r"[A-Za-z0-9\-.]{1,255}" + _PORT + r"\Z")
_IPV4 = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})" + _PORT + r"\Z")
_IPV6 = re.compile(r"\[([0-9A-Fa-f:.]{2,45})\]" + _PORT + r"\Z")
_USER_LOCALPART = re.compile(r"[a-z0-9._=\-/+]+\Z")

MAX_ID_LENGTH = 255


def split_host_port(server_name: str) -> tuple[str, int | None]:
    """Split a server name into host and optional port (IPv6 brackets kept off the host)."""
    if server_name.startswith("["):
        end = server_name.index("]")
        host, rest = server_name[1:end], server_name[end + 1 :]
        return host, int(rest[1:]) if rest else None
    host, sep, port = server_name.rpartition(":")
    if not sep:
        return server_name, None
    return host, int(port)


@functools.lru_cache(maxsize=4096)
def is_valid_server_name(name: str) -> bool:
    """True if `name` matches the spec's server-name grammar (ports up to 65535).

    Cached: the same few thousand server names recur in every event received.
    """
    if not name or len(name) > MAX_ID_LENGTH:
        return False
    m = _IPV6.match(name)
    if m:
        try:
            ipaddress.IPv6Address(m.group(1))
        except ValueError:
            return False
    elif _IPV4.match(name):
        if any(int(part) > 255 for part in _IPV4.match(name).groups()):  # type: ignore[union-attr]
            return False
    elif not _DNS_NAME.match(name):
        return False
    _host, port = split_host_port(name)
    return port is None or port <= 65535


def split_id(identifier: str, sigil: str) -> tuple[str, str]:
    """Split `&localpart:domain` on the first colon; ValueError when malformed."""
    if not identifier.startswith(sigil):
        raise ValueError(f"identifier must start with {sigil!r}")
    localpart, sep, domain = identifier[1:].partition(":")
    if not sep:
        raise ValueError("identifier has no domain")
    return localpart, domain


def is_valid_user_localpart(localpart: str) -> bool:
    """The strict (v1.8+) grammar new accounts must follow."""
    return bool(_USER_LOCALPART.match(localpart))


def is_valid_user_id(user_id: str, *, historical: bool = True) -> bool:
    """Grammar check of a user id; `historical` admits old non-compliant localparts."""
    if not user_id.startswith("@") or len(user_id) > MAX_ID_LENGTH:
        return False
    if not user_id.isascii() and len(user_id.encode("utf-8")) > MAX_ID_LENGTH:
        return False
    localpart, sep, domain = user_id[1:].partition(":")
    if not sep or not is_valid_server_name(domain):
        return False
    if historical:
        return "\x00" not in localpart
    return is_valid_user_localpart(localpart)


def server_of(identifier: str) -> str:
    """The domain of a user, room-with-domain or alias id (first colon split)."""
    return identifier.partition(":")[2]
