"""The `X-Matrix` request authentication scheme (server-server API, Request Authentication).

Pure: building the signed header for an outbound request, parsing an inbound
header (RFC 9110 auth-params, quoted or bare values, backslash escapes, colons
allowed in bare values) and the JSON object both sides sign.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nacl.signing import SigningKey

from homeserver.core.signing import key_id_of, sign_json


class XMatrixError(ValueError):
    """The Authorization header is missing, malformed or not X-Matrix."""


@dataclass(frozen=True, slots=True)
class XMatrixAuth:
    origin: str
    destination: str | None
    key: str
    sig: str


def request_json(method: str, uri: str, origin: str, destination: str, content: Any = None) -> dict[str, Any]:
    """The object whose signature authenticates a request (`content` only when there is a body)."""
    obj: dict[str, Any] = {"method": method, "uri": uri, "origin": origin, "destination": destination}
    if content is not None:
        obj["content"] = content
    return obj


def authorization_header(
    method: str, uri: str, origin: str, destination: str, key: SigningKey, content: Any = None
) -> str:
    signed = sign_json(request_json(method, uri, origin, destination, content), origin, key)
    key_id = key_id_of(key)
    sig = signed["signatures"][origin][key_id]
    return f'X-Matrix origin="{origin}",destination="{destination}",key="{key_id}",sig="{sig}"'


_PARAM = re.compile(r'[ \t]*([A-Za-z0-9_-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^,\s"]*))[ \t]*(?:,|$)')


def parse_authorization(header: str) -> XMatrixAuth:
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "x-matrix":
        raise XMatrixError("not an X-Matrix Authorization header")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            raise XMatrixError("malformed X-Matrix parameters")
        quoted, bare = match.group(2), match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        pos = match.end()
    for name in ("origin", "key", "sig"):
        if not params.get(name):
            raise XMatrixError(f"X-Matrix header has no {name}")
    return XMatrixAuth(params["origin"], params.get("destination"), params["key"], params["sig"])
