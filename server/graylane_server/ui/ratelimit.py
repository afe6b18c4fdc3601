"""Failed sign-ins, counted per username and address over a sliding window.

In Redis when the server has it, so every replica sees the same count; in memory otherwise
(the embedded default runs one process). If Redis stops answering, the count falls back
to memory rather than letting every attempt through or locking everyone out.
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


class LoginLimiter(Protocol):
    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may try now."""
        ...

    def failed(self, key: str) -> None: ...

    def succeeded(self, key: str) -> None: ...


def limiter_key(username: str, address: str) -> str:
    return f"{username.strip().lower()}|{address}"


class MemoryLoginLimiter:
    def __init__(self, max_failures: int, window: float) -> None:
        self._max = max_failures
        self._window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        return failures

    def retry_after(self, key: str) -> float:
        now = time.time()
        with self._lock:
            failures = self._recent(key, now)
            if len(failures) < self._max:
                if not failures:
                    self._failures.pop(key, None)
                return 0.0
            return max(1.0, failures[-self._max] + self._window - now)

    def failed(self, key: str) -> None:
        now = time.time()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # bound memory under a spray of usernames
                self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class RedisLoginLimiter:
    """A sorted set of failure times per key, expiring with the window."""

    def __init__(self, url: str, max_failures: int, window: float) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._max = max_failures
        self._window = window
        self._fallback = MemoryLoginLimiter(max_failures, window)

    def _key(self, key: str) -> str:
        return "graylane:login-failures:" + hashlib.sha256(key.encode()).hexdigest()[:32]

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
            log.warning("login_limiter.redis_unavailable", error=str(exc))
            return self._fallback.retry_after(key)
        if int(count) < self._max or not oldest:
            return self._fallback.retry_after(key)
        return max(1.0, float(oldest[0][1]) + self._window - now)

    def failed(self, key: str) -> None:
        now = time.time()
        name = self._key(key)
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(name, {f"{now}:{uuid.uuid4().hex[:8]}": now})
                pipe.expire(name, int(self._window) + 1)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("login_limiter.redis_unavailable", error=str(exc))
            self._fallback.failed(key)

    def succeeded(self, key: str) -> None:
        self._fallback.succeeded(key)
        try:
            self._redis.delete(self._key(key))
        except redis.RedisError as exc:
            log.warning("login_limiter.redis_unavailable", error=str(exc))


def create_limiter(redis_url: str | None, max_failures: int, window: float) -> LoginLimiter:
    if redis_url:
        return RedisLoginLimiter(redis_url, max_failures, window)
    return MemoryLoginLimiter(max_failures, window)
