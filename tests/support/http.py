"""Stand-in HTTP servers for tests (a Prometheus, a proxy in front of Graylane): how they
answer."""

from __future__ import annotations

from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler


def send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answer the handler's request with `status` and the JSON `body`."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
