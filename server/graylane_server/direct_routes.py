"""Hot endpoints answered straight from ASGI, ahead of FastAPI's routing.

SDKs poll their config and apps evaluate flags far more often than anything else is
called, and FastAPI's per-request work (scanning the routes, resolving dependencies, its
exception and exit-stack middleware) costs several times what these endpoints do
themselves. An endpoint declared with `DirectRoutes.route` stays an ordinary FastAPI
route: documented in OpenAPI, and answered by FastAPI if a request ever reaches it that
way. `DirectDispatch` calls the same function itself when the method and path match.

Such an endpoint takes only the request and its path parameters (no dependencies) and
returns a `Response`. Everything around it is unchanged: the app's middleware (metrics,
body size limit, UI headers) runs outside the dispatcher, and an exception the app has a
handler for is answered by that handler, as FastAPI's own exception middleware would.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from re import Pattern
from typing import Any, TypeVar

from fastapi import APIRouter
from starlette.convertors import Convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[..., Awaitable[Response]]
"""Called as `endpoint(request=..., **path_params)`."""
E = TypeVar("E", bound=Endpoint)


@dataclass(frozen=True, slots=True)
class DirectRoute:
    method: str
    path: str
    """The template, as FastAPI documents it and as metrics label it (`route.path`)."""
    endpoint: Endpoint
    regex: Pattern[str]
    convertors: dict[str, Convertor[Any]]

    def params(self, path: str) -> dict[str, Any] | None:
        """The path parameters, converted as Starlette would, or None if `path` differs."""
        if not self.convertors:
            return {} if path == self.path else None
        found = self.regex.match(path)
        if found is None:
            return None
        return {
            name: self.convertors[name].convert(value) for name, value in found.groupdict().items()
        }


@dataclass
class DirectRoutes:
    """A table of endpoints that are also served by `DirectDispatch`."""

    routes: list[DirectRoute] = field(default_factory=list)

    def route(
        self, router: APIRouter, method: str, path: str, **documentation: Any
    ) -> Callable[[E], E]:
        """Like `router.get(path, ...)` / `router.post(...)`, and also record the endpoint."""

        def register(endpoint: E) -> E:
            router.add_api_route(path, endpoint, methods=[method], **documentation)
            full = router.prefix + path
            regex, _, convertors = compile_path(full)
            expected = {"request", *convertors}
            taken = set(inspect.signature(endpoint).parameters)
            if taken != expected:
                raise TypeError(
                    f"{endpoint.__qualname__} is served directly, so it takes exactly "
                    f"{sorted(expected)}, not {sorted(taken)}"
                )
            self.routes.append(DirectRoute(method, full, endpoint, regex, convertors))
            return endpoint

        return register


class DirectDispatch:
    """ASGI middleware answering the requests a `DirectRoutes` table matches; everything
    else goes on to the app unchanged. Add it innermost, so the app's own middleware
    (metrics, limits) wraps both paths alike."""

    def __init__(self, app: ASGIApp, tables: Iterable[DirectRoutes]) -> None:
        self.app = app
        self.exact: dict[tuple[str, str], DirectRoute] = {}
        self.templated: list[DirectRoute] = []
        for table in tables:
            for route in table.routes:
                if route.convertors:
                    self.templated.append(route)
                else:
                    self.exact[(route.method, route.path)] = route

    def match(self, method: str, path: str) -> tuple[DirectRoute, dict[str, Any]] | None:
        route = self.exact.get((method, path))
        if route is not None:
            return route, {}
        for route in self.templated:
            if route.method == method and (params := route.params(path)) is not None:
                return route, params
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A root path (not used by Graylane) is left to Starlette's own path handling.
        found = (
            self.match(scope["method"], scope["path"])
            if scope["type"] == "http" and not scope.get("root_path")
            else None
        )
        if found is None:
            await self.app(scope, receive, send)
            return
        route, params = found
        # What Starlette's router would have put in the scope, for metrics and the request.
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = params
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request=request, **params)
        except Exception as exc:
            handler = _handler_for(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            outcome = handler(request, exc)
            response = await outcome if inspect.isawaitable(outcome) else outcome
        await response(scope, receive, send)


Handler = Callable[[Request, Exception], Any]


def _handler_for(handlers: Mapping[Any, Handler], exc: Exception) -> Handler | None:
    """The app's handler for `exc`, as FastAPI's ExceptionMiddleware chooses it: by status
    for HTTP exceptions, then by the nearest class. `Exception` itself is left to the
    outermost error middleware, as in FastAPI."""
    if isinstance(exc, HTTPException) and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
