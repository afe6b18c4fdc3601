"""Alerts from outside that trip webhook guards."""

from __future__ import annotations

from sqlalchemy.orm import Session

from graylane_server.audit.service import record
from graylane_server.models import GuardAlertRow, utcnow


def set_state(
    session: Session, *, actor: str, name: str, firing: bool, detail: str | None
) -> GuardAlertRow:
    row = session.get(GuardAlertRow, name, with_for_update=True)
    before = None if row is None else {"firing": row.firing, "detail": row.detail}
    if row is None:
        row = GuardAlertRow(name=name, firing=firing, detail=detail, updated_at=utcnow())
        session.add(row)
    else:
        row.firing, row.detail, row.updated_at = firing, detail, utcnow()
    after = {"firing": firing, "detail": detail}
    if before != after:
        record(
            session,
            actor=actor,
            action="guard.alert",
            target_type="guard",
            target_key=name,
            before=before,
            after=after,
        )
    return row
