"""People who sign in to the UI (admins only): the list, adding one, and changing one's
role or disabling them. Nobody can lock themselves out of the admin role."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from graylane_server.deps import SessionDep
from graylane_server.environments import service as environments
from graylane_server.errors import GraylaneError, InvalidDocument
from graylane_server.tokens.principal import Role
from graylane_server.ui import forms
from graylane_server.ui.auth import PostedForm, UiAdmin, UiDep
from graylane_server.ui.pages import choose_environment, confirmation, done, render
from graylane_server.ui.sessions import SignedIn
from graylane_server.ui.state import UiState
from graylane_server.users import service as users

router = APIRouter(prefix="/ui", include_in_schema=False)


def _users_page(
    request: Request,
    ui: UiState,
    session: Session,
    user: SignedIn,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    env = choose_environment(request, environments.listing(session))
    return render(
        request,
        ui,
        session,
        user,
        "users.html",
        active="users",
        environment=env,
        users=users.listing(session),
        roles=list(Role),
        error=error,
        values=values or {},
        status=status,
    )


def _role_words(role: str) -> str:
    return role.replace("_", " ")


def _confirm_words(
    username: str, current: str, role: Role | None, disabled: bool | None
) -> tuple[str, str, str]:
    """The confirmation's title, message and button for a change to `username`."""
    if disabled:
        return (
            f"Disable {username}?",
            f"{username} is signed out everywhere and cannot sign in until enabled again.",
            "Disable user",
        )
    if role is not None:
        return (
            f"Make {username} {_role_words(role)}?",
            f"{username} goes from {_role_words(current)} to "
            f"{_role_words(role)}, effective on their next click.",
            "Change role",
        )
    return f"Enable {username}?", f"{username} can sign in again.", "Enable user"


@router.get("/users")
def user_list(*, request: Request, session: SessionDep, user: UiAdmin, ui: UiDep) -> Response:
    return _users_page(request, ui, session, user)


@router.post("/users")
def create_user(
    *, request: Request, form: PostedForm, user: UiAdmin, session: SessionDep, ui: UiDep
) -> Response:
    username = forms.text(form, "username")
    try:
        role = Role(forms.text(form, "role"))
    except ValueError:
        return _users_page(
            request, ui, session, user, error="Choose a role.", values=form, status=422
        )
    try:
        with session.begin_nested():
            users.create(
                session,
                actor=user.principal.actor,
                username=username,
                password=form.get("password", ""),
                role=role,
            )
    except InvalidDocument as exc:
        error = "; ".join(f"{p.path}: {p.message}" for p in exc.problems)
        return _users_page(request, ui, session, user, error=error, values=form, status=422)
    except GraylaneError as exc:
        return _users_page(
            request, ui, session, user, error=exc.message, values=form, status=exc.status
        )
    return done(session, user, "/ui/users", f"Created {username} ({_role_words(role)}).")


@router.post("/users/{username}")
def update_user(
    username: str,
    *,
    request: Request,
    form: PostedForm,
    user: UiAdmin,
    session: SessionDep,
    ui: UiDep,
) -> Response:
    target = users.get(session, username)
    role: Role | None = None
    disabled: bool | None = None
    if "role" in form:
        try:
            role = Role(form["role"])
        except ValueError:
            return done(session, user, "/ui/users", "Choose a role.", "error")
    if "disabled" in form:
        disabled = form["disabled"] == "true"
    if username == user.username and (disabled or (role is not None and role != Role.ADMIN)):
        return done(
            session,
            user,
            "/ui/users",
            "You cannot disable yourself or drop your own admin role: ask another admin.",
            "error",
        )
    title, message, label = _confirm_words(username, target.role, role, disabled)
    asked = confirmation(
        request,
        ui,
        session,
        user,
        form,
        title=title,
        message=message,
        label=label,
        danger=bool(disabled),
        back="/ui/users",
    )
    if asked is not None:
        return asked
    users.update(
        session, actor=user.principal.actor, username=username, role=role, disabled=disabled
    )
    return done(session, user, "/ui/users", f"Updated {username}.")
