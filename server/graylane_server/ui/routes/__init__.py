"""The admin UI's HTTP routes, one module an area. HTTP only: the services do the work,
a `pages.Page` renders, confirms and redirects, `editor` runs the flag and segment editors.

Endpoints take their path parameters first and, after `*`, what FastAPI injects: it passes
them all by name. A `PostedForm` comes before the page (`auth.ViewerPage`, `EditorPage`, ...)
because dependencies run in that order, and a forged form must be refused before the role
is checked.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from graylane_server.ui.routes import (
    audit,
    flags,
    login,
    playground,
    ramps,
    segments,
    switches,
    tokens,
    users,
)

# Each area's router has the /ui prefix itself, so a route's own path (what access logs and
# metrics label requests with) is the full one.
router = APIRouter()
for area in (login, flags, switches, ramps, playground, segments, tokens, users, audit):
    router.include_router(area.router)

root = APIRouter(include_in_schema=False)


@root.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


__all__ = ["root", "router"]
