"""The FastAPI application factory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from graylane.core import Problem
from graylane_server import __version__
from graylane_server.audit.endpoints import router as audit_router
from graylane_server.direct_routes import DirectDispatch
from graylane_server.environments.endpoints import router as environments_router
from graylane_server.errors import (
    BadRequest,
    Conflict,
    GraylaneError,
    InvalidDocument,
    Unavailable,
)
from graylane_server.evaluation import failures
from graylane_server.evaluation.endpoints import router as evaluate_router
from graylane_server.evaluation.ofrep import direct as ofrep_direct
from graylane_server.evaluation.ofrep import router as ofrep_router
from graylane_server.flags.endpoints import router as flags_router
from graylane_server.logging import configure as configure_logging
from graylane_server.ops.bodies import JsonBodies
from graylane_server.ops.encoding import SafeJSONResponse
from graylane_server.ops.endpoints import router as ops_router
from graylane_server.ops.limits import BodySizeLimit
from graylane_server.ops.metrics import MetricsMiddleware
from graylane_server.ops.params import TextParams
from graylane_server.ramps.endpoints import router as ramps_router
from graylane_server.runtime import Runtime
from graylane_server.sdk.endpoints import direct as sdk_direct
from graylane_server.sdk.endpoints import router as sdk_router
from graylane_server.segments.endpoints import router as segments_router
from graylane_server.settings import Settings
from graylane_server.state.endpoints import router as state_router
from graylane_server.tokens.endpoints import router as tokens_router
from graylane_server.ui import mount as mount_admin_ui
from graylane_server.usage.endpoints import direct as usage_direct
from graylane_server.usage.endpoints import router as usage_router
from graylane_server.users.endpoints import router as users_router
from graylane_server.webhooks.endpoints import router as webhooks_router

log = structlog.get_logger(__name__)

DESCRIPTION = """Feature flags and gray releases.

Admin endpoints take an admin token (`Authorization: Bearer gla_...`) whose role decides
what it may do: `viewer` reads, `editor` changes flags and segments, `release_manager`
also drives ramps and kill switches, `admin` also manages tokens, users and environments.
SDK endpoints and OFREP take an SDK token (`gls_...`, or `X-API-Key`), bound to one
environment.

Writes to an existing flag or segment carry its version in `If-Match`; a stale version
is refused and nothing changes. Every error answers `{"error": {"code", "message"}}`,
with `problems` listing each invalid path for 422.
"""


def _loc_path(loc: tuple[int | str, ...]) -> str:
    """`("body", "rules", 0)` -> `rules[0]`; a parameter keeps where it was sent, as the
    edge checks name it: `("query", "since")` -> `query.since`."""
    path = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route of the app answers on this request's path (a 405's
    `Allow`): Starlette names only those of the first route that matched the path."""
    return [
        method
        for method in METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL
            for route in app.router.routes
        )
    ]


def error_response(request: Request, error: GraylaneError) -> JSONResponse:
    """The one rendering of a domain error: OFREP's shape on OFREP paths."""
    path = request.url.path
    body = (
        failures.error_body(path, error.status, error.message)
        if failures.answers_in_ofrep_shape(path, error.status)
        else error.body().model_dump(exclude_none=True)
    )
    return JSONResponse(body, status_code=error.status, headers=error.headers)


DOCS_ASSETS = "/docs/assets"
"""Where the API docs pages load their scripts and styles from."""
REDIS_RETRY_AFTER = 10
"""Seconds an SDK waits before sending counts again while Redis is away."""


class OutageLog:
    """Logs a failing dependency once per outage: the first failure, then again only once
    `quiet` seconds have passed without one (the outage ended, and this is a new one)."""

    def __init__(self, event: str, quiet: float = 60.0) -> None:
        self.event = event
        self.quiet = quiet
        self._last: float | None = None

    def failed(self, exc: Exception) -> None:
        now = time.monotonic()
        new_outage = self._last is None or now - self._last > self.quiet
        self._last = now
        if new_outage:
            log.warning(self.event, error=f"{type(exc).__name__}: {exc}")


def install_error_handlers(app: FastAPI) -> None:
    render = error_response

    @app.exception_handler(GraylaneError)
    async def _domain(request: Request, exc: GraylaneError) -> JSONResponse:
        return render(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Routing errors (no such path, method not allowed) and bodies FastAPI cannot
        # parse, in the same shape as ours.
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
        message = {
            404: f"no endpoint {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        path = request.url.path
        body = (
            failures.error_body(path, exc.status_code, message)
            if failures.answers_in_ofrep_shape(path, exc.status_code)
            else {"error": {"code": codes.get(exc.status_code, "http_error"), "message": message}}
        )
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            Problem(_loc_path(tuple(e.get("loc", ()))), str(e.get("msg", "invalid")))
            for e in exc.errors()
        ]
        return render(request, InvalidDocument(problems))

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return render(
            request, Conflict("changed by someone else at the same moment; read it and retry")
        )

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # A value the database refuses (a NUL character, a number out of range): the
        # request's fault, and nothing was changed.
        return render(request, BadRequest("the request carries a value that cannot be stored"))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        return render(request, Conflict("conflicts with a concurrent change; read it and retry"))

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database.unavailable", error=str(exc.orig))
        return render(
            request, Unavailable("the database is unreachable; nothing was changed, retry later")
        )

    redis_outage = OutageLog("redis.unavailable")

    @app.exception_handler(redis.RedisError)
    async def _redis_down(request: Request, exc: redis.RedisError) -> JSONResponse:
        # Redis holds only counts and fan-out: an SDK keeps its counts and sends them again
        # after `Retry-After`. One log line per outage, not one per report.
        redis_outage.failed(exc)
        return render(
            request,
            Unavailable(
                "Redis is unreachable, so counts cannot be stored now; nothing was stored, "
                "send them again later",
                headers={"Retry-After": str(REDIS_RETRY_AFTER)},
            ),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request.failed", method=request.method, path=request.url.path)
        message = "an unexpected error occurred"
        body = (
            failures.error_body(request.url.path, 500, message)
            if failures.is_ofrep(request.url.path)
            else {"error": {"code": "internal_error", "message": message}}
        )
        return JSONResponse(body, status_code=500)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    runtime = Runtime.create(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # /docs and /redoc load Swagger UI and ReDoc from assets the server ships, not from a
    # CDN, so they work offline and behind strict egress rules.
    app = FastAPIOffline(
        title="Graylane",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        default_response_class=SafeJSONResponse,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    for router in (
        ops_router,
        flags_router,
        segments_router,
        environments_router,
        state_router,
        tokens_router,
        audit_router,
        evaluate_router,
        sdk_router,
        ofrep_router,
        usage_router,
        users_router,
        ramps_router,
        webhooks_router,
    ):
        app.include_router(router)
    # Added first, so innermost: every middleware added after it wraps these routes too.
    app.add_middleware(DirectDispatch, tables=(sdk_direct, ofrep_direct, usage_direct))
    app.add_middleware(JsonBodies)  # ahead of the direct routes and FastAPI's alike
    app.add_middleware(TextParams)  # before a body is read
    mount_admin_ui(app, settings)  # /ui/ pages, /ui/static, and / redirecting to /ui/
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics, access_log=settings.access_log)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
