"""API tokens (admins only): the list, minting one (its secret is shown once, on the page
that answers the form) and revoking one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from starlette.responses import HTMLResponse, Response

from graylane_server.deps import RuntimeDep
from graylane_server.errors import GraylaneError, NotFound
from graylane_server.tokens import service as tokens
from graylane_server.tokens.principal import Role
from graylane_server.ui import forms
from graylane_server.ui.auth import AdminPage, PostedForm
from graylane_server.ui.pages import Page

router = APIRouter(prefix="/ui", include_in_schema=False)


def _tokens_page(
    page: Page,
    *,
    created: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    show_revoked = page.request.query_params.get("revoked") == "1"
    env = page.chosen_environment()
    return page.render(
        "tokens.html",
        active="tokens",
        environment=env,
        tokens=tokens.listing(page.session, include_revoked=show_revoked),
        show_revoked=show_revoked,
        created=created,
        error=error,
        roles=list(Role),
        status=status,
        headers=headers,
    )


def _asked_for(form: Mapping[str, str]) -> tuple[str, Role | None, str | None]:
    """The kind of token the form asks for, with the role of an admin token or the
    environment of an SDK one."""
    kind = forms.text(form, "kind")
    if kind not in ("admin", "sdk"):
        raise forms.FormError("kind", "choose an admin or an SDK token")
    if kind == "admin":
        try:
            return kind, Role(forms.text(form, "role")), None
        except ValueError:
            raise forms.FormError("role", "choose a role for the admin token") from None
    environment = forms.text(form, "environment") or None
    if environment is None:
        raise forms.FormError("environment", "an SDK token needs an environment")
    return kind, None, environment


@router.get("/tokens")
def token_list(*, page: AdminPage) -> Response:
    return _tokens_page(page)


@router.post("/tokens")
def create_token(*, form: PostedForm, page: AdminPage, runtime: RuntimeDep) -> Response:
    try:
        kind, role, environment = _asked_for(form)
        settings = page.ui.settings
        # The API's limit, in the API's limiter: the UI is no way around it.
        tokens.count_creation(
            runtime.token_creations,
            page.user.principal,
            most=settings.token_create_max,
            window=settings.token_create_window_seconds,
        )
        with page.session.begin_nested():
            row, secret = tokens.create(
                page.session,
                actor=page.actor,
                kind=kind,
                name=forms.text(form, "name") or None,
                role=role,
                environment=environment,
            )
    except forms.FormError as exc:
        return _tokens_page(page, error=exc.message, status=422)
    except GraylaneError as exc:
        return _tokens_page(page, error=exc.message, status=exc.status, headers=exc.headers)
    created = {"name": row.name, "kind": row.kind, "secret": secret}
    return _tokens_page(page, created=created, status=201)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: int, *, form: PostedForm, page: AdminPage) -> Response:
    name = next((t.name for t in tokens.listing(page.session) if t.id == token_id), None)
    if name is None:
        raise NotFound(f"no active token with id {token_id}")
    asked = page.confirm(
        form,
        title=f"Revoke {name}?",
        message="Everything using this token is refused from now on, on every replica. "
        "This cannot be undone: a new token has to be minted.",
        label="Revoke token",
        back="/ui/tokens",
    )
    if asked is not None:
        return asked
    tokens.revoke(
        page.session,
        actor=page.actor,
        token_id=token_id,
        reason=forms.text(form, "reason") or None,
    )
    return page.done("/ui/tokens", f"Revoked {name}.")
