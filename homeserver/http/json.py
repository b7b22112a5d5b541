"""JSON request bodies and responses: every parse error is a Matrix error."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from homeserver.errors import bad_json, not_json

# The largest JSON body any endpoint accepts (a full federation transaction of
# 50 PDUs at 64 KiB each, plus EDUs, fits). Media uploads stream with their own limit.
MAX_JSON_BODY = 8 * 1024 * 1024


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object (M_NOT_JSON / M_BAD_JSON / M_TOO_LARGE otherwise)."""
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise not_json() from None
    if not isinstance(body, dict):
        raise bad_json("Content must be a JSON object.")
    return body


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")
