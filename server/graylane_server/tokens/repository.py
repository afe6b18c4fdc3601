"""All SQL about tokens."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from graylane_server.models import TokenRow


def by_hash(session: Session, secret_hash: str) -> TokenRow | None:
    return session.scalars(select(TokenRow).where(TokenRow.secret_hash == secret_hash)).first()


def by_id(session: Session, token_id: int) -> TokenRow | None:
    return session.get(TokenRow, token_id)


def listing(session: Session, *, include_revoked: bool) -> Sequence[TokenRow]:
    query = select(TokenRow).order_by(TokenRow.id)
    if not include_revoked:
        query = query.where(TokenRow.revoked_at.is_(None))
    return session.scalars(query).all()


def admin_exists(session: Session) -> bool:
    """Whether an unrevoked admin token with the admin role exists."""
    query = select(TokenRow.id).where(
        TokenRow.kind == "admin", TokenRow.role == "admin", TokenRow.revoked_at.is_(None)
    )
    return session.scalars(query.limit(1)).first() is not None


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(TokenRow)) or 0


BOOTSTRAP_LOCK = int.from_bytes(b"gl-boot")
"""Any fixed bigint, apart from the migration lock's."""


def lock_for_bootstrap(session: Session) -> None:
    """Until the transaction ends, be the only one deciding whether the database is empty:
    replicas and workers starting together would otherwise all find no tokens and all
    insert the bootstrap token. On SQLite a writer's transaction already holds the one
    write lock (see `graylane_server.db`)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BOOTSTRAP_LOCK})
