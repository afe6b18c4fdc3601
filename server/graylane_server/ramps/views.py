"""The ramp as people see it: where it stands, what the guards read, why it holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy.orm import Session

from graylane_server.ramps import guards, signals
from graylane_server.ramps.decision import (
    Advance,
    Hold,
    Pause,
    RampState,
    Rollback,
    decide,
    stage_exposures,
)
from graylane_server.ramps.observations import Observations
from graylane_server.ramps.service import Loaded, load
from graylane_server.usage.store import BUCKET_SECONDS, UsageStore

WATCHED = frozenset({"running", "paused", "completed"})
"""Statuses with units on the change, whose guards are read."""


class ReadingOut(BaseModel):
    guard: str
    kind: str
    status: str
    detail: str
    """What the guard reads, and why it holds, in words."""
    value: float | None
    control: float | None
    limit: float | None
    warn: float | None
    samples: int
    lower: float | None
    """Always-valid lower bound of the harm, on the scale of `value` and `limit` (for a
    relative guard the exposed-to-unexposed ratio: 1.0 is "the same")."""
    upper: float | None
    """Always-valid upper bound of the harm (None: not bounded yet)."""
    needs: float | None
    """Seconds more at the current traffic until the guard can show harm below `limit`."""
    interval: str | None
    """The interval against the threshold, in words."""


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
    watch_completed: float
    """Seconds the guards keep watching once the ramp reaches 100%."""
    watching_until: datetime | None
    """While the ramp is completed and still watched, when the watch ends."""
    exposures: int
    holding: str | None
    """Why the controller would not advance right now (None when it would)."""
    next_action: str
    """What the controller would do now: advance, hold, pause or rollback."""
    readings: list[ReadingOut]
    counts: dict[str, dict[str, int]]


def stage_readings(
    session: Session,
    loaded: Loaded,
    usage: UsageStore,
    now: float,
    prometheus_url: str | None,
    *,
    missing_since: Mapping[str, float] | None = None,
) -> tuple[Observations, list[guards.Reading]]:
    """What the SDKs reported since the ramp (this attempt) started, and every guard's
    reading of it. `missing_since`: guard label -> since when its query has had no value,
    as the controller has seen it."""
    state = loaded.state
    observations = Observations()
    if state.status in WATCHED:
        since = state.stage_started_at if state.started_at is None else state.started_at
        observations = signals.observations(
            usage, loaded.environment, loaded.flag.key, since, now + BUCKET_SECONDS
        )
    external = signals.external(session, loaded.plan, prometheus_url)
    if missing_since:
        external = replace(external, missing_since=dict(missing_since))
    return observations, guards.readings(loaded.plan, state, observations, external, now)


def view(
    session: Session,
    key: str,
    environment: str,
    *,
    usage: UsageStore,
    now: float,
    prometheus_url: str | None,
    missing_since: Mapping[str, float] | None = None,
) -> RampView:
    loaded = load(session, key, environment)
    observations, readings = stage_readings(
        session, loaded, usage, now, prometheus_url, missing_since=missing_since
    )
    decision = decide(
        loaded.plan,
        loaded.state,
        readings,
        observations,
        now,
        approval_level=loaded.approval_level,
    )
    holding = decision.reason if isinstance(decision, Hold | Pause | Rollback) else None
    action = {Advance: "advance", Hold: "hold", Pause: "pause", Rollback: "rollback"}[
        type(decision)
    ]
    row, plan = loaded.row, loaded.plan
    exposures = stage_exposures(plan, loaded.state, observations)
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
        watch_completed=plan.watch_completed,
        watching_until=_watching_until(loaded, now),
        exposures=exposures,
        holding=holding,
        next_action=action,
        readings=[_reading(r) for r in readings],
        counts=stage_counts(loaded.plan.stages, loaded.state, observations),
    )


def stage_counts(
    stages: tuple[Decimal, ...], state: RampState, observations: Observations
) -> dict[str, dict[str, int]]:
    """Group -> event -> how many the SDKs counted in this stage, at its percentage."""
    out: dict[str, dict[str, int]] = {"exposed": {}, "unexposed": {}}
    if state.stage < 0:
        return out
    for piece in observations.at(stages[state.stage], state.stage_started_at):
        for name, group in (("exposed", piece.exposed), ("unexposed", piece.unexposed)):
            for event, series in group.series.items():
                out[name][event] = out[name].get(event, 0) + series.n
    return out


def _watching_until(loaded: Loaded, now: float) -> datetime | None:
    state = loaded.state
    if state.status != "completed":
        return None
    until = state.stage_started_at + loaded.plan.watch_completed
    return datetime.fromtimestamp(until, UTC) if until > now else None


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
        lower=reading.lower,
        upper=reading.upper,
        needs=reading.needs,
        interval=interval(reading),
    )


def interval(reading: guards.Reading) -> str | None:
    """The always-valid interval of the harm against the guard's threshold, in words:
    for a relative guard as the exposed group's difference from the unexposed one."""
    if reading.kind not in ("absolute", "relative") or reading.limit is None:
        return None
    if reading.lower is None and reading.upper is None:
        return None
    if reading.kind == "relative":

        def shown(x: float | None) -> str:
            return "?" if x is None else f"{(x - 1) * 100:+.3g}%"

        what = "exposed vs unexposed"
    else:

        def shown(x: float | None) -> str:
            return "?" if x is None else f"{x:.4g}"

        what = "exposed"
    upper = "unbounded" if reading.upper is None else shown(reading.upper)
    return f"{what}: {shown(reading.lower)} to {upper}, limit {shown(reading.limit)}"
