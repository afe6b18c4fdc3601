"""OFREP's error shapes, for every error answered under `/ofrep/`.

OFREP providers read `errorCode` and `errorDetails`, not the `{"error": ...}` shape of the
rest of the API, so whichever layer answers (the endpoint, the body checks, the size limit,
the handler of unexpected failures), an error on an OFREP path is written in OFREP's words;
only refused credentials (401, 403, 429), for which OFREP defines no body, keep the API's.
"""

from __future__ import annotations

from typing import Any

PREFIX = "/ofrep/"
SINGLE_PREFIX = "/ofrep/v1/evaluate/flags/"


AUTH_STATUSES = frozenset({401, 403, 429})
"""OFREP gives these no body: they keep the API's shape, the same on every route."""


def is_ofrep(path: str) -> bool:
    return path.startswith(PREFIX)


def answers_in_ofrep_shape(path: str, status: int) -> bool:
    """Whether an error with this status on this path is written in OFREP's shape."""
    return path.startswith(PREFIX) and status not in AUTH_STATUSES


def flag_key(path: str) -> str | None:
    """The flag key of a single-flag evaluation path, else None."""
    if path.startswith(SINGLE_PREFIX):
        key = path[len(SINGLE_PREFIX) :]
        return key if key and "/" not in key else None
    return None


def failure(key: str | None, code: str, details: str) -> dict[str, Any]:
    """`evaluationFailure` (with the flag's key) or `bulkEvaluationFailure` (without)."""
    out: dict[str, Any] = {"errorCode": code, "errorDetails": details}
    return out if key is None else {"key": key, **out}


def error_body(path: str, status: int, details: str, code: str = "GENERAL") -> dict[str, Any]:
    """The body of an error answered on an OFREP `path`: `generalErrorResponse` for a
    server error, otherwise a failure naming the flag when the path names one."""
    if status >= 500:
        return {"errorDetails": details}
    return failure(flag_key(path), code, details)
