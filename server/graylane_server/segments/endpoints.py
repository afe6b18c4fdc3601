"""Segment endpoints."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from graylane_server.deps import Editor, IfMatchVersion, Reason, SessionDep, Viewer
from graylane_server.errors import (
    Conflict,
    InvalidDocument,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    responses,
)
from graylane_server.http import DocumentBody, JsonObject, put_answer, versioned
from graylane_server.segments import service

router = APIRouter(prefix="/api/v1/segments", tags=["segments"])


class SegmentSummary(BaseModel):
    key: str
    version: int
    description: str
    updated_at: datetime
    used_by: list[str]


class SegmentList(BaseModel):
    segments: list[SegmentSummary]


@router.get("", response_model=SegmentList, responses=responses())
def list_segments(session: SessionDep, _: Viewer) -> SegmentList:
    return SegmentList(
        segments=[
            SegmentSummary(
                key=row.key,
                version=row.version,
                description=row.definition.get("description", ""),
                updated_at=row.updated_at,
                used_by=service.users_of(session, row.key),
            )
            for row in service.listing(session)
        ]
    )


@router.get("/{key}", responses=responses(NotFound))
def get_segment(key: str, session: SessionDep, _: Viewer) -> JSONResponse:
    row = service.get(session, key)
    return versioned(row.definition, row.version)


@router.put(
    "/{key}",
    responses={
        201: {"description": "Created: there was no segment with this key."},
        **responses(PreconditionFailed, PreconditionRequired, InvalidDocument),
    },
)
def put_segment(
    key: str,
    session: SessionDep,
    principal: Editor,
    if_match: IfMatchVersion,
    reason: Reason,
    body: JsonObject = DocumentBody,
) -> JSONResponse:
    """Create a segment, or replace it with `If-Match: "<version>"`."""
    row, changed = service.put(
        session,
        actor=principal.actor,
        key=key,
        definition=body,
        expected_version=if_match,
        reason=reason,
    )
    return put_answer(row.definition, row.version, changed=changed)


@router.delete(
    "/{key}", status_code=204, responses=responses(NotFound, Conflict, PreconditionFailed)
)
def delete_segment(
    key: str, session: SessionDep, principal: Editor, if_match: IfMatchVersion, reason: Reason
) -> Response:
    """Refused with 409 while a flag's rules still use the segment."""
    service.delete(
        session, actor=principal.actor, key=key, expected_version=if_match, reason=reason
    )
    return Response(status_code=204)
