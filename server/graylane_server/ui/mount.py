"""Mounting the admin UI on the app: pages under /ui/, static files under /ui/static,
HTML error pages for UI paths, security headers, and / sending people to /ui/."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from graylane_server.settings import Settings
from graylane_server.ui import errors
from graylane_server.ui.assets import STATIC_PREFIX, static_dir
from graylane_server.ui.routes import root, router
from graylane_server.ui.security import SecurityHeaders
from graylane_server.ui.state import UiState


def mount(app: FastAPI, settings: Settings) -> None:
    app.state.ui = UiState.create(settings)
    app.mount(STATIC_PREFIX, StaticFiles(directory=static_dir()), name="ui-static")
    app.include_router(router)
    app.include_router(root)
    errors.install(app)
    app.add_middleware(SecurityHeaders)
