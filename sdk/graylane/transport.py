"""HTTP to the Graylane server: config with ETags, the change stream, metrics.

Nothing the network sends is trusted: bodies are read up to a limit (after gzip, so a
small bomb cannot fill memory), headers are used only when well formed, and every way an
answer can be unusable is raised as one of the errors below, never as anything else.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any

import httpx

from graylane import __version__, sse

USER_AGENT = f"graylane-python/{__version__}"

MAX_CONFIG_BYTES = 64 * 1024 * 1024
"""Largest config body (decompressed) the client reads; far above 10,000 flags."""
MAX_ERROR_BYTES = 16 * 1024
"""How much of an error answer is read to describe it."""
MAX_RETRY_AFTER = 300.0
"""The longest `Retry-After` honoured: a server cannot park a client for longer."""

_ETAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e]{0,256}"')
_VERSION = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class Fetched:
    """A config response: `body` is None when the server answered 304."""

    body: bytes | None
    etag: str | None
    version: int | None
    environment: str | None


class ServerError(Exception):
    """The server answered, but not with what we asked for (status in the message)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float = 0.0):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        """Seconds the server asked us to wait before the next try (0 when it did not)."""


class KeyRefused(ServerError):
    """The server answered 401 or 403: it does not accept this SDK key."""


class BadResponse(ValueError):
    """The server's answer cannot be used: too large, or not in the expected form."""


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
        # An ETag that is not well formed (a hand-edited backup, say) would fail every
        # request it went out with: ask without it.
        headers = {"If-None-Match": etag} if etag and valid_etag(etag) else {}
        with self._http.stream("GET", "/api/v1/sdk/config", headers=headers) as response:
            if response.status_code == 304:
                return Fetched(None, **_meta(response))
            if response.status_code != 200:
                raise _refusal(response)
            body = _read(response, MAX_CONFIG_BYTES, "the config")
            return Fetched(body, **_meta(response))

    @contextlib.contextmanager
    def stream(self) -> Iterator[Iterator[sse.Event | None]]:
        with self._streams.stream("GET", "/api/v1/sdk/stream") as response:
            if response.status_code != 200:
                raise _refusal(response)
            self._open = response
            try:
                yield sse.parse(response.iter_text())
            finally:
                self._open = None

    def post_metrics(self, payload: dict[str, Any]) -> None:
        with self._http.stream(
            "POST",
            "/api/v1/sdk/metrics",
            content=json.dumps(payload, separators=(",", ":")),
            headers={"Content-Type": "application/json"},
        ) as response:
            if response.status_code >= 300:
                raise _refusal(response)

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


def valid_etag(etag: str) -> bool:
    """An entity tag as RFC 9110 writes it (ASCII, quoted), short enough to send back."""
    return _ETAG.fullmatch(etag) is not None


def _meta(response: httpx.Response) -> dict[str, Any]:
    etag = response.headers.get("etag")
    version = response.headers.get("x-graylane-version")
    return {
        "etag": etag if etag is not None and valid_etag(etag) else None,
        "version": int(version) if version and _VERSION.fullmatch(version) else None,
        "environment": response.headers.get("x-graylane-environment"),
    }


def _read(response: httpx.Response, limit: int, what: str) -> bytes:
    """The decompressed body, refused once it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise BadResponse(f"{what} is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refusal(response: httpx.Response) -> ServerError:
    """The error for an answer with an unexpected status, naming status and message."""
    try:
        body = _read(response, MAX_ERROR_BYTES, "the error")
    except (BadResponse, httpx.HTTPError):
        body = b""
    status = response.status_code
    message = f"{response.request.method} {response.request.url.path}: {status}"
    detail = _message(body)
    if detail:
        message += f" {detail}"
    kind = KeyRefused if status in (401, 403) else ServerError
    return kind(message, status=status, retry_after=retry_after(response.headers))


def _message(body: bytes) -> str:
    """The error message of a Graylane error body, else the start of the body: printable,
    on one line, at most 200 characters."""
    text = body.decode("utf-8", "replace")
    try:
        message = json.loads(text)["error"]["message"]
    except Exception:  # noqa: BLE001 - any body at all, nested 100,000 deep included
        message = text
    if not isinstance(message, str):
        message = text
    return printable(message, 200)


def printable(text: str, limit: int) -> str:
    """Text from the network as it may go into a log line: control characters and lone
    surrogates escaped, cut at `limit` characters."""
    text = text[:limit]
    if text.isascii() and text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else ascii(ch)[1:-1]
        for ch in text
    )


def retry_after(headers: httpx.Headers) -> float:
    """Seconds a `Retry-After` header asks for (delay or HTTP date), capped at
    MAX_RETRY_AFTER; 0 when there is none or it cannot be read."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return 0.0
    if value.isascii() and value.isdigit():
        seconds = float(value[:6])
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
