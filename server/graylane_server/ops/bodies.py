"""Every JSON request body, checked once against the edge limits before any endpoint runs.

JSON allows values Graylane could not store, hash, export or log later: a lone UTF-16
surrogate (`"\\ud800"`), NUL, NaN, integers of thousands of digits, nesting thousands of
levels deep. `JsonBodies` reads each body, parses it, and refuses it with every offending
path (`graylane.core.limits`) before FastAPI's routing or a direct route sees it: one door
for the admin API, OFREP, SDK metrics and anything added later. A body that passes is
handed on unchanged, its parsed value kept in the scope so the direct routes need not
parse it again.

Forms are left to the admin UI, except on `/api/` and `/ofrep/`, where no endpoint takes
a form and a body is JSON whatever its Content-Type says: `curl -d` declares
`application/x-www-form-urlencoded`. There a body that parses as JSON is declared
`application/json` on its way in, so every endpoint reads it as the JSON it was checked as.
A body that is not UTF-8 is refused: its bad bytes are named where they sit in a string.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graylane.core import Problem
from graylane.core.limits import MAX_DEPTH, MAX_INT, json_problems, text_problem
from graylane_server.errors import InvalidDocument
from graylane_server.evaluation import failures

PARSED = "graylane.json_body"
"""Scope key of a checked body's parsed value."""
_FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")
JSON_ONLY_PREFIXES = ("/api/", "/ofrep/")
"""Where every body is JSON, whatever its declared Content-Type."""
_JSON = b"application/json"
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})
_LONGEST_INTEGER = 20
"""Digits (with a sign) of the longest signed 64-bit integer: anything longer is out of
range, so it is never converted (Python refuses integers past 4,300 digits anyway)."""
_OUT_OF_RANGE = MAX_INT + 1


def _integer(text: str) -> int:
    return int(text) if len(text) <= _LONGEST_INTEGER else _OUT_OF_RANGE


_DECODER = json.JSONDecoder(parse_int=_integer)
"""One decoder for every body: `json.loads` with a hook builds a new one per call."""


_NOT_UNICODE = text_problem("\ud800")
NOT_UTF8 = "is not valid UTF-8"


def parse(raw: bytes) -> tuple[Any, list[Problem]] | None:
    """The body's value and every way it breaks the edge limits, or None when it is
    valid text but not JSON at all (the endpoint answers that in its own words)."""
    encoding = json.detect_encoding(raw)
    utf8 = encoding.startswith("utf-8")
    try:
        text = raw.decode(encoding)
        valid = True
    except UnicodeDecodeError:
        if not utf8:
            return None, [Problem("", f"is not valid {encoding.upper()}")]
        # Each byte that is not UTF-8 becomes a lone surrogate, which the limits find
        # and name by path when it sits in a string or a key.
        text, valid = raw.decode(encoding, "surrogateescape"), False
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        return None, [Problem("", f"nests deeper than {MAX_DEPTH} levels")]
    except ValueError:  # JSONDecodeError is a ValueError
        return None if valid else (None, [Problem("", NOT_UTF8)])
    problems = json_problems(value)
    return value, problems if valid else [_as_bad_bytes(p) for p in problems]


def _as_bad_bytes(problem: Problem) -> Problem:
    """In a body that is not UTF-8, a string that is not valid Unicode holds its bad bytes."""
    if problem.message == _NOT_UNICODE:
        return Problem(problem.path, NOT_UTF8)
    if problem.message == f"key {_NOT_UNICODE}":
        return Problem(problem.path, f"key {NOT_UTF8}")
    return problem


def describe(problems: list[Problem]) -> str:
    return "; ".join(f"{p.path or 'the body'} {p.message}" for p in problems)


class JsonBodies:
    """ASGI middleware: refuse a JSON body that breaks the edge limits (422 with its
    problems; on OFREP paths a 400 in OFREP's shape), pass every other request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODILESS:
            await self.app(scope, receive, send)
            return
        json_only = scope["path"].startswith(JSON_ONLY_PREFIXES)
        declared = _content_type(scope)
        if not json_only and declared.startswith(_FORMS):
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
            if json_only and not declared.startswith(_JSON):
                _declare_json(scope)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _content_type(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value).lower()
    return b""


def _declare_json(scope: Scope) -> None:
    headers = [(n, v) for n, v in scope["headers"] if n != b"content-type"]
    scope["headers"] = [*headers, (b"content-type", _JSON)]


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
