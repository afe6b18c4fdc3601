"""Domain errors: each has an HTTP status and a machine-readable code, and one handler
renders them all as `{"error": {"code", "message", "problems"?}}`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel

from graylane.core import Problem


class ProblemOut(BaseModel):
    path: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    problems: list[ProblemOut] | None = None


class ErrorBody(BaseModel):
    """Every error response has this shape."""

    error: ErrorDetail


class GraylaneError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self) -> ErrorBody:
        return ErrorBody(error=ErrorDetail(code=self.code, message=self.message))


class BadRequest(GraylaneError):
    """The request is malformed: a body or header that cannot be parsed, or a value that
    cannot be stored (such as a NUL character)."""

    status = 400
    code = "bad_request"


class Unauthorized(GraylaneError):
    """No credentials, or an unknown or revoked token."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="graylane"'})


class Forbidden(GraylaneError):
    """The token or user may not do this."""

    status = 403
    code = "forbidden"


class NotFound(GraylaneError):
    """No such resource."""

    status = 404
    code = "not_found"


class Conflict(GraylaneError):
    """The change conflicts with the current state."""

    status = 409
    code = "conflict"


class PreconditionFailed(GraylaneError):
    """`If-Match` names a version that is no longer current; nothing changed."""

    status = 412
    code = "version_mismatch"


class PayloadTooLarge(GraylaneError):
    """The request body is larger than the server accepts."""

    status = 413
    code = "payload_too_large"


class InvalidDocument(GraylaneError):
    """The request (body, path or query) is invalid; `problems` lists every problem with
    its path. Nothing changed."""

    status = 422
    code = "invalid"

    def __init__(self, problems: Sequence[Problem], message: str | None = None) -> None:
        count = len(problems)
        super().__init__(message or f"{count} problem{'s' if count != 1 else ''} in the request")
        self.problems = tuple(problems)

    def body(self) -> ErrorBody:
        problems = [ProblemOut(path=p.path, message=p.message) for p in self.problems]
        return ErrorBody(error=ErrorDetail(code=self.code, message=self.message, problems=problems))


class PreconditionRequired(GraylaneError):
    """The resource exists: send its version in `If-Match` to replace it."""

    status = 428
    code = "version_required"


class TooManyRequests(GraylaneError):
    """Too many attempts (failed authentications from one address, or tokens minted by one
    caller); retry after `Retry-After` seconds."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


class Unavailable(GraylaneError):
    """A dependency (usually the database) is unreachable; nothing changed."""

    status = 503
    code = "unavailable"


ANY_ENDPOINT: tuple[type[GraylaneError], ...] = (
    BadRequest,  # unparseable input, or a value the database cannot store
    Unauthorized,
    Forbidden,
    PayloadTooLarge,  # the body size limit applies to every request
    InvalidDocument,  # path, query and body are validated, in the same error shape
    TooManyRequests,  # repeated failed authentication from one address
)


def responses(*errors: type[GraylaneError]) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses=` for the errors an endpoint can answer with, besides those any
    authenticated endpoint can (`ANY_ENDPOINT`)."""
    documented: tuple[type[GraylaneError], ...] = (*ANY_ENDPOINT, *errors)
    return {e.status: {"model": ErrorBody, "description": e.__doc__ or e.code} for e in documented}
