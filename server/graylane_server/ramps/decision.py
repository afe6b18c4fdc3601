"""The ramp controller's one decision, as a pure function of the plan, where the ramp
stands, the guard readings and the time. No I/O: the controller, the API's "why is it
holding" and the simulation all call it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from graylane.core.model import RampPlan
from graylane_server.ramps.guards import Reading

RampStatus = Literal["draft", "running", "paused", "completed", "rolled_back"]


@dataclass(frozen=True, slots=True)
class RampState:
    status: RampStatus
    stage: int
    """Index into the plan's stages; -1 before the ramp starts."""
    stage_started_at: float
    """Unix seconds."""


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
    exposures: int,
    now: float,
    *,
    by_hand: bool = False,
    approval_level: Decimal | None = None,
) -> Decision:
    """What to do now. `by_hand` asks whether a person may advance (the auto-advance
    switch, pauses and the approval level do not stop a person; time, samples and guards
    do). `approval_level`, in a protected environment, is the percentage past which only
    a release manager advances: the controller holds there."""
    # 1. Only a running ramp moves (a person may also advance a paused one).
    if state.status != "running" and not (by_hand and state.status == "paused"):
        return Hold(f"the ramp is {state.status.replace('_', ' ')}")
    # 2. A breached guard rolls back, whatever else holds.
    for reading in readings:
        if reading.status == "breach":
            if plan.on_breach == "step_back" and state.stage > 0:
                back = state.stage - 1
                return Rollback(
                    f"guard {reading.guard}: {reading.detail}",
                    reading.guard,
                    back,
                    plan.stages[back],
                )
            return Rollback(
                f"guard {reading.guard}: {reading.detail}", reading.guard, -1, Decimal(0)
            )
    # 3. A warning pauses automatic advance.
    for reading in readings:
        if reading.status == "warn" and not by_hand:
            return Pause(f"guard {reading.guard} warns: {reading.detail}", reading.guard)
    if state.stage + 1 >= len(plan.stages):
        return Hold("the ramp is at its last stage")
    # 4. The stage must have run long enough, with enough exposures, all guards healthy.
    left = plan.min_stage_duration - (now - state.stage_started_at)
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


def _seconds(value: float) -> str:
    value = max(0, round(value))
    if value >= 3600:
        return f"{value // 3600}h{value % 3600 // 60:02d}m"
    if value >= 60:
        return f"{value // 60}m{value % 60:02d}s"
    return f"{value}s"
