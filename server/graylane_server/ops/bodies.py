"""Every JSON request body, checked once against the edge limits before any endpoint runs.

JSON allows values Graylane could not store, hash, export or log later: a lone UTF-16
surrogate (`"\\ud800"`), NUL, NaN, integers of thousands of digits, nesting thousands of
levels deep. `JsonBodies` reads each body that is not a form, parses it, and refuses it
with every offending path (`graylane.core.limits`) before FastAPI's routing or a direct
route sees it: one door for the admin API, OFREP, SDK metrics and anything added later.
A body that passes is handed on unchanged, its parsed value kept in the scope so the
direct routes need not parse it again.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graylane.core import Problem
from graylane.core.limits import MAX_DEPTH, MAX_INT, json_problems
from graylane_server.errors import InvalidDocument
from graylane_server.evaluation import failures

PARSED = "graylane.json_body"
"""Scope key of a checked body's parsed value."""
_FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})
_LONGEST_INTEGER = 20
"""Digits (with a sign) of the longest signed 64-bit integer: anything longer is out of
range, so it is never converted (Python refuses integers past 4,300 digits anyway)."""
_OUT_OF_RANGE = MAX_INT + 1


def _integer(text: str) -> int:
    return int(text) if len(text) <= _LONGEST_INTEGER else _OUT_OF_RANGE


_DECODER = json.JSONDecoder(parse_int=_integer)
"""One decoder for every body: `json.loads` with a hook builds a new one per call."""


def parse(raw: bytes) -> tuple[Any, list[Problem]] | None:
    """The body's value and every way it breaks the edge limits, or None when it is not
    JSON at all (the endpoint answers that in its own words)."""
    try:
        value = _DECODER.decode(raw.decode(json.detect_encoding(raw)))
    except RecursionError:
        return None, [Problem("", f"nests deeper than {MAX_DEPTH} levels")]
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        return None
    return value, json_problems(value)


def describe(problems: list[Problem]) -> str:
    return "; ".join(f"{p.path or 'the body'} {p.message}" for p in problems)


class JsonBodies:
    """ASGI middleware: refuse a JSON body that breaks the edge limits (422 with its
    problems; on OFREP paths a 400 in OFREP's shape), pass every other request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODILESS or _is_form(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left, or the size limit already answered
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        parsed = parse(raw) if raw.strip() else None
        if parsed is not None:
            value, problems = parsed
            if problems:
                await refuse(scope, send, problems)
                return
            scope[PARSED] = value
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _is_form(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value).lower().startswith(_FORMS)
    return False


async def refuse(
    scope: Scope, send: Send, problems: list[Problem], *, ofrep_code: str = "INVALID_CONTEXT"
) -> None:
    """Answer 422 with the problems; on OFREP paths a 400 in OFREP's shape with
    `ofrep_code` (for a body, INVALID_CONTEXT: an OFREP body is `{"context": ...}`)."""
    path = scope["path"]
    if failures.is_ofrep(path):
        status, body = 400, failures.error_body(path, 400, describe(problems), ofrep_code)
    else:
        error = InvalidDocument(problems)
        status, body = error.status, error.body().model_dump(exclude_none=True)
    encoded = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(encoded)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": encoded})
