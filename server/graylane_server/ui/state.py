"""What the admin UI keeps for the life of the app: templates, the sign-in limiters, the
bound on password checks and how long sessions last."""

from __future__ import annotations

from dataclasses import dataclass

from graylane_server.ratelimit import Limiter
from graylane_server.settings import Settings
from graylane_server.ui.assets import StaticUrls, static_dir, templates_dir
from graylane_server.ui.password_checks import PasswordChecks
from graylane_server.ui.ratelimit import create_limiter
from graylane_server.ui.sessions import Lifetime, decoy_hash
from graylane_server.ui.templating import Templates


@dataclass
class UiState:
    settings: Settings
    templates: Templates
    limiter: Limiter
    """Failed sign-ins per username and address."""
    address_limiter: Limiter
    """Failed sign-ins per address, whatever the username."""
    password_checks: PasswordChecks
    session_lifetime: Lifetime

    @classmethod
    def create(cls, settings: Settings) -> UiState:
        decoy_hash()  # now, not on the first unknown username (see `sessions.account`)
        return cls(
            settings=settings,
            templates=Templates(templates_dir(), StaticUrls(static_dir())),
            limiter=create_limiter(
                settings.redis_url, settings.login_max_failures, settings.login_window_seconds
            ),
            address_limiter=create_limiter(
                settings.redis_url,
                settings.login_max_failures_per_address,
                settings.login_window_seconds,
                namespace="login-failures-address",
            ),
            password_checks=PasswordChecks(settings.login_concurrency),
            session_lifetime=Lifetime.of(settings),
        )
