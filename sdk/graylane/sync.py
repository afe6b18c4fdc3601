"""Keeping a client's config current, in one background thread.

1. Fetch the config (with the ETag we hold, so an unchanged config costs a 304).
2. Listen to the change stream; on each notice newer than what we hold, fetch again.
3. When the stream drops or cannot be had, fetch once (ETag polling), wait a capped,
   jittered, growing delay (or the server's `Retry-After`), and try the stream again.
A failure never touches what the client serves: the last good config stays in place.
Nothing the server sends can stop the thread: every failure is counted by kind, reported
and followed by a fresh fetch after a delay.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable

import httpx

from graylane.sse import MAX_EVENT, Event
from graylane.transport import BadResponse, Fetched, KeyRefused, ServerError, Transport, printable

log = logging.getLogger("graylane")

RETRYABLE = (httpx.HTTPError, ServerError, OSError, ValueError)

KINDS = ("network", "refused", "status", "response", "config", "event", "unexpected")
"""Kinds of sync failure, as counted in `Synchronizer.errors`:
network: the server could not be reached; refused: it refused the SDK key (401/403);
status: it answered another unexpected status; response: an answer was unusable (too
large, malformed); config: a config body the SDK cannot install; event: a stream event
that is not a readable notice (the config is fetched instead); unexpected: anything else."""

MAX_BAD_EVENTS = 10
"""Unreadable events one stream connection may send before it is dropped and retried
after a delay: each one costs a config fetch."""


class UnusableConfig(ValueError):
    """A config body arrived but cannot be installed; the last good one stays."""


def failure_kind(exc: BaseException) -> str:
    if isinstance(exc, KeyRefused):
        return "refused"
    if isinstance(exc, ServerError):
        return "status" if exc.status is not None else "response"
    if isinstance(exc, UnusableConfig):
        return "config"
    if isinstance(exc, httpx.TransportError | OSError):
        return "network"
    if isinstance(exc, httpx.HTTPError | ValueError):
        return "response"
    return "unexpected"


def describe(url: str, exc: BaseException) -> str:
    """One line for logs, `last_error` and status callbacks, saying what went wrong in
    words that tell a refused key from a server that cannot be reached."""
    kind = failure_kind(exc)
    detail = printable(str(exc) or type(exc).__name__, 300)
    if kind == "refused":
        return (
            f"{url} refused the SDK key ({detail}); check the key, or create one with "
            "`graylane-server token create --sdk --env ENV`"
        )
    if kind == "status":
        return f"{url} answered {detail}"
    if kind == "network":
        return f"cannot reach {url} ({type(exc).__name__}: {detail})"
    if kind in ("response", "config", "event"):
        return f"unusable answer from {url}: {detail}"
    return f"error keeping the config from {url} current ({type(exc).__name__}: {detail})"


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
        current: Callable[[], None],
        failure: Callable[[Exception], None],
        stream: bool,
        poll_interval: float,
    ) -> None:
        """`install` takes a new config (raising UnusableConfig when it cannot);
        `contact` is called whenever the server is heard from, `current` when the config
        held is known to be the server's, `failure` for every failure."""
        self._transport = transport
        self._install = install
        self._held = held
        self._contact = contact
        self._current = current
        self._failure = failure
        self._stream = stream
        self._poll_interval = poll_interval
        self._stop = threading.Event()
        self._retry_after = 0.0
        self.errors: dict[str, int] = dict.fromkeys(KINDS, 0)
        """Failures so far by kind (keys fixed, so another thread may copy it any time)."""
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
        self._attempt(self.refresh)
        while not self._stop.is_set():
            if not self._stream:
                self._stop.wait(max(self._poll_interval, self._take_retry_after()))
                self._attempt(self.refresh)
                continue
            self._attempt(self._listen, backoff)
            if self._stop.is_set():
                break
            self._attempt(self.refresh)
            self._stop.wait(max(backoff.next(), self._take_retry_after()))

    def _attempt(self, step: Callable[..., object], *args: object) -> None:
        """Run one step; whatever it raises is counted and reported, never fatal."""
        try:
            step(*args)
        except Exception as exc:  # nothing may end the sync thread
            if self._stop.is_set():
                return
            kind = failure_kind(exc)
            self.errors[kind] += 1
            if isinstance(exc, ServerError):
                self._retry_after = max(self._retry_after, exc.retry_after)
            if kind == "unexpected":
                log.error("graylane: unexpected error in the sync thread", exc_info=exc)
            try:
                self._failure(exc)
            except Exception:
                log.exception("graylane: reporting a sync failure failed")

    def _take_retry_after(self) -> float:
        wait, self._retry_after = self._retry_after, 0.0
        return wait

    def refresh(self, wanted_version: int | None = None) -> bool:
        """Fetch until we hold `wanted_version` (a replica behind a load balancer may not
        have built it yet, so a few short retries), or once when no version is wanted.
        Raises what the fetch or the install raised."""
        for attempt in range(6):
            _, etag = self._held()
            fetched = self._transport.fetch_config(etag)
            self._contact()
            if fetched.body is not None:
                self._install(fetched)
            if wanted_version is None or (fetched.version or 0) >= wanted_version:
                self._current()
                return True
            if self._stop.wait(0.02 * 2**attempt):
                return False
        return False

    def _listen(self, backoff: Backoff) -> None:
        connected_at = time.monotonic()
        bad_events = 0
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
                notice = self._notice(event)
                if notice is None:
                    continue
                if notice is _UNREADABLE:
                    bad_events += 1
                    if bad_events > MAX_BAD_EVENTS:
                        raise BadResponse("the stream keeps sending unreadable events")
                    fetched = self.refresh()  # it may have been a change: ask
                else:
                    fetched = self._follow(notice)
                if not fetched and not self._stop.is_set():
                    # Heartbeats would keep this stream looking healthy while we serve an
                    # old config: drop it, and let the outer loop fetch with backoff.
                    raise ServerError("could not fetch the version a change notice announced")

    def _notice(self, event: Event) -> dict[str, object] | None:
        """The change notice an event carries; None for other events; _UNREADABLE (after
        counting and logging it) for one that cannot be read."""
        problem = None
        if event.oversized:
            problem = f"an event longer than {MAX_EVENT} characters"
        else:
            try:
                notice = json.loads(event.data)
            except Exception as exc:  # noqa: BLE001 - RecursionError when nested deep
                problem = f"an event that is not JSON ({type(exc).__name__})"
            else:
                if not isinstance(notice, dict) or notice.get("type") != "refetchEvaluation":
                    return None
                return notice
        self.errors["event"] += 1
        level = logging.WARNING if self.errors["event"] == 1 else logging.DEBUG
        log.log(level, "graylane: the stream sent %s; fetching the config instead", problem)
        return _UNREADABLE

    def _follow(self, notice: dict[str, object]) -> bool:
        version, etag = self._held()
        wanted = notice.get("version")
        if type(wanted) is int:
            if version is None or wanted > version:
                return self.refresh(wanted)
        elif notice.get("etag") != etag:
            return self.refresh()
        self._current()  # the notice names what we hold
        return True


_UNREADABLE: dict[str, object] = {}
"""Marks an event that could not be read (compared by identity)."""
