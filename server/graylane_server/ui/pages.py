"""Rendering pages: the layout's context, the environment switcher, messages for the
next page, and the confirmation step that stands in for the dialog without JavaScript."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response

from graylane_server.environments import service as environments
from graylane_server.models import Environment
from graylane_server.ui import sessions
from graylane_server.ui.sessions import FlashKind, SignedIn
from graylane_server.ui.state import UiState

ENV_COOKIE = "graylane_env"
EnvLink = Callable[[str], str]


def secure(request: Request) -> bool:
    """Cookies are Secure when the browser reached us over https (behind a proxy, uvicorn
    takes the scheme from X-Forwarded-Proto)."""
    return request.url.scheme == "https"


def choose_environment(request: Request, options: Sequence[Environment]) -> Environment | None:
    """The environment a page shows: `?env=`, else the last one chosen, else production
    (or the first)."""
    by_key = {e.key: e for e in options}
    for wanted in (request.query_params.get("env"), request.cookies.get(ENV_COOKIE)):
        if wanted and wanted in by_key:
            return by_key[wanted]
    return by_key.get("production") or (options[0] if options else None)


def remember_environment(request: Request, response: Response, environment: str | None) -> None:
    if environment and request.cookies.get(ENV_COOKIE) != environment:
        response.set_cookie(
            ENV_COOKIE,
            environment,
            max_age=365 * 86400,
            path="/ui",
            httponly=True,
            samesite="lax",
            secure=secure(request),
        )


def query_link(request: Request) -> EnvLink:
    """The current page in another environment, keeping its other query parameters."""

    def link(key: str) -> str:
        params = {k: v for k, v in request.query_params.items() if k not in ("env", "before")}
        params["env"] = key
        return f"{request.url.path}?{urlencode(params)}"

    return link


def render(
    request: Request,
    ui: UiState,
    session: Session,
    user: SignedIn,
    template: str,
    *,
    active: str,
    environment: Environment | None = None,
    env_link: EnvLink | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    options = list(environments.listing(session))
    body = ui.templates.render(
        template,
        request=request,
        user=user,
        csrf=user.csrf_token,
        flash=user.flash,
        active=active,
        environments=options,
        env=environment,
        env_link=env_link or query_link(request),
        now=time.time(),
        settings=ui.settings,
        **values,
    )
    response = HTMLResponse(body, status_code=status, headers=dict(headers or {}))
    if environment is not None:
        remember_environment(request, response, environment.key)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def done(
    session: Session, user: SignedIn, url: str, message: str, kind: FlashKind = "success"
) -> RedirectResponse:
    """Back to a page, with a message for it."""
    sessions.flash(session, user, kind, message)
    return redirect(url)


def confirmation(
    request: Request,
    ui: UiState,
    session: Session,
    user: SignedIn,
    form: Mapping[str, str],
    *,
    title: str,
    message: str,
    label: str,
    danger: bool = True,
    back: str,
    reason_required: bool = False,
) -> HTMLResponse | None:
    """None once the person has confirmed; else a page that asks first. With JavaScript
    the dialog confirms in place and this page never shows."""
    missing_reason = reason_required and not form.get("reason", "").strip()
    if form.get("confirmed") == "yes" and not missing_reason:
        return None
    fields = {k: v for k, v in form.items() if k not in ("csrf_token", "confirmed", "reason")}
    return render(
        request,
        ui,
        session,
        user,
        "confirm.html",
        active="",
        title=title,
        message=message,
        label=label,
        danger=danger,
        action=request.url.path,
        fields=fields,
        back=back,
        reason=form.get("reason", ""),
        reason_required=reason_required,
        missing_reason=missing_reason and form.get("confirmed") == "yes",
    )
