"""All SQL about the audit log: reading only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane_server.models import AuditRow


@dataclass(frozen=True, slots=True)
class AuditFilter:
    target_type: str | None = None
    target_key: str | None = None
    actor: str | None = None
    environment: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def page(
    session: Session, where: AuditFilter, *, before_id: int | None, limit: int
) -> Sequence[AuditRow]:
    """Newest first; `before_id` continues from the previous page's last entry."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if where.target_type is not None:
        query = query.where(AuditRow.target_type == where.target_type)
    if where.target_key is not None:
        query = query.where(AuditRow.target_key == where.target_key)
    if where.actor is not None:
        query = query.where(AuditRow.actor == where.actor)
    if where.environment is not None:
        query = query.where(AuditRow.environment == where.environment)
    if where.action is not None:
        query = query.where(AuditRow.action == where.action)
    if where.since is not None:
        query = query.where(AuditRow.at >= where.since)
    if where.until is not None:
        query = query.where(AuditRow.at < where.until)
    if before_id is not None:
        query = query.where(AuditRow.id < before_id)
    return session.scalars(query).all()
