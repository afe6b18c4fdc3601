"""Sliding-window limits: at most `max_events` events per key within `window` seconds.

Used for failed admin UI sign-ins (per username and address), failed token
authentications (per address) and token creation (per caller). Events are counted in
memory, or in Redis where every replica must see the same count; a Redis limiter falls
back to memory if Redis stops answering, rather than letting every attempt through or
locking everyone out.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import deque
from typing import Protocol

import redis
import structlog

log = structlog.get_logger(__name__)

MAX_KEYS = 100_000
"""A memory limiter forgets keys with no recent events beyond this many, so a spray of
distinct keys cannot grow it without bound."""


class Limiter(Protocol):
    def retry_after(self, key: str) -> float:
        """Seconds until `key` may have another event; 0 when it may now."""
        ...

    def record(self, key: str) -> None:
        """Count one event for `key`."""
        ...

    def reset(self, key: str) -> None:
        """Forget `key`'s events."""
        ...


class MemoryLimiter:
    def __init__(self, max_events: int, window: float) -> None:
        self._max = max_events
        self._window = window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self._window:
            events.popleft()
        return events

    def retry_after(self, key: str) -> float:
        now = time.time()
        with self._lock:
            events = self._recent(key, now)
            if len(events) < self._max:
                if not events:
                    self._events.pop(key, None)
                return 0.0
            return max(1.0, events[-self._max] + self._window - now)

    def record(self, key: str) -> None:
        now = time.time()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._events) > MAX_KEYS:
                horizon = now - self._window
                self._events = {k: v for k, v in self._events.items() if v and v[-1] > horizon}

    def reset(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)


class RedisLimiter:
    """A sorted set of event times per key, expiring with the window."""

    def __init__(
        self, url: str, max_events: int, window: float, *, namespace: str, log_event: str
    ) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._max = max_events
        self._window = window
        self._namespace = namespace
        self._log_event = log_event
        self._fallback = MemoryLimiter(max_events, window)

    def _key(self, key: str) -> str:
        return f"graylane:{self._namespace}:" + hashlib.sha256(key.encode()).hexdigest()[:32]

    def retry_after(self, key: str) -> float:
        now = time.time()
        name = self._key(key)
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.zremrangebyscore(name, "-inf", now - self._window)
                pipe.zrange(name, -self._max, -self._max, withscores=True)
                pipe.zcard(name)
                _, oldest, count = pipe.execute()
        except redis.RedisError as exc:
            log.warning(self._log_event, error=str(exc))
            return self._fallback.retry_after(key)
        if int(count) < self._max or not oldest:
            return self._fallback.retry_after(key)
        return max(1.0, float(oldest[0][1]) + self._window - now)

    def record(self, key: str) -> None:
        now = time.time()
        name = self._key(key)
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(name, {f"{now}:{uuid.uuid4().hex[:8]}": now})
                pipe.expire(name, int(self._window) + 1)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning(self._log_event, error=str(exc))
            self._fallback.record(key)

    def reset(self, key: str) -> None:
        self._fallback.reset(key)
        try:
            self._redis.delete(self._key(key))
        except redis.RedisError as exc:
            log.warning(self._log_event, error=str(exc))
