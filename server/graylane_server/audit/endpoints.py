"""Reading the audit log. There is no endpoint that changes it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from graylane_server.audit.repository import AuditFilter, page
from graylane_server.deps import SessionDep, Viewer
from graylane_server.errors import responses
from graylane_server.ops.encoding import SafeJSONResponse

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
) -> SafeJSONResponse:
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
    result = AuditPage(
        entries=entries, next_before=entries[-1].id if len(entries) == limit else None
    )
    return SafeJSONResponse(_encoded(result))


_STORED = frozenset({"changes", "before", "after"})


def _encoded(result: AuditPage) -> dict[str, Any]:
    """The page as JSON values. The stored values are passed on as they are: pydantic's
    JSON mode gives up past some 250 levels of nesting, which an entry written before the
    edge limits may hold; json.dumps encodes them."""
    body = result.model_dump(mode="json", exclude={"entries": {"__all__": set(_STORED)}})
    for encoded, entry in zip(body["entries"], result.entries, strict=True):
        encoded.update((name, getattr(entry, name)) for name in _STORED)
    return body
