"""What the admin UI keeps for the life of the app: templates, the sign-in limiter and how
long sessions last."""

from __future__ import annotations

from dataclasses import dataclass

from graylane_server.ratelimit import Limiter
from graylane_server.settings import Settings
from graylane_server.ui.assets import StaticUrls, static_dir, templates_dir
from graylane_server.ui.ratelimit import create_limiter
from graylane_server.ui.sessions import Lifetime
from graylane_server.ui.templating import Templates


@dataclass
class UiState:
    settings: Settings
    templates: Templates
    limiter: Limiter
    session_lifetime: Lifetime

    @classmethod
    def create(cls, settings: Settings) -> UiState:
        return cls(
            settings=settings,
            templates=Templates(templates_dir(), StaticUrls(static_dir())),
            limiter=create_limiter(
                settings.redis_url, settings.login_max_failures, settings.login_window_seconds
            ),
            session_lifetime=Lifetime.of(settings),
        )
