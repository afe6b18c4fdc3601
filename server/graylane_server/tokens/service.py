"""Minting, listing and revoking tokens."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane_server.audit.service import record
from graylane_server.configs.notices import notify_after_commit
from graylane_server.errors import BadRequest, NotFound, TooManyRequests
from graylane_server.models import Environment, TokenRow, utcnow
from graylane_server.ratelimit import Limiter

from . import repository
from .principal import Principal, Role
from .secrets import hash_token, hint, new_token


def create(
    session: Session,
    *,
    actor: str,
    kind: str,
    name: str | None = None,
    role: Role | None = None,
    environment: str | None = None,
    secret: str | None = None,
) -> tuple[TokenRow, str]:
    """A new token and its secret, which is returned here and never again."""
    if (
        environment is not None
        and session.scalar(select(Environment.id).where(Environment.key == environment)) is None
    ):
        raise NotFound(f"no environment {environment!r}")
    secret = secret or new_token(kind)
    row = TokenRow(
        name=name or (f"sdk-{environment}" if kind == "sdk" else f"{role}-token"),
        kind=kind,
        role=None if role is None else str(role),
        environment=environment,
        secret_hash=hash_token(secret),
        hint=hint(secret),
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="token.create",
        target_type="token",
        target_key=str(row.id),
        environment=environment,
        after=_public(row),
    )
    return row, secret


def count_creation(limiter: Limiter, caller: Principal, *, most: int, window: float) -> None:
    """Count one token minted by `caller` (a token or a UI user), or refuse with 429 once
    it has minted `most` in `window` seconds (`GRAYLANE_TOKEN_CREATE_*`). The API and the
    admin UI count in the same limiter, so neither is a way around the other."""
    key = f"{caller.actor}#{caller.id}"
    wait = limiter.retry_after(key)
    if wait > 0:
        raise TooManyRequests(
            f"at most {most} tokens per {window:g} seconds; retry after "
            f"{max(1, round(wait))} seconds",
            retry_after=wait,
        )
    limiter.record(key)


def admin_exists(session: Session) -> bool:
    """Whether someone holds a token that can administer the server."""
    return repository.admin_exists(session)


def listing(session: Session, *, include_revoked: bool = False) -> Sequence[TokenRow]:
    return repository.listing(session, include_revoked=include_revoked)


def revoke(session: Session, *, actor: str, token_id: int, reason: str | None) -> TokenRow:
    row = repository.by_id(session, token_id)
    if row is None:
        raise NotFound(f"no token with id {token_id}")
    if row.revoked_at is not None:
        return row
    before = _public(row)
    row.revoked_at = utcnow()
    record(
        session,
        actor=actor,
        action="token.revoke",
        target_type="token",
        target_key=str(row.id),
        environment=row.environment,
        before=before,
        after=_public(row),
        reason=reason,
    )
    notify_after_commit(session, {"type": "token_revoked", "hash": row.secret_hash})
    return row


def bootstrap(session: Session, secret: str) -> bool:
    """Make `secret` an admin token when the database has no tokens at all. Safe to run
    from many processes at once: one of them makes it, the others find it made."""
    repository.lock_for_bootstrap(session)
    if repository.count(session) > 0:
        return False
    if not secret.strip():
        raise BadRequest("the bootstrap admin token must not be empty")
    create(session, actor="system", kind="admin", name="bootstrap", role=Role.ADMIN, secret=secret)
    return True


def _public(row: TokenRow) -> dict[str, object]:
    return {
        "name": row.name,
        "kind": row.kind,
        "role": row.role,
        "environment": row.environment,
        "hint": row.hint,
        "revoked": row.revoked_at is not None,
    }
