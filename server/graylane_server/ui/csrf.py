"""CSRF tokens: one per signed-in session, in a hidden field of every form; before sign-in,
a cookie whose value the login form must repeat."""

from __future__ import annotations

import hmac
import secrets

from graylane_server.ui.errors import CsrfRejected

FIELD = "csrf_token"
LOGIN_COOKIE = "graylane_login_csrf"
HEADER = "x-csrf-token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def verify(expected: str | None, given: str | None) -> None:
    """Refuse unless `given` is the expected token (compared in constant time)."""
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise CsrfRejected(
            "this form has expired or did not come from Graylane; reload the page and try again"
        )
