"""Signing in and out. The sign-in form has no session yet, so its CSRF token travels in a
cookie of its own; failed attempts are rate-limited per username and address, and per
address; passwords are checked a few at a time, outside any transaction."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from graylane_server import db
from graylane_server.deps import RuntimeDep, SessionDep
from graylane_server.models import UserRow, utcnow
from graylane_server.ui import csrf, forms, sessions
from graylane_server.ui.auth import PostedForm, UiDep
from graylane_server.ui.errors import CsrfRejected
from graylane_server.ui.pages import redirect, secure
from graylane_server.ui.password_checks import Busy
from graylane_server.ui.ratelimit import limiter_key
from graylane_server.ui.state import UiState

router = APIRouter(prefix="/ui", include_in_schema=False)


def _login_page(
    request: Request,
    ui: UiState,
    *,
    username: str = "",
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    token = csrf.new_token()
    body = ui.templates.render(
        "login.html",
        request=request,
        csrf=token,
        username=username,
        error=error,
        notice=notice,
        next=forms.local_target(request.query_params.get("next")),
    )
    response = HTMLResponse(body, status_code=status, headers=headers)
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/ui/login",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    return response


def _too_many(
    request: Request, ui: UiState, username: str, wait: float, *, per_address: bool
) -> HTMLResponse:
    """429: the form again, saying how long to wait before the next sign-in."""
    minutes = max(1, round(wait / 60))
    who = "" if per_address else f"for {username or 'this username'} "
    return _login_page(
        request,
        ui,
        username=username,
        error=f"Too many failed sign-ins {who}from your address. "
        f"Wait {minutes} minute{'s' if minutes != 1 else ''} and try again.",
        status=429,
        headers={"Retry-After": str(max(1, round(wait)))},
    )


@router.get("/login")
def login_form(*, request: Request, ui: UiDep, runtime: RuntimeDep) -> Response:
    secret = request.cookies.get(sessions.COOKIE)
    if secret:
        with runtime.readers() as session:
            if sessions.find(session, secret, now=utcnow(), take_flash=False) is not None:
                return redirect("/ui/")
    notice = "You are signed out." if request.query_params.get("signed_out") else None
    return _login_page(request, ui, notice=notice)


@router.post("/login")
async def login(*, request: Request, ui: UiDep, runtime: RuntimeDep) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    username = fields.get("username", "").strip()
    try:
        csrf.verify(request.cookies.get(csrf.LOGIN_COOKIE), fields.get(csrf.FIELD))
    except CsrfRejected:
        return _login_page(
            request,
            ui,
            username=username,
            error="This sign-in form expired or did not come from Graylane: please try again.",
            status=403,
        )
    password = fields.get("password", "")
    address = request.client.host if request.client else "unknown"
    key = limiter_key(username, address)

    def limited() -> tuple[float, bool]:
        by_address = ui.address_limiter.retry_after(address)
        return (by_address, True) if by_address > 0 else (ui.limiter.retry_after(key), False)

    wait, per_address = await run_in_threadpool(limited)
    if wait > 0:
        return _too_many(request, ui, username, wait, per_address=per_address)

    def check() -> int | tuple[float, bool] | None:
        """The user's id, None for a failure, or how long to wait (as `limited` says):
        sign-ins that waited for their slot look at the limits again, as the ones before
        them may have failed."""
        wait, per_address = limited()
        if wait > 0:
            return wait, per_address
        # Read, then check the password with no transaction open: a slow check must not
        # hold the database (on SQLite, its one writer) while it runs.
        with runtime.readers() as session:
            found = sessions.account(session, username)
        if sessions.password_matches(found, password) and found is not None:
            return found.user_id
        ui.limiter.record(key)
        ui.address_limiter.record(address)
        return None

    def start(user_id: int) -> str | None:
        with db.transaction(runtime.sessions) as session:
            user = session.get(UserRow, user_id)
            if user is None or user.disabled:  # changed while the password was checked
                return None
            return sessions.start(session, user_id, lifetime=ui.session_lifetime, now=utcnow())

    if not (username and password):
        outcome: int | tuple[float, bool] | None = None
        await run_in_threadpool(ui.limiter.record, key)
        await run_in_threadpool(ui.address_limiter.record, address)
    else:
        try:
            outcome = await ui.password_checks.run(check)
        except Busy as busy:
            return _login_page(
                request,
                ui,
                username=username,
                error="Graylane is checking many sign-ins right now: try again in a moment.",
                status=503,
                headers={"Retry-After": str(max(1, round(busy.retry_after)))},
            )
    if isinstance(outcome, tuple):
        wait, per_address = outcome
        return _too_many(request, ui, username, wait, per_address=per_address)
    secret = None if outcome is None else await run_in_threadpool(start, outcome)
    if secret is None:
        return _login_page(
            request,
            ui,
            username=username,
            error="Wrong username or password, or the account is disabled.",
            status=401,
        )
    # Only this username's count starts again: the address keeps its failures for others.
    await run_in_threadpool(ui.limiter.reset, key)
    response = redirect(forms.local_target(fields.get("next")))
    response.set_cookie(
        sessions.COOKIE,
        secret,
        # The browser keeps it up to the limit; the server ends an idle session sooner.
        max_age=round(ui.session_lifetime.limit.total_seconds()),
        path="/ui",
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/ui/login")
    return response


@router.post("/logout")
def logout(*, request: Request, _: PostedForm, session: SessionDep) -> Response:
    secret = request.cookies.get(sessions.COOKIE)
    if secret:
        sessions.end(session, secret)
    response = redirect("/ui/login?signed_out=1")
    response.delete_cookie(sessions.COOKIE, path="/ui", secure=secure(request), httponly=True)
    return response
