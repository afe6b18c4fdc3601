"""Errors of the admin UI, and HTML renderings of every error on UI pages.

The REST API answers errors as JSON; a person in a browser gets a page instead. The API's
handlers stay as they are: for `/ui/` pages (not `/ui/api/`, which scripts poll) the UI
renders its own page, for everything else the API's handler answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from graylane_server.errors import GraylaneError, InvalidDocument
from graylane_server.ui.security import harden

log = structlog.get_logger(__name__)

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


class UiError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LoginRequired(UiError):
    """No session, or an expired one: a page sends the person to sign in."""

    status = 401
    code = "login_required"


class CsrfRejected(UiError):
    status = 403
    code = "csrf_rejected"


def is_page(request: Request) -> bool:
    """UI pages answer errors in HTML; the UI's JSON endpoints and everything else in JSON."""
    path = request.url.path
    return (path == "/ui" or path.startswith("/ui/")) and not path.startswith(
        ("/ui/api/", "/ui/static/")
    )


TITLES = {
    400: "That request was not understood",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "That conflicts with the current state",
    412: "Changed since you looked",
    413: "Too large",
    422: "Something in the request is invalid",
    428: "A version is needed",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}


def error_page(
    request: Request, status: int, message: str, problems: list[Any] | None = None
) -> Response:
    ui = request.app.state.ui
    body = ui.templates.render(
        "error.html",
        request=request,
        status=status,
        title=TITLES.get(status, "Something went wrong"),
        message=message,
        problems=problems or [],
    )
    return HTMLResponse(body, status_code=status)


def login_redirect(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method != "GET":
        target = "/ui/"
    return RedirectResponse(f"/ui/login?next={quote(target, safe='/')}", status_code=303)


def install(app: FastAPI) -> None:
    """Render errors on UI pages as pages, keeping the API's handlers for the rest."""

    def wrap(exc_class: type[Exception] | int, page: Callable[[Request, Any], Response]) -> None:
        previous: Handler | None = app.exception_handlers.get(exc_class)

        async def handler(request: Request, exc: Any) -> Response:
            if is_page(request):
                return page(request, exc)
            if previous is None:
                raise exc
            result = previous(request, exc)
            return await result if isinstance(result, Awaitable) else result

        app.exception_handlers[exc_class] = handler

    def domain(request: Request, exc: GraylaneError) -> Response:
        problems = list(exc.problems) if isinstance(exc, InvalidDocument) else None
        response = error_page(request, exc.status, exc.message, problems)
        response.headers.update(
            {k: v for k, v in exc.headers.items() if k.lower() != "www-authenticate"}
        )
        return response

    def http(request: Request, exc: StarletteHTTPException) -> Response:
        message = {
            404: "There is no page at this address.",
            405: f"{request.method} is not allowed on this page.",
        }.get(exc.status_code, str(exc.detail))
        return error_page(request, exc.status_code, message)

    def validation(request: Request, exc: RequestValidationError) -> Response:
        return error_page(request, 400, "Some of the values sent are not valid.")

    def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("ui.request_failed", method=request.method, path=request.url.path)
        page = error_page(request, 500, "An unexpected error occurred; nothing may have changed.")
        # Starlette answers unexpected errors from its outermost layer, outside the
        # middleware that adds the security headers to every other UI response.
        harden(page.headers)
        return page

    wrap(GraylaneError, domain)
    wrap(StarletteHTTPException, http)
    wrap(RequestValidationError, validation)
    wrap(Exception, unexpected)

    @app.exception_handler(UiError)
    async def _ui(request: Request, exc: UiError) -> Response:
        if isinstance(exc, LoginRequired):
            if is_page(request):
                return login_redirect(request)
            return JSONResponse(
                {"error": {"code": exc.code, "message": exc.message}}, status_code=401
            )
        if is_page(request):
            return error_page(request, exc.status, exc.message)
        return JSONResponse(
            {"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status
        )
