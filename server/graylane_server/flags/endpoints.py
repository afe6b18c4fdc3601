"""Flag endpoints: HTTP only; the service does the work."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from graylane_server.deps import Editor, IfMatchVersion, Reason, ReleaseManager, SessionDep, Viewer
from graylane_server.errors import (
    InvalidDocument,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    responses,
)
from graylane_server.flags import service
from graylane_server.flags.schemas import EnabledBody, EnvironmentSummary, FlagList, FlagSummary
from graylane_server.http import DocumentBody, JsonObject, put_answer, versioned
from graylane_server.models import FlagRow

router = APIRouter(prefix="/api/v1/flags", tags=["flags"])
WRITE_ERRORS = responses(NotFound, PreconditionFailed, PreconditionRequired, InvalidDocument)


def _summary(row: FlagRow) -> FlagSummary:
    definition = row.definition
    envs: dict[str, EnvironmentSummary] = {}
    for env, config in definition.get("environments", {}).items():
        rollout = config.get("fallthrough", {}).get("rollout")
        envs[env] = EnvironmentSummary(
            enabled=config.get("enabled", False),
            rollout=None if rollout is None else rollout["percentage"],
            ramp="ramp" in config,
            rules=len(config.get("rules", [])),
        )
    return FlagSummary(
        key=row.key,
        version=row.version,
        description=definition.get("description", ""),
        tags=definition.get("tags", []),
        updated_at=row.updated_at,
        environments=envs,
    )


@router.get("", response_model=FlagList, responses=responses())
def list_flags(
    session: SessionDep,
    _: Viewer,
    q: Annotated[str | None, Query(description="Text in the key or description.")] = None,
    tag: Annotated[str | None, Query(description="Only flags with this tag.")] = None,
) -> FlagList:
    rows = service.listing(session)
    summaries = [_summary(row) for row in rows]
    if q:
        needle = q.lower()
        summaries = [
            s for s in summaries if needle in s.key.lower() or needle in s.description.lower()
        ]
    if tag:
        summaries = [s for s in summaries if tag in s.tags]
    return FlagList(flags=summaries)


@router.get("/{key}", responses=responses(NotFound))
def get_flag(key: str, session: SessionDep, _: Viewer) -> JSONResponse:
    """The flag's definition; its version is the ETag."""
    row = service.get(session, key)
    return versioned(row.definition, row.version)


@router.put(
    "/{key}",
    responses={201: {"description": "Created: there was no flag with this key."}, **WRITE_ERRORS},
    status_code=200,
)
def put_flag(
    key: str,
    session: SessionDep,
    principal: Editor,
    if_match: IfMatchVersion,
    reason: Reason,
    body: JsonObject = DocumentBody,
) -> JSONResponse:
    """Create a flag, or replace it with `If-Match: "<version>"`."""
    row, changed = service.put(
        session,
        actor=principal.actor,
        key=key,
        definition=body,
        expected_version=if_match,
        reason=reason,
    )
    return put_answer(row.definition, row.version, changed=changed)


@router.delete("/{key}", status_code=204, responses=responses(NotFound, PreconditionFailed))
def delete_flag(
    key: str, session: SessionDep, principal: Editor, if_match: IfMatchVersion, reason: Reason
) -> Response:
    service.delete(
        session, actor=principal.actor, key=key, expected_version=if_match, reason=reason
    )
    return Response(status_code=204)


@router.get("/{key}/environments/{environment}", responses=responses(NotFound))
def get_flag_environment(
    key: str, environment: str, session: SessionDep, _: Viewer
) -> JSONResponse:
    row = service.get(session, key)
    config: Any = row.definition.get("environments", {}).get(environment)
    if config is None:
        raise NotFound(f"flag {key!r} has no configuration for {environment!r}")
    return versioned(config, row.version)


@router.put("/{key}/environments/{environment}", responses=WRITE_ERRORS)
def put_flag_environment(
    key: str,
    environment: str,
    session: SessionDep,
    principal: Editor,
    if_match: IfMatchVersion,
    reason: Reason,
    body: JsonObject = DocumentBody,
) -> JSONResponse:
    """Replace one environment's configuration; needs the flag's version in `If-Match`."""
    row, _ = service.put_environment(
        session,
        actor=principal.actor,
        key=key,
        environment=environment,
        config=body,
        expected_version=if_match,
        reason=reason,
    )
    return versioned(row.definition["environments"][environment], row.version)


@router.put("/{key}/environments/{environment}/enabled", responses=responses(NotFound))
def set_flag_enabled(
    key: str,
    environment: str,
    body: EnabledBody,
    session: SessionDep,
    principal: ReleaseManager,
    reason: Reason,
) -> JSONResponse:
    """The kill switch: `{"enabled": false}` serves the off variant to everyone at once."""
    row, _ = service.set_enabled(
        session,
        actor=principal.actor,
        key=key,
        environment=environment,
        enabled=body.enabled,
        reason=reason,
    )
    return versioned(row.definition["environments"][environment], row.version)
