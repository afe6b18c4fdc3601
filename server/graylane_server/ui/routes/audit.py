"""The audit log: every change, newest first, filtered and paged by id."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from graylane_server.audit import repository as audits
from graylane_server.ui.auth import ViewerPage

router = APIRouter(prefix="/ui", include_in_schema=False)

AUDIT_PAGE = 50


@router.get("/audit")
def audit_log(
    *,
    page: ViewerPage,
    target: str = "",
    target_type: str = "",
    actor: str = "",
    action: str = "",
    environment: str = "",
    before: int | None = None,
) -> Response:
    where = audits.AuditFilter(
        target_type=target_type or None,
        target_key=target.strip() or None,
        actor=actor.strip() or None,
        environment=environment or None,
        action=action.strip() or None,
    )
    rows = audits.page(page.session, where, before_id=before, limit=AUDIT_PAGE)
    # Only the filters given: the form shows them and the paging links keep them.
    given = {
        "target": target,
        "target_type": target_type,
        "actor": actor,
        "action": action,
        "environment": environment,
    }
    env = page.chosen_environment()
    return page.render(
        "audit.html",
        active="audit",
        environment=env,
        rows=rows,
        filters={k: v for k, v in given.items() if v},
        next_before=rows[-1].id if len(rows) == AUDIT_PAGE else None,
        first_page=before is None,
    )
