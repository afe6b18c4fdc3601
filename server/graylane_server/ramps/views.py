"""The ramp as people see it: where it stands, what the guards read, why it holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from graylane_server.ramps import guards, signals
from graylane_server.ramps.decision import Advance, Hold, Pause, Rollback, decide
from graylane_server.ramps.guards import StageCounts
from graylane_server.ramps.service import Loaded, load
from graylane_server.usage.store import UsageStore


class ReadingOut(BaseModel):
    guard: str
    kind: str
    status: str
    detail: str
    value: float | None
    control: float | None
    limit: float | None
    warn: float | None
    samples: int


class RampView(BaseModel):
    flag: str
    environment: str
    status: str
    stage: int
    stages: list[float]
    percentage: float
    version: int
    """Send as `If-Match` with `advance` and `restart`."""
    auto_advance: bool
    min_stage_duration: float
    min_samples: int
    on_breach: str
    protected: bool
    approval_above: float | None
    stage_started_at: datetime | None
    started_at: datetime | None
    reason: str | None
    """Why the last transition happened."""
    exposures: int
    holding: str | None
    """Why the controller would not advance right now (None when it would)."""
    next_action: str
    """What the controller would do now: advance, hold, pause or rollback."""
    readings: list[ReadingOut]
    counts: dict[str, dict[str, int]]


def stage_readings(
    session: Session, loaded: Loaded, usage: UsageStore, now: float, prometheus_url: str | None
) -> tuple[StageCounts, list[guards.Reading]]:
    state = loaded.state
    counts = StageCounts()
    if state.status in ("running", "paused"):
        counts = signals.stage_counts(
            usage, loaded.environment, loaded.flag.key, state.stage_started_at, now
        )
    external = signals.external(session, loaded.plan, prometheus_url)
    readings = [
        guards.read(g, counts, external, min_samples=loaded.plan.min_samples)
        for g in loaded.plan.guards
    ]
    return counts, readings


def view(
    session: Session,
    key: str,
    environment: str,
    *,
    usage: UsageStore,
    now: float,
    prometheus_url: str | None,
) -> RampView:
    loaded = load(session, key, environment)
    counts, readings = stage_readings(session, loaded, usage, now, prometheus_url)
    decision = decide(
        loaded.plan,
        loaded.state,
        readings,
        counts.exposed.requests,
        now,
        approval_level=loaded.approval_level,
    )
    holding = decision.reason if isinstance(decision, Hold | Pause | Rollback) else None
    action = {Advance: "advance", Hold: "hold", Pause: "pause", Rollback: "rollback"}[
        type(decision)
    ]
    row, plan = loaded.row, loaded.plan
    raw_counts: dict[str, Any] = {
        "exposed": dict(counts.exposed.events),
        "unexposed": dict(counts.unexposed.events),
    }
    return RampView(
        flag=key,
        environment=environment,
        status=loaded.state.status,
        stage=loaded.state.stage,
        stages=[float(s) for s in plan.stages],
        percentage=float(loaded.percentage),
        version=0 if row is None else row.version,
        auto_advance=plan.auto_advance,
        min_stage_duration=plan.min_stage_duration,
        min_samples=plan.min_samples,
        on_breach=plan.on_breach,
        protected=loaded.protected,
        approval_above=None if plan.approval_above is None else float(plan.approval_above),
        stage_started_at=None if row is None else row.stage_started_at,
        started_at=None if row is None else row.started_at,
        reason=None if row is None else row.reason,
        exposures=counts.exposed.requests,
        holding=holding,
        next_action=action,
        readings=[_reading(r) for r in readings],
        counts=raw_counts,
    )


def _reading(reading: guards.Reading) -> ReadingOut:
    return ReadingOut(
        guard=reading.guard,
        kind=reading.kind,
        status=reading.status,
        detail=reading.detail,
        value=reading.value,
        control=reading.control,
        limit=reading.limit,
        warn=reading.warn,
        samples=reading.samples,
    )
