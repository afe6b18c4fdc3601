"""Who is signed in to the UI, what they may do, and forms that carry their CSRF token.
Endpoints take a `Page` that says both: `ViewerPage` for anyone signed in, or one that
needs a role (`EditorPage`, `ReleaseManagerPage`, `AdminPage`).

A UI session stands for a `Principal(kind="user")`: the services audit its actions as
`user:<name>`, exactly as they audit a token's as `token:<name>`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from graylane_server.deps import SessionDep
from graylane_server.errors import Forbidden
from graylane_server.models import utcnow
from graylane_server.tokens.principal import Role
from graylane_server.ui import csrf, sessions
from graylane_server.ui.errors import LoginRequired
from graylane_server.ui.pages import Page
from graylane_server.ui.sessions import SignedIn
from graylane_server.ui.state import UiState


def get_ui(request: Request) -> UiState:
    state: UiState = request.app.state.ui
    return state


UiDep = Annotated[UiState, Depends(get_ui)]


def signed_in(request: Request, session: SessionDep, ui: UiDep) -> SignedIn:
    secret = request.cookies.get(sessions.COOKIE)
    if not secret:
        raise LoginRequired("sign in to continue")
    page = request.method == "GET" and not request.url.path.startswith("/ui/api/")
    found = sessions.find(
        session, secret, now=utcnow(), take_flash=page, extend=ui.session_lifetime
    )
    if found is None:
        raise LoginRequired("your session has ended: sign in again")
    return found


CurrentUser = Annotated[SignedIn, Depends(signed_in)]


async def signed_in_page(
    request: Request, ui: UiDep, session: SessionDep, user: CurrentUser
) -> Page:
    return Page(request, ui, session, user)


ViewerPage = Annotated[Page, Depends(signed_in_page)]


def page_needing(role: Role) -> Callable[[Page], Awaitable[Page]]:
    async def check(page: ViewerPage) -> Page:
        user = page.user
        if not user.role.allows(role):
            raise Forbidden(
                f"this needs the {role.replace('_', ' ')} role; you are signed in as "
                f"{user.username} with the {user.role.replace('_', ' ')} role"
            )
        return page

    return check


# FastAPI resolves an endpoint's dependencies in the order it declares them: endpoints
# declare a PostedForm before their page, so a bad CSRF token is refused before a role is.
EditorPage = Annotated[Page, Depends(page_needing(Role.EDITOR))]
ReleaseManagerPage = Annotated[Page, Depends(page_needing(Role.RELEASE_MANAGER))]
AdminPage = Annotated[Page, Depends(page_needing(Role.ADMIN))]


async def posted_form(request: Request, user: CurrentUser) -> dict[str, str]:
    """The form's fields, once its CSRF token is the session's."""
    form = await request.form()
    values = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    csrf.verify(user.csrf_token, values.get(csrf.FIELD) or request.headers.get(csrf.HEADER))
    return values


PostedForm = Annotated[dict[str, str], Depends(posted_form)]
