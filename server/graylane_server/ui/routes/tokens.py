"""API tokens (admins only): the list, minting one (its secret is shown once, on the page
that answers the form) and revoking one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from graylane_server.deps import SessionDep
from graylane_server.environments import service as environments
from graylane_server.errors import GraylaneError, NotFound
from graylane_server.tokens import service as tokens
from graylane_server.tokens.principal import Role
from graylane_server.ui import forms
from graylane_server.ui.auth import PostedForm, UiAdmin, UiDep
from graylane_server.ui.pages import choose_environment, confirmation, done, render
from graylane_server.ui.sessions import SignedIn
from graylane_server.ui.state import UiState

router = APIRouter(prefix="/ui", include_in_schema=False)


def _tokens_page(
    request: Request,
    ui: UiState,
    session: Session,
    user: SignedIn,
    *,
    created: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    show_revoked = request.query_params.get("revoked") == "1"
    env = choose_environment(request, environments.listing(session))
    return render(
        request,
        ui,
        session,
        user,
        "tokens.html",
        active="tokens",
        environment=env,
        tokens=tokens.listing(session, include_revoked=show_revoked),
        show_revoked=show_revoked,
        created=created,
        error=error,
        roles=list(Role),
        status=status,
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
def token_list(*, request: Request, session: SessionDep, user: UiAdmin, ui: UiDep) -> Response:
    return _tokens_page(request, ui, session, user)


@router.post("/tokens")
def create_token(
    *, request: Request, form: PostedForm, user: UiAdmin, session: SessionDep, ui: UiDep
) -> Response:
    try:
        kind, role, environment = _asked_for(form)
        with session.begin_nested():
            row, secret = tokens.create(
                session,
                actor=user.principal.actor,
                kind=kind,
                name=forms.text(form, "name") or None,
                role=role,
                environment=environment,
            )
    except forms.FormError as exc:
        return _tokens_page(request, ui, session, user, error=exc.message, status=422)
    except GraylaneError as exc:
        return _tokens_page(request, ui, session, user, error=exc.message, status=exc.status)
    created = {"name": row.name, "kind": row.kind, "secret": secret}
    return _tokens_page(request, ui, session, user, created=created, status=201)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    token_id: int,
    *,
    request: Request,
    form: PostedForm,
    user: UiAdmin,
    session: SessionDep,
    ui: UiDep,
) -> Response:
    name = next((t.name for t in tokens.listing(session) if t.id == token_id), None)
    if name is None:
        raise NotFound(f"no active token with id {token_id}")
    asked = confirmation(
        request,
        ui,
        session,
        user,
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
        session,
        actor=user.principal.actor,
        token_id=token_id,
        reason=forms.text(form, "reason") or None,
    )
    return done(session, user, "/ui/tokens", f"Revoked {name}.")
