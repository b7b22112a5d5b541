"""The one exception type that becomes a Matrix JSON error response.

Raised anywhere below the HTTP layer; a single middleware turns it into
`{"errcode": ..., "error": ...}` with the right status.
"""

from __future__ import annotations

from typing import Any


class StartupError(Exception):
    """A problem that stops start-up; reported as one line, without a traceback."""


class MatrixError(Exception):
    """An error the client sees as `{"errcode", "error"}` plus optional extra fields."""

    def __init__(self, status: int, errcode: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.message, **self.extra}


class InteractiveAuthRequired(MatrixError):
    """401 of user-interactive auth: the flows and progress, and the failed stage's error if any."""

    def __init__(self, body: dict[str, Any], failure: MatrixError | None) -> None:
        super().__init__(401, failure.errcode if failure else "M_FORBIDDEN",
                         failure.message if failure else "User-interactive authentication required")
        self.body = body
        self.failure = failure

    def to_json(self) -> dict[str, Any]:
        if self.failure is None:
            return dict(self.body)
        return {**self.body, "errcode": self.failure.errcode, "error": self.failure.message}


def not_json(message: str = "Content not JSON.") -> MatrixError:
    return MatrixError(400, "M_NOT_JSON", message)


def bad_json(message: str) -> MatrixError:
    return MatrixError(400, "M_BAD_JSON", message)


def missing_param(message: str) -> MatrixError:
    return MatrixError(400, "M_MISSING_PARAM", message)


def invalid_param(message: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", message)


def forbidden(message: str) -> MatrixError:
    return MatrixError(403, "M_FORBIDDEN", message)


def not_found(message: str = "Not found") -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", message)


def unrecognized(status: int = 404, message: str = "Unrecognized request") -> MatrixError:
    return MatrixError(status, "M_UNRECOGNIZED", message)


def too_large(message: str = "Request too large") -> MatrixError:
    return MatrixError(413, "M_TOO_LARGE", message)
