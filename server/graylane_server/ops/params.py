"""Path and query parameters of the JSON API, checked for text before routing.

A parameter is percent-decoded by the server: `%00` becomes NUL, which PostgreSQL cannot
store, and bytes that are not UTF-8 (`%FF`, `%ED%A0%80`) become U+FFFD replacement
characters in `scope["path"]` and the query, so the endpoint would look up a key nobody
sent. `TextParams` decodes the raw path and query itself and refuses such a parameter on
`/api/` and `/ofrep/` with the answer of the body checks (`ops.bodies.refuse`), naming it
as `path.<name>` (or `path` when no route takes it) or `query.<name>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from re import Pattern
from urllib.parse import unquote, unquote_to_bytes

from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from graylane.core import Problem
from graylane.core.limits import is_valid_text, path_key
from graylane_server.ops.bodies import refuse

CHECKED_PREFIXES = ("/api/", "/ofrep/")
_NUL = "holds a NUL character"
_NOT_UTF8 = "is not valid UTF-8 once percent-decoded"
_PLACEHOLDER = "907381{:04d}"
"""Stands in for the bad path segment at an index while finding the route parameter that
takes it: digits, so an `int` parameter takes it as well as a `str` one."""


def text_problem(raw: bytes) -> str | None:
    """Why a percent-encoded parameter is no text Graylane can take, or None."""
    decoded = unquote_to_bytes(raw)
    if b"\x00" in decoded:
        return _NUL
    # Bytes that are not UTF-8 decode to lone surrogates, which are no valid text.
    return None if is_valid_text(decoded.decode("utf-8", "surrogateescape")) else _NOT_UTF8


def _plain(raw: bytes) -> bool:
    """No escapes and nothing but ASCII: nothing to check (the common case)."""
    return raw.isascii() and b"%" not in raw


def query_problems(query: bytes) -> list[Problem]:
    problems: list[Problem] = []
    if _plain(query):
        return problems
    for pair in query.split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        raw_name, raw_value = raw_name.replace(b"+", b" "), raw_value.replace(b"+", b" ")
        name = path_key(unquote_to_bytes(raw_name).decode("utf-8", "surrogateescape"))
        for part, suffix in ((raw_name, " (the name)"), (raw_value, "")):
            if (message := text_problem(part)) is not None:
                problems.append(Problem(f"query.{name}", message + suffix))
                break
    return problems


Template = tuple[Pattern[str], tuple[str, ...]]
"""A documented path's pattern and the names of its parameters."""


def path_problems(scope: Scope, templates: Callable[[], list[Template]]) -> list[Problem]:
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    if _plain(raw_path):
        return []
    segments = raw_path.split(b"/")
    bad = {i: message for i, s in enumerate(segments) if (message := text_problem(s))}
    if not bad:
        return []
    substitute = "/".join(
        _PLACEHOLDER.format(i) if i in bad else unquote(s.decode("ascii", "replace"))
        for i, s in enumerate(segments)
    )
    names = _parameters_taking(templates(), substitute, bad)
    return [Problem(f"path.{names[i]}" if i in names else "path", bad[i]) for i in sorted(bad)]


def _parameters_taking(templates: list[Template], path: str, bad: Iterable[int]) -> dict[int, str]:
    """Which parameter of the first documented path that `path` matches takes each
    stand-in segment."""
    for pattern, _ in templates:
        if (found := pattern.match(path)) is not None:
            taken = found.groupdict()
            return {
                i: name
                for i in bad
                for name, value in taken.items()
                if _PLACEHOLDER.format(i) in value
            }
    return {}


def documented_templates(app: object) -> list[Template]:
    """The app's documented paths, the most literal first (`/flags/{key}/usage` before
    `/flags/{key}/{anything}`), read from its OpenAPI document."""
    openapi = getattr(app, "openapi", None)
    paths: dict[str, object] = openapi()["paths"] if callable(openapi) else {}
    templates = [_template(path) for path in paths]
    return sorted(templates, key=lambda template: len(template[1]))


def _template(path: str) -> Template:
    pattern, _, convertors = compile_path(path)
    return pattern, tuple(convertors)


class TextParams:
    """ASGI middleware: refuse a request to the JSON API whose path or query parameters
    percent-decode to NUL or to bytes that are not UTF-8; pass every other request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: list[Template] | None = None

    def templates(self, scope: Scope) -> list[Template]:
        # Built on the first refusal only: naming a parameter is no work for the hot path.
        if self._templates is None:
            self._templates = documented_templates(scope.get("app"))
        return self._templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(CHECKED_PREFIXES):
            problems = path_problems(scope, lambda: self.templates(scope))
            problems += query_problems(scope.get("query_string", b""))
            if problems:
                await refuse(scope, send, problems, ofrep_code="GENERAL")
                return
        await self.app(scope, receive, send)
