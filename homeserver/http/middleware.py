"""The middlewares every listener runs, outermost first.

1. `forwarded`: with `x_forwarded`, take the client address and scheme from nginx.
2. `access_log`: one structured line per request, access tokens redacted.
3. `cors`: the spec's CORS headers on every response; OPTIONS preflight answered here.
4. `errors`: the only place that turns exceptions into Matrix JSON errors.
"""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

from aiohttp import web

from homeserver.errors import MatrixError
from homeserver.http.json import json_response
from homeserver.http.keys import CLIENT_IP, USER_ID

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

access_logger = logging.getLogger("homeserver.access")
logger = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
}

_SECRET_QUERY_PARAMS = frozenset({"access_token", "password", "login_token", "token"})


def make_forwarded_middleware(trust_x_forwarded: bool):  # noqa: ANN201 - aiohttp middleware
    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        remote = request.remote or "-"
        if trust_x_forwarded:
            forwarded_for = request.headers.get("X-Forwarded-For")
            proto = request.headers.get("X-Forwarded-Proto")
            if forwarded_for:
                remote = forwarded_for.split(",")[0].strip()
            if forwarded_for or proto:
                request = request.clone(
                    remote=remote, scheme=proto if proto in ("http", "https") else request.scheme
                )
        request[CLIENT_IP] = remote
        return await handler(request)

    return forwarded


def loggable_path(request: web.Request) -> str:
    """The path and query with secrets (access tokens) replaced by `<redacted>`."""
    if not request.query_string:
        return request.path
    parts = []
    for key, value in request.query.items():
        shown = "<redacted>" if key in _SECRET_QUERY_PARAMS else value
        parts.append(f"{key}={shown}")
    return request.path + "?" + "&".join(parts)


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        access_logger.info(
            "ip=%s method=%s path=%s status=%d ms=%.1f user=%s",
            request.get(CLIENT_IP, request.remote),
            request.method,
            loggable_path(request),
            status,
            (time.perf_counter() - start) * 1000,
            request.get(USER_ID, "-"),
        )


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=204)
    else:
        response = await handler(request)
    response.headers.update(CORS_HEADERS)
    return response


def error_response(exc: MatrixError) -> web.Response:
    return json_response(exc.to_json(), status=exc.status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except MatrixError as exc:
        return error_response(exc)
    except web.HTTPRequestEntityTooLarge:
        return error_response(MatrixError(413, "M_TOO_LARGE", "Request body too large"))
    except web.HTTPNotFound:
        return error_response(MatrixError(404, "M_UNRECOGNIZED", "Unrecognized request"))
    except web.HTTPMethodNotAllowed:
        return error_response(MatrixError(405, "M_UNRECOGNIZED", "Unrecognized request"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(MatrixError(exc.status, "M_UNKNOWN", exc.reason))
    except Exception:
        logger.exception("request %s %s failed", request.method, request.path)
        return error_response(MatrixError(500, "M_UNKNOWN", "Internal server error"))
