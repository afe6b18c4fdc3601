"""Turning a request's credentials into a principal.

Verified tokens are kept in memory for a short while, so evaluation and config requests
never touch the database on their way and keep working while it is down. Revocations
reach every replica through the bus; the time limit bounds a missed one.
"""

from __future__ import annotations

import time

from fastapi import Request
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from graylane_server.errors import GraylaneError, TooManyRequests, Unauthorized, Unavailable
from graylane_server.ratelimit import Limiter

from . import repository
from .principal import Principal, Role
from .secrets import hash_token

NEGATIVE_TTL = 5.0
"""Unknown tokens are remembered briefly, so a bad client cannot hammer the database."""
RECHECK_WHILE_DOWN = 1.0
"""Seconds between attempts to re-verify a known token while the database is unreachable."""


def credentials(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    api_key = request.headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


class Authenticator:
    def __init__(
        self, sessions: sessionmaker[Session], ttl: float, *, failures: Limiter | None = None
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._failures = failures
        """Failed authentications per client address; a valid token never consults it."""
        self._cache: dict[str, tuple[Principal | None, float]] = {}

    async def authenticate(self, request: Request) -> Principal:
        token = credentials(request)
        if token is None:
            raise Unauthorized(
                "missing credentials: send `Authorization: Bearer <token>` or `X-API-Key: <token>`"
            )
        principal = await self.principal_for(token)
        if principal is None:
            raise self._refusal(request)
        return principal

    def _refusal(self, request: Request) -> GraylaneError:
        """401 for an unknown or revoked token; 429 once its address has failed too often
        in the window. In memory, per process: a token cannot be guessed (256 random bits),
        so the limit only keeps a misconfigured or hostile client from hammering."""
        if self._failures is None:
            return Unauthorized("unknown or revoked token")
        address = request.client.host if request.client else "unknown"
        wait = self._failures.retry_after(address)
        if wait > 0:
            return TooManyRequests(
                "too many failed authentications from this address; retry after "
                f"{max(1, round(wait))} seconds with a valid token",
                retry_after=wait,
            )
        self._failures.record(address)
        return Unauthorized("unknown or revoked token")

    async def principal_for(self, token: str) -> Principal | None:
        secret_hash = hash_token(token)
        cached = self._cache.get(secret_hash)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            principal = await run_in_threadpool(self._lookup, secret_hash)
        except OperationalError as exc:
            if cached is not None and cached[0] is not None:
                # Verified before: stay trusted while the database is away, so config and
                # evaluation outlast the time limit. Nothing can revoke it there meanwhile,
                # and a revocation made through another replica still arrives (`forget`).
                self._cache[secret_hash] = (cached[0], time.monotonic() + RECHECK_WHILE_DOWN)
                return cached[0]
            raise Unavailable("the database is unreachable; try again shortly") from exc
        ttl = self._ttl if principal is not None else NEGATIVE_TTL
        self._cache[secret_hash] = (principal, time.monotonic() + ttl)
        return principal

    def forget(self, secret_hash: str) -> None:
        self._cache.pop(secret_hash, None)

    def _lookup(self, secret_hash: str) -> Principal | None:
        with self._sessions() as session:
            row = repository.by_hash(session, secret_hash)
            if row is None or row.revoked_at is not None:
                return None
            if row.kind == "sdk":
                return Principal("sdk", row.name, environment=row.environment, id=row.id)
            return Principal("admin", row.name, role=Role(row.role or Role.VIEWER), id=row.id)
