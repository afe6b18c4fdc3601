"""Ramp endpoints: read where a ramp stands and why; start, advance, pause, resume, roll
back or restart it; let alerting systems trip guards; stop a whole environment."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from graylane_server.deps import (
    Editor,
    IfMatchVersion,
    Reason,
    ReleaseManager,
    RuntimeDep,
    SessionDep,
    Viewer,
)
from graylane_server.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    responses,
)
from graylane_server.models import utcnow
from graylane_server.ramps import alerts, emergency, service
from graylane_server.ramps.views import RampView, view
from graylane_server.runtime import Runtime

router = APIRouter(tags=["ramps"])
RAMP = "/api/v1/flags/{key}/environments/{environment}/ramp"


def _view(session: Session, key: str, environment: str, runtime: Runtime) -> RampView:
    return view(
        session,
        key,
        environment,
        usage=runtime.usage,
        now=time.time(),
        prometheus_url=runtime.settings.prometheus_url,
        missing_since=runtime.controller.missing.get((key, environment)),
    )


@router.get(RAMP, response_model=RampView, responses=responses(NotFound))
async def get_ramp(key: str, environment: str, runtime: RuntimeDep, _: Viewer) -> RampView:
    """Status, stage, percentage, each guard's reading and why the ramp is holding."""

    def read() -> RampView:
        with runtime.sessions() as session:
            return _view(session, key, environment, runtime)

    return await run_in_threadpool(read)


class RampSummary(BaseModel):
    flag: str
    environment: str
    status: str
    stage: int
    percentage: float
    version: int
    reason: str | None


@router.get("/api/v1/ramps", response_model=list[RampSummary], responses=responses())
def list_ramps(session: SessionDep, _: Viewer) -> list[RampSummary]:
    """Every ramp that has started, wherever it stands."""
    return [
        RampSummary(
            flag=r.flag,
            environment=r.environment,
            status=r.status,
            stage=r.stage,
            percentage=float(r.percentage),
            version=r.version,
            reason=r.reason,
        )
        for r in service.listing(session)
    ]


@router.post(
    RAMP + "/{action}",
    response_model=RampView,
    responses=responses(NotFound, Conflict, PreconditionFailed, PreconditionRequired),
)
def ramp_action(
    key: str,
    environment: str,
    action: Annotated[
        service.Action, Path(description="start, advance, pause, resume, rollback, restart")
    ],
    session: SessionDep,
    principal: Editor,
    runtime: RuntimeDep,
    if_match: IfMatchVersion,
    reason: Reason,
) -> RampView:
    """Move the ramp. `advance` and `restart` need the ramp's version in `If-Match`, so a
    double click or two people at once move it once; the others are idempotent. In a
    protected environment, raising exposure past the plan's `approval_above` (if set) needs
    a release manager, and the controller stops there for one."""
    if action == "advance":
        _refuse_past_a_breach(key, environment, runtime)
    service.act(
        session,
        principal=principal,
        key=key,
        environment=environment,
        action=action,
        expected_version=if_match,
        reason=reason,
        now=utcnow(),
    )
    session.flush()
    return _view(session, key, environment, runtime)


def _refuse_past_a_breach(key: str, environment: str, runtime: RuntimeDep) -> None:
    """A person may advance before the stage's time or samples are in, never past a guard
    that reads breached: that calls for a rollback, not more exposure."""
    with runtime.readers() as session:
        current = _view(session, key, environment, runtime)
    breached = [r for r in current.readings if r.status == "breach"]
    if breached:
        raise Conflict(
            f"guard {breached[0].guard} is breached ({breached[0].detail}): roll back or "
            "investigate before advancing"
        )


class AlertmanagerAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook body (other fields are accepted and ignored)."""

    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    alerts: list[AlertmanagerAlert] = Field(default_factory=list)


class AlertState(BaseModel):
    name: str
    firing: bool
    detail: str | None


@router.post("/api/v1/guards/alerts/{name}", response_model=AlertState, responses=responses())
def receive_alert(
    name: str, body: AlertmanagerPayload, session: SessionDep, principal: ReleaseManager
) -> AlertState:
    """Where an alerting system (Alertmanager's webhook format) trips a `webhook` guard
    named `name`: firing alerts trip it, `resolved` clears it. The controller rolls back
    ramps whose guard is tripped at its next tick."""
    firing = body.status == "firing" and (
        not body.alerts or any(a.status == "firing" for a in body.alerts)
    )
    detail = (
        "; ".join(
            a.annotations.get("summary") or a.labels.get("alertname", "alert") for a in body.alerts
        )
        or None
    )
    row = alerts.set_state(session, actor=principal.actor, name=name, firing=firing, detail=detail)
    return AlertState(name=row.name, firing=row.firing, detail=row.detail)


class StopBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class StopResult(BaseModel):
    environment: str
    flags_disabled: list[str]
    ramps_paused: list[str]


@router.post(
    "/api/v1/environments/{environment}/emergency-stop",
    response_model=StopResult,
    responses=responses(NotFound),
)
def emergency_stop(
    environment: str,
    session: SessionDep,
    principal: ReleaseManager,
    body: Annotated[StopBody, Body()],
) -> StopResult:
    """Stop every running ramp and serve each flag's off variant in this environment, in
    one transaction, with one audit entry per flag."""
    disabled, paused = emergency.stop(
        session, actor=principal.actor, environment=environment, reason=body.reason, now=utcnow()
    )
    return StopResult(environment=environment, flags_disabled=disabled, ramps_paused=paused)
