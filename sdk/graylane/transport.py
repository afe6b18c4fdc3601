"""HTTP to the Graylane server: config with ETags, the change stream, metrics."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx

from graylane import __version__, sse

USER_AGENT = f"graylane-python/{__version__}"


@dataclass(frozen=True, slots=True)
class Fetched:
    """A config response: `body` is None when the server answered 304."""

    body: bytes | None
    etag: str | None
    version: int | None
    environment: str | None


class ServerError(Exception):
    """The server answered, but not with what we asked for (status in the message)."""


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client in the process: building one loads the system's
    certificates and costs tens of milliseconds."""
    return ssl.create_default_context()


class Transport:
    def __init__(
        self, url: str, sdk_key: str, *, timeout: float, stream_read_timeout: float
    ) -> None:
        self._base = url.rstrip("/")
        headers = {
            "Authorization": f"Bearer {sdk_key}",
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "gzip",
        }
        verify: ssl.SSLContext | bool = _tls() if self._base.startswith("https://") else False
        self._http = httpx.Client(
            base_url=self._base, headers=headers, timeout=timeout, verify=verify
        )
        self._open: httpx.Response | None = None
        # Streams get their own connection pool, so closing one to interrupt a blocked
        # read never disturbs a config fetch or a metrics post.
        self._streams = httpx.Client(
            base_url=self._base,
            headers={**headers, "Accept": "text/event-stream"},
            timeout=httpx.Timeout(timeout, read=stream_read_timeout),
            verify=verify,
        )

    def fetch_config(self, etag: str | None) -> Fetched:
        headers = {"If-None-Match": etag} if etag else {}
        response = self._http.get("/api/v1/sdk/config", headers=headers)
        version = response.headers.get("x-graylane-version")
        meta = {
            "etag": response.headers.get("etag"),
            "version": int(version) if version and version.isdigit() else None,
            "environment": response.headers.get("x-graylane-environment"),
        }
        if response.status_code == 304:
            return Fetched(body=None, **meta)
        if response.status_code != 200:
            raise ServerError(_describe(response))
        return Fetched(body=response.content, **meta)

    @contextlib.contextmanager
    def stream(self) -> Iterator[Iterator[sse.Event | None]]:
        with self._streams.stream("GET", "/api/v1/sdk/stream") as response:
            if response.status_code != 200:
                response.read()
                raise ServerError(_describe(response))
            self._open = response
            try:
                yield sse.parse(response.iter_lines())
            finally:
                self._open = None

    def post_metrics(self, payload: dict[str, Any]) -> None:
        response = self._http.post(
            "/api/v1/sdk/metrics",
            content=json.dumps(payload, separators=(",", ":")),
            headers={"Content-Type": "application/json"},
        )
        if response.status_code >= 300:
            raise ServerError(_describe(response))

    def interrupt_streams(self) -> None:
        """Wake a read blocked on the stream now, not at the next heartbeat: shutting the
        socket down makes a pending recv return at once (closing it would not)."""
        response = self._open
        network = None if response is None else response.extensions.get("network_stream")
        sock = None if network is None else network.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._streams.close()

    def close(self) -> None:
        self._streams.close()
        self._http.close()


def _describe(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    return (
        f"{response.request.method} {response.request.url.path}: {response.status_code} {message}"
    )
