"""Rendering pages: the layout's context, the environment switcher, messages for the
next page, and the confirmation step that stands in for the dialog without JavaScript."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response

from graylane_server.environments import service as environments
from graylane_server.models import Environment
from graylane_server.ops.encoding import utf8
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


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@dataclass(frozen=True, slots=True)
class Page:
    """A signed-in person's request, and what answers it: a page, the confirmation step,
    or a redirect with a message. The dependencies in `auth` provide it once the person
    may use the endpoint."""

    request: Request
    ui: UiState
    session: Session
    user: SignedIn

    @property
    def actor(self) -> str:
        """Who the audit log names for what this request changes."""
        return self.user.principal.actor

    def chosen_environment(self) -> Environment | None:
        return choose_environment(self.request, environments.listing(self.session))

    def render(
        self,
        template: str,
        *,
        active: str,
        environment: Environment | None = None,
        env_link: EnvLink | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **values: Any,
    ) -> HTMLResponse:
        options = list(environments.listing(self.session))
        body = self.ui.templates.render(
            template,
            request=self.request,
            user=self.user,
            csrf=self.user.csrf_token,
            flash=self.user.flash,
            active=active,
            environments=options,
            env=environment,
            env_link=env_link or query_link(self.request),
            now=time.time(),
            settings=self.ui.settings,
            **values,
        )
        # Encoded here: text stored before the edge limits must not fail the whole page.
        html = utf8(body, what="ui page")
        response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
        if environment is not None:
            remember_environment(self.request, response, environment.key)
        return response

    def done(self, url: str, message: str, kind: FlashKind = "success") -> RedirectResponse:
        """Back to a page, with a message for it."""
        sessions.flash(self.session, self.user, kind, message)
        return redirect(url)

    def confirm(
        self,
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
        return self.render(
            "confirm.html",
            active="",
            title=title,
            message=message,
            label=label,
            danger=danger,
            action=self.request.url.path,
            fields=fields,
            back=back,
            reason=form.get("reason", ""),
            reason_required=reason_required,
            missing_reason=missing_reason and form.get("confirmed") == "yes",
        )
