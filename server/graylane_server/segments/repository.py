"""All SQL about segments."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane_server.models import SegmentRow


def get(session: Session, key: str, *, for_update: bool = False) -> SegmentRow | None:
    query = select(SegmentRow).where(SegmentRow.key == key)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def listing(session: Session) -> Sequence[SegmentRow]:
    return session.scalars(select(SegmentRow).order_by(SegmentRow.key)).all()


def all_by_key(session: Session) -> dict[str, SegmentRow]:
    return {row.key: row for row in listing(session)}
