"""The ramp controller's one decision, as a pure function of the plan, where the ramp
stands, the guard readings, what the SDKs reported and the time. No I/O: the controller,
the API's "why is it holding" and the simulation all call it.

A breach rolls back whether the ramp is running, paused (a warning stopped it advancing,
it still has users on the change) or completed (the controller only asks within the
plan's watch). Advancing needs positive evidence: every guard healthy (its upper bound
below its `max`), the stage's time and exposures counted from slices of the stage's own
percentage, and reports that are not stale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from graylane.core.model import RampPlan
from graylane_server.ramps.guards import Reading
from graylane_server.ramps.observations import REQUEST, Observations

RampStatus = Literal["draft", "running", "paused", "completed", "rolled_back"]


@dataclass(frozen=True, slots=True)
class RampState:
    status: RampStatus
    stage: int
    """Index into the plan's stages; -1 before the ramp starts."""
    stage_started_at: float
    """Unix seconds."""
    started_at: float | None = None
    """When the ramp (this attempt) started: guards carry evidence from then on, across
    stages and pauses. None: from the first observation given."""


STALE_AFTER = 60.0
"""Seconds the newest SDK window may lag the clock before a stage holds. An SDK flushes
every 10 s into 10-second buckets and the controller ticks every 5 s, so fresh data lags
by at most about 25 s; a minute allows one late flush without holding healthy ramps,
and beyond it the newest (possibly bad) traffic is missing from the evidence."""


@dataclass(frozen=True, slots=True)
class Advance:
    stage: int
    percentage: Decimal


@dataclass(frozen=True, slots=True)
class Hold:
    reason: str


@dataclass(frozen=True, slots=True)
class Pause:
    """A guard's warn level: stop advancing on our own and tell people."""

    reason: str
    guard: str


@dataclass(frozen=True, slots=True)
class Rollback:
    reason: str
    guard: str
    stage: int
    """The stage to go back to: -1 for 0%, or the previous stage when stepping back."""
    percentage: Decimal


Decision = Advance | Hold | Pause | Rollback


def decide(
    plan: RampPlan,
    state: RampState,
    readings: Sequence[Reading],
    observations: Observations | int,
    now: float,
    *,
    by_hand: bool = False,
    approval_level: Decimal | None = None,
) -> Decision:
    """What to do now. `by_hand` asks whether a person may advance (the auto-advance
    switch, pauses and the approval level do not stop a person; time, samples and guards
    do). `approval_level`, in a protected environment, is the percentage past which only
    a release manager advances: the controller holds there."""
    # 1. A breached guard rolls back any ramp with users on the change.
    if state.status in ("running", "paused", "completed"):
        for reading in readings:
            if reading.status == "breach":
                return _rollback(plan, state, reading)
    # 2. Only a running ramp moves on (a person may also advance a paused one).
    if state.status != "running" and not (by_hand and state.status == "paused"):
        return Hold(f"the ramp is {state.status.replace('_', ' ')}")
    # 3. A warning, a guard without data or a sample-ratio mismatch pauses automatic
    #    advance, visibly.
    if not by_hand and state.status == "running":
        for reading in readings:
            if reading.status == "warn":
                return Pause(f"guard {reading.guard} warns: {reading.detail}", reading.guard)
            if reading.status == "no_data":
                return Pause(f"guard {reading.guard} has no data: {reading.detail}", reading.guard)
            if reading.status == "mismatch":
                return Pause(reading.detail, reading.guard)
    if state.stage + 1 >= len(plan.stages):
        return Hold("the ramp is at its last stage")
    # 4. The stage must have run long enough, as reported, with enough exposures at its
    #    own percentage, all guards healthy.
    reported = now
    if isinstance(observations, int):
        exposures = observations
    else:
        exposures = stage_exposures(plan, state, observations)
        if observations.reported_until is None:
            return Hold("no SDK report yet")
        reported = observations.reported_until
        lag = now - reported
        if lag > STALE_AFTER:
            return Hold(f"SDK reports are {_seconds(lag)} behind the clock")
    left = plan.min_stage_duration - (min(now, reported) - state.stage_started_at)
    if left > 0:
        return Hold(f"{_seconds(left)} left in this stage")
    if exposures < plan.min_samples:
        missing = plan.min_samples - exposures
        return Hold(f"{missing} more exposures needed ({exposures} of {plan.min_samples})")
    for reading in readings:
        if reading.status != "healthy":
            return Hold(f"guard {reading.guard} is {reading.status}: {reading.detail}")
    # 5. Advance, on our own only if the plan says so and no approval is needed.
    stage = state.stage + 1
    if not by_hand:
        if not plan.auto_advance:
            return Hold("ready: waiting for a release manager to advance")
        if approval_level is not None and plan.stages[stage] > approval_level:
            return Hold(
                f"ready: going past {approval_level.normalize():f}% here needs a release manager"
            )
    return Advance(stage, plan.stages[stage])


def stage_exposures(plan: RampPlan, state: RampState, observations: Observations) -> int:
    """Exposed requests counted at the stage's own percentage since it started (late
    reports of the previous percentage are not this stage's exposures)."""
    if state.stage < 0:
        return 0
    return sum(
        s.exposed.get(REQUEST).n
        for s in observations.at(plan.stages[state.stage], state.stage_started_at)
    )


def _rollback(plan: RampPlan, state: RampState, reading: Reading) -> Rollback:
    reason = f"guard {reading.guard}: {reading.detail}"
    if plan.on_breach == "step_back" and state.stage > 0:
        back = state.stage - 1
        return Rollback(reason, reading.guard, back, plan.stages[back])
    return Rollback(reason, reading.guard, -1, Decimal(0))


def _seconds(value: float) -> str:
    value = max(0, round(value))
    if value >= 3600:
        return f"{value // 3600}h{value % 3600 // 60:02d}m"
    if value >= 60:
        return f"{value // 60}m{value % 60:02d}s"
    return f"{value}s"
