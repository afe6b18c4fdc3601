"""Failed sign-ins, counted over a sliding window twice: per username and address (one
person mistyping), and per address whatever the username (one client trying many names,
which the first count alone would never stop).

In Redis when the server has it, so every replica sees the same count (a password can be
guessed, so a replica must not grant its own share of attempts); in memory otherwise (the
embedded default runs one process). See `graylane_server.ratelimit`.
"""

from __future__ import annotations

from graylane_server.ratelimit import Limiter, MemoryLimiter, RedisLimiter


def limiter_key(username: str, address: str) -> str:
    return f"{username.strip().lower()}|{address}"


def create_limiter(
    redis_url: str | None, max_failures: int, window: float, *, namespace: str = "login-failures"
) -> Limiter:
    if redis_url:
        return RedisLimiter(
            redis_url,
            max_failures,
            window,
            namespace=namespace,
            log_event="login_limiter.redis_unavailable",
        )
    return MemoryLimiter(max_failures, window)
