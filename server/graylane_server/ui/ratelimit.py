"""Failed sign-ins, counted per username and address over a sliding window.

In Redis when the server has it, so every replica sees the same count (a password can be
guessed, so a replica must not grant its own share of attempts); in memory otherwise (the
embedded default runs one process). See `graylane_server.ratelimit`.
"""

from __future__ import annotations

from graylane_server.ratelimit import Limiter, MemoryLimiter, RedisLimiter


def limiter_key(username: str, address: str) -> str:
    return f"{username.strip().lower()}|{address}"


def create_limiter(redis_url: str | None, max_failures: int, window: float) -> Limiter:
    if redis_url:
        return RedisLimiter(
            redis_url,
            max_failures,
            window,
            namespace="login-failures",
            log_event="login_limiter.redis_unavailable",
        )
    return MemoryLimiter(max_failures, window)
