"""The whole document: `GET` exports it, `PUT` applies it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from graylane_server.deps import Editor, Reason, SessionDep, Viewer
from graylane_server.errors import Conflict, InvalidDocument, responses
from graylane_server.http import DocumentBody, JsonObject
from graylane_server.ops.encoding import SafeJSONResponse
from graylane_server.state import service

router = APIRouter(prefix="/api/v1/state", tags=["state"])


class KindResult(BaseModel):
    created: list[str]
    updated: dict[str, list[dict[str, Any]]]
    deleted: list[str]
    unchanged: int


class ApplyResult(BaseModel):
    dry_run: bool
    changes: int
    flags: KindResult
    segments: KindResult


@router.get("", responses=responses())
def export_state(session: SessionDep, _: Viewer) -> JSONResponse:
    """Every flag and segment as one document, which `PUT` applies back unchanged."""
    return SafeJSONResponse(service.export(session))


@router.put("", response_model=ApplyResult, responses=responses(InvalidDocument, Conflict))
def apply_state(
    session: SessionDep,
    principal: Editor,
    reason: Reason,
    dry_run: Annotated[bool, Query(description="Only report what would change.")] = False,
    prune: Annotated[
        bool, Query(description="Delete flags and segments the document leaves out.")
    ] = True,
    body: JsonObject = DocumentBody,
) -> ApplyResult:
    """Make the stored flags and segments equal the document, in one transaction.

    Applying the same document again changes nothing. An invalid document is refused
    whole (422, every problem with its path) and nothing is written."""
    plan = service.apply(
        session,
        actor=principal.actor,
        raw=body,
        dry_run=dry_run,
        prune=prune,
        reason=reason or "state applied",
    )

    def kind(p: service.KindPlan) -> KindResult:
        return KindResult(
            created=p.created, updated=p.updated, deleted=p.deleted, unchanged=p.unchanged
        )

    return ApplyResult(
        dry_run=dry_run, changes=plan.changes, flags=kind(plan.flags), segments=kind(plan.segments)
    )
