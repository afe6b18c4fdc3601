"""All SQL about tokens."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
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


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(TokenRow)) or 0
