"""Writing audit entries: always in the transaction of the change they describe."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from graylane_server.models import AuditRow, utcnow

from .diff import json_diff


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_key: str,
    environment: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditRow:
    entry = AuditRow(
        at=utcnow(),
        actor=actor,
        action=action,
        target_type=target_type,
        target_key=target_key,
        environment=environment,
        before=before,
        after=after,
        changes={"changes": json_diff(before or {}, after or {})},
        reason=reason,
    )
    session.add(entry)
    return entry
