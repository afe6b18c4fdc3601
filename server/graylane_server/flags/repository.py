"""All SQL about flags."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane_server.models import FlagRow


def get(session: Session, key: str, *, for_update: bool = False) -> FlagRow | None:
    query = select(FlagRow).where(FlagRow.key == key)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def listing(session: Session) -> Sequence[FlagRow]:
    return session.scalars(select(FlagRow).order_by(FlagRow.key)).all()


def all_by_key(session: Session) -> dict[str, FlagRow]:
    return {row.key: row for row in listing(session)}
