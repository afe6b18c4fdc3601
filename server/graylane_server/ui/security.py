"""Security headers on every admin UI response."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def _is_ui(path: str) -> bool:
    return path in ("/", "/ui") or path.startswith("/ui/")


def harden(headers: MutableHeaders, *, static: bool = False) -> None:
    """Add `HEADERS` (and, except for static files, `Cache-Control: no-store`), keeping
    any the response set itself."""
    for name, value in HEADERS.items():
        headers.setdefault(name, value)
    if not static:
        headers.setdefault("Cache-Control", "no-store")


class SecurityHeaders:
    """Adds `HEADERS` to UI responses; pages (not static files) are never cached, since
    they show who is signed in and what they may do. (The page for an unexpected error is
    sent from outside every middleware, so it adds them itself: see `ui.errors`.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not _is_ui(path):
            await self.app(scope, receive, send)
            return
        static = path.startswith("/ui/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                harden(MutableHeaders(scope=message), static=static)
            await send(message)

        await self.app(scope, receive, send_with_headers)
