"""Keeping a client's config current, in one background thread.

1. Fetch the config (with the ETag we hold, so an unchanged config costs a 304).
2. Listen to the change stream; on each notice newer than what we hold, fetch again.
3. When the stream drops or cannot be had, fetch once (ETag polling), wait a capped,
   jittered, growing delay, and try the stream again.
A failure never touches what the client serves: the last good config stays in place.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable

import httpx

from graylane.transport import Fetched, ServerError, Transport

RETRYABLE = (httpx.HTTPError, ServerError, OSError, ValueError)


class Backoff:
    """Exponential delays with full jitter, capped, so a fleet of clients that lost the
    server together does not come back in lockstep."""

    def __init__(self, initial: float = 0.5, cap: float = 30.0) -> None:
        self.initial, self.cap, self.attempt = initial, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.initial * 2**self.attempt)
        self.attempt += 1
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0


class Synchronizer:
    def __init__(
        self,
        transport: Transport,
        *,
        install: Callable[[Fetched], None],
        held: Callable[[], tuple[int | None, str | None]],
        contact: Callable[[], None],
        failure: Callable[[Exception], None],
        stream: bool,
        poll_interval: float,
    ) -> None:
        self._transport = transport
        self._install = install
        self._held = held
        self._contact = contact
        self._failure = failure
        self._stream = stream
        self._poll_interval = poll_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="graylane-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 0.5) -> None:
        """Stop soon. A read blocked on the stream wakes at the next heartbeat at the
        latest; the thread is a daemon, so nobody waits for that."""
        self._stop.set()
        self._transport.interrupt_streams()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = Backoff(cap=min(30.0, self._poll_interval))
        self.refresh()
        while not self._stop.is_set():
            if not self._stream:
                self._stop.wait(self._poll_interval)
                self.refresh()
                continue
            try:
                self._listen(backoff)
            except RETRYABLE as exc:
                if not self._stop.is_set():
                    self._failure(exc)
            if self._stop.is_set():
                break
            self.refresh()
            self._stop.wait(backoff.next())

    def refresh(self, wanted_version: int | None = None) -> bool:
        """Fetch until we hold `wanted_version` (a replica behind a load balancer may not
        have built it yet, so a few short retries), or once when no version is wanted."""
        for attempt in range(6):
            _, etag = self._held()
            try:
                fetched = self._transport.fetch_config(etag)
            except RETRYABLE as exc:
                self._failure(exc)
                return False
            self._contact()
            if fetched.body is not None:
                self._install(fetched)
            if wanted_version is None or (fetched.version or 0) >= wanted_version:
                return True
            if self._stop.wait(0.02 * 2**attempt):
                return False
        return False

    def _listen(self, backoff: Backoff) -> None:
        connected_at = time.monotonic()
        with self._transport.stream() as events:
            self._contact()
            for event in events:
                if self._stop.is_set():
                    return
                self._contact()
                if time.monotonic() - connected_at > 5:
                    backoff.reset()  # a connection that lasted is not a flapping one
                if event is None:
                    continue  # heartbeat
                notice = json.loads(event.data)
                if not isinstance(notice, dict) or notice.get("type") != "refetchEvaluation":
                    continue
                version, etag = self._held()
                wanted = notice.get("version")
                fetched = True
                if isinstance(wanted, int):
                    if version is None or wanted > version:
                        fetched = self.refresh(wanted)
                elif notice.get("etag") != etag:
                    fetched = self.refresh()
                if not fetched and not self._stop.is_set():
                    # Heartbeats would keep this stream looking healthy while we serve an
                    # old config: drop it, and let the outer loop fetch with backoff.
                    raise ServerError(f"could not fetch version {wanted} after its notice")
