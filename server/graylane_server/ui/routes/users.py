"""People who sign in to the UI (admins only): the list, adding one, and changing one's
role or disabling them. Nobody can lock themselves out of the admin role."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import HTMLResponse, Response

from graylane_server.errors import GraylaneError, InvalidDocument
from graylane_server.tokens.principal import Role
from graylane_server.ui import forms
from graylane_server.ui.auth import AdminPage, PostedForm
from graylane_server.ui.pages import Page
from graylane_server.users import service as users

router = APIRouter(prefix="/ui", include_in_schema=False)


def _users_page(
    page: Page,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    env = page.chosen_environment()
    return page.render(
        "users.html",
        active="users",
        environment=env,
        users=users.listing(page.session),
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
def user_list(*, page: AdminPage) -> Response:
    return _users_page(page)


@router.post("/users")
def create_user(*, form: PostedForm, page: AdminPage) -> Response:
    username = forms.text(form, "username")
    try:
        role = Role(forms.text(form, "role"))
    except ValueError:
        return _users_page(page, error="Choose a role.", values=form, status=422)
    try:
        with page.session.begin_nested():
            users.create(
                page.session,
                actor=page.actor,
                username=username,
                password=form.get("password", ""),
                role=role,
            )
    except InvalidDocument as exc:
        error = "; ".join(f"{p.path}: {p.message}" for p in exc.problems)
        return _users_page(page, error=error, values=form, status=422)
    except GraylaneError as exc:
        return _users_page(page, error=exc.message, values=form, status=exc.status)
    return page.done("/ui/users", f"Created {username} ({_role_words(role)}).")


@router.post("/users/{username}")
def update_user(username: str, *, form: PostedForm, page: AdminPage) -> Response:
    target = users.get(page.session, username)
    role: Role | None = None
    disabled: bool | None = None
    if "role" in form:
        try:
            role = Role(form["role"])
        except ValueError:
            return page.done("/ui/users", "Choose a role.", "error")
    if "disabled" in form:
        disabled = form["disabled"] == "true"
    if username == page.user.username and (disabled or (role is not None and role != Role.ADMIN)):
        return page.done(
            "/ui/users",
            "You cannot disable yourself or drop your own admin role: ask another admin.",
            "error",
        )
    title, message, label = _confirm_words(username, target.role, role, disabled)
    asked = page.confirm(
        form,
        title=title,
        message=message,
        label=label,
        danger=bool(disabled),
        back="/ui/users",
    )
    if asked is not None:
        return asked
    users.update(page.session, actor=page.actor, username=username, role=role, disabled=disabled)
    return page.done("/ui/users", f"Updated {username}.")
