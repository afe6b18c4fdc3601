"""Reading the audit log. There is no endpoint that changes it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from graylane_server.audit.repository import AuditFilter, page
from graylane_server.deps import SessionDep, Viewer
from graylane_server.errors import responses

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_key: str
    environment: str | None
    reason: str | None
    changes: list[dict[str, Any]]
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_before: int | None
    """Pass as `before` to read the next, older page; null on the last page."""


@router.get("", response_model=AuditPage, responses=responses())
def list_audit(
    session: SessionDep,
    _: Viewer,
    flag: Annotated[str | None, Query(description="Entries about this flag.")] = None,
    target_type: Annotated[str | None, Query(description="flag, segment, token, ...")] = None,
    target: Annotated[str | None, Query(description="Entries about this key.")] = None,
    actor: Annotated[str | None, Query(description="e.g. `token:ci` or `user:ana`.")] = None,
    environment: str | None = None,
    action: Annotated[str | None, Query(description="e.g. `flag.update`.")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Continue below this entry id.")
    ] = None,
) -> AuditPage:
    """Newest first."""
    where = AuditFilter(
        target_type="flag" if flag is not None else target_type,
        target_key=flag if flag is not None else target,
        actor=actor,
        environment=environment,
        action=action,
        since=since,
        until=until,
    )
    rows = page(session, where, before_id=before, limit=limit)
    entries = [
        AuditEntry(
            id=r.id,
            at=r.at,
            actor=r.actor,
            action=r.action,
            target_type=r.target_type,
            target_key=r.target_key,
            environment=r.environment,
            reason=r.reason,
            changes=(r.changes or {}).get("changes", []),
            before=r.before,
            after=r.after,
        )
        for r in rows
    ]
    return AuditPage(entries=entries, next_before=entries[-1].id if len(entries) == limit else None)
