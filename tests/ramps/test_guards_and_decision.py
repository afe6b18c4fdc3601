"""Guard readings and the controller's one decision, as pure functions of counts, plan,
state and time; and the ramp's state machine, driven by any sequence of actions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graylane.core import parse_ramp
from graylane.core.model import Guard, RampPlan
from graylane_server.errors import Conflict
from graylane_server.models import FlagRow, RampRow
from graylane_server.ramps import controller, service
from graylane_server.ramps.decision import (
    Advance,
    Hold,
    Pause,
    RampState,
    Rollback,
    decide,
)
from graylane_server.ramps.guards import Reading

MIN_SAMPLES = 1000
ERRORS_UNDER_1PCT = Guard(metric="error_rate", max=0.01)


# --- decide ---------------------------------------------------------------------------------

PLAN = RampPlan(
    stages=(Decimal(1), Decimal(10), Decimal(50), Decimal(100)),
    min_stage_duration=600.0,
    min_samples=MIN_SAMPLES,
    guards=(ERRORS_UNDER_1PCT,),
)
STARTED = 1_000_000.0
READY = STARTED + 600.0


def healthy(name: str = "error_rate") -> Reading:
    return Reading(name, "absolute", "healthy", "fine")


def status(kind: str, name: str = "error_rate") -> Reading:
    return Reading(name, "absolute", kind, f"it is {kind}")  # type: ignore[arg-type]


def running(stage: int = 1) -> RampState:
    return RampState("running", stage, STARTED)


def test_a_healthy_stage_that_ran_its_time_with_enough_samples_advances() -> None:
    assert decide(PLAN, running(1), [healthy()], MIN_SAMPLES, READY) == Advance(2, Decimal(50))


def test_a_breach_rolls_back_to_zero() -> None:
    decision = decide(PLAN, running(2), [healthy("other"), status("breach")], 0, STARTED)
    assert isinstance(decision, Rollback)
    assert (decision.stage, decision.percentage, decision.guard) == (-1, Decimal(0), "error_rate")
    assert "error_rate" in decision.reason


def test_a_breach_steps_back_one_stage_when_the_plan_says_so() -> None:
    plan = replace(PLAN, on_breach="step_back")
    decision = decide(plan, running(2), [status("breach")], 0, STARTED)
    assert isinstance(decision, Rollback)
    assert (decision.stage, decision.percentage) == (1, Decimal(10))
    # from the first stage, one back is 0%
    first = decide(plan, running(0), [status("breach")], 0, STARTED)
    assert isinstance(first, Rollback)
    assert (first.stage, first.percentage) == (-1, Decimal(0))


def test_a_breach_wins_over_everything_that_holds_and_over_a_person() -> None:
    decision = decide(PLAN, running(3), [status("breach")], 0, STARTED, by_hand=True)
    assert isinstance(decision, Rollback)


def test_a_warning_pauses() -> None:
    decision = decide(PLAN, running(1), [status("warn")], MIN_SAMPLES, READY)
    assert decision == Pause("guard error_rate warns: it is warn", "error_rate")


def test_a_warning_does_not_pause_for_a_person_but_still_holds_like_any_unhealthy_guard() -> None:
    # "time, samples and guards" stop a person; pausing is what the controller does
    decision = decide(PLAN, running(1), [status("warn")], MIN_SAMPLES, READY, by_hand=True)
    assert decision == Hold("guard error_rate is warn: it is warn")


def test_a_stage_holds_until_it_has_run_min_stage_duration() -> None:
    early = decide(PLAN, running(1), [healthy()], MIN_SAMPLES, READY - 1)
    assert isinstance(early, Hold)
    assert "left in this stage" in early.reason
    assert isinstance(decide(PLAN, running(1), [healthy()], MIN_SAMPLES, READY), Advance)


def test_a_stage_holds_until_it_has_min_samples() -> None:
    short = decide(PLAN, running(1), [healthy()], MIN_SAMPLES - 1, READY)
    assert isinstance(short, Hold)
    assert "1 more exposures needed" in short.reason
    assert isinstance(decide(PLAN, running(1), [healthy()], MIN_SAMPLES, READY), Advance)


def test_a_stage_holds_while_a_guard_is_inconclusive() -> None:
    decision = decide(PLAN, running(1), [healthy(), status("inconclusive", "p99")], 5000, READY)
    assert isinstance(decision, Hold)
    assert "guard p99 is inconclusive" in decision.reason


def test_without_auto_advance_the_controller_holds_but_a_person_may_advance() -> None:
    plan = replace(PLAN, auto_advance=False)
    decision = decide(plan, running(1), [healthy()], MIN_SAMPLES, READY)
    assert isinstance(decision, Hold)
    assert "release manager" in decision.reason
    assert decide(plan, running(1), [healthy()], MIN_SAMPLES, READY, by_hand=True) == Advance(
        2, Decimal(50)
    )


def test_a_person_is_held_by_time_and_samples_too() -> None:
    plan = replace(PLAN, auto_advance=False)
    assert isinstance(
        decide(plan, running(1), [healthy()], MIN_SAMPLES, READY - 1, by_hand=True), Hold
    )
    assert isinstance(decide(plan, running(1), [healthy()], 0, READY, by_hand=True), Hold)


def test_the_last_stage_holds() -> None:
    decision = decide(PLAN, running(3), [healthy()], 10**6, READY + 10**6)
    assert decision == Hold("the ramp is at its last stage")


def test_a_paused_ramp_holds_for_the_controller_but_a_person_may_advance_it() -> None:
    paused = RampState("paused", 1, STARTED)
    decision = decide(PLAN, paused, [healthy()], MIN_SAMPLES, READY)
    assert decision == Hold("the ramp is paused")
    assert decide(PLAN, paused, [healthy()], MIN_SAMPLES, READY, by_hand=True) == Advance(
        2, Decimal(50)
    )


@pytest.mark.parametrize("kind", ["draft", "rolled_back"])
def test_a_ramp_with_nobody_on_the_change_never_moves(kind: str) -> None:
    state = RampState(kind, -1, STARTED)  # type: ignore[arg-type]
    for readings in ([healthy()], [status("breach")], [status("warn")]):
        assert isinstance(decide(PLAN, state, readings, 10**6, READY, by_hand=True), Hold)


def test_paused_ramp_still_rolls_back_on_breach() -> None:
    # a warning paused it; users are still on the change, so a later breach must act
    paused = RampState("paused", 2, STARTED)
    decision = decide(PLAN, paused, [status("breach")], 0, READY)
    assert isinstance(decision, Rollback)
    assert decision.percentage == Decimal(0)


def test_completed_ramp_within_its_watch_rolls_back_on_breach() -> None:
    completed = RampState("completed", 3, STARTED)
    decision = decide(PLAN, completed, [status("breach")], 0, READY)
    assert isinstance(decision, Rollback)
    assert decide(PLAN, completed, [status("warn")], 0, READY) == Hold("the ramp is completed")


def test_a_guard_without_data_pauses_with_a_visible_reason() -> None:
    decision = decide(PLAN, running(1), [status("no_data")], MIN_SAMPLES, READY)
    assert isinstance(decision, Pause)
    assert "has no data" in decision.reason


def test_a_sample_ratio_mismatch_pauses_and_says_why() -> None:
    srm = Reading("sample-ratio", "srm", "mismatch", "sample ratio mismatch: 9 of 10")
    decision = decide(PLAN, running(1), [healthy(), srm], MIN_SAMPLES, READY)
    assert decision == Pause("sample ratio mismatch: 9 of 10", "sample-ratio")


# --- the state machine ----------------------------------------------------------------------

PLANS = st.sampled_from(
    [
        parse_ramp({"stages": [1, 10, 50, 100]}),
        parse_ramp({"stages": [5, 100], "on_breach": "step_back"}),
        parse_ramp({"stages": [0.5, 2, 25, 60, 100], "on_breach": "step_back"}),
        parse_ramp({"stages": [5, 100], "min_stage_duration": "0s", "min_samples": 0}),
    ]
)
PERSON = st.sampled_from(service.ACTIONS)
READINGS = st.sampled_from(["healthy", "inconclusive", "warn", "breach"])
CONTROLLER = st.tuples(st.just("tick"), READINGS, st.booleans())
STEPS = st.lists(st.one_of(PERSON, CONTROLLER), max_size=40)


class Ramp:
    """One ramp in memory, moved only through the server's pure transition functions:
    `service.target_of` for people, `decide` + the controller's `_transition` for ticks."""

    def __init__(self, plan: RampPlan) -> None:
        self.plan = plan
        self.row: RampRow | None = None
        self.percentage = Decimal(0)
        self.clock = 0.0

    def loaded(self) -> service.Loaded:
        config: dict[str, Any] = {"fallthrough": {"rollout": {"percentage": self.percentage}}}
        return service.Loaded(
            flag=FlagRow(key="f", definition={}),
            environment="production",
            config=config,
            plan=self.plan,
            row=self.row,
            protected=False,
        )

    def move(self, target: service.Target) -> None:
        moved_at = datetime.fromtimestamp(self.clock, UTC)
        if self.row is None:
            self.row = RampRow(flag="f", environment="production", stage_started_at=moved_at)
        elif self.row.stage != target.stage or (
            self.row.status != "running" and target.status == "running"
        ):
            self.row.stage_started_at = moved_at
        self.row.status, self.row.stage = target.status, target.stage
        self.row.percentage = str(target.percentage)
        self.percentage = target.percentage

    def person(self, action: service.Action) -> None:
        try:
            target = service.target_of(action, self.loaded())
        except Conflict:
            return
        if target is not None:
            self.move(target)

    def tick(self, guard: str, ready: bool) -> None:
        self.clock += self.plan.min_stage_duration + 1 if ready else 1
        loaded = self.loaded()
        readings = [Reading("g", "absolute", guard, guard)]  # type: ignore[arg-type]
        samples = self.plan.min_samples if ready else 0
        decision = decide(self.plan, loaded.state, readings, samples, self.clock)
        if isinstance(decision, Hold):
            return
        _, _, target = controller._transition(loaded, decision)
        self.move(target)

    def check(self) -> None:
        state, stages = self.loaded().state, self.plan.stages
        assert -1 <= state.stage <= len(stages) - 1
        expected = Decimal(0) if state.stage == -1 else stages[state.stage]
        assert self.percentage == expected, (state, self.percentage)
        if state.status in ("draft", "rolled_back"):
            assert state.stage == -1
        if state.status == "completed":
            assert state.stage == len(stages) - 1
        if state.status in ("running", "paused"):
            assert state.stage >= 0


@given(plan=PLANS, steps=STEPS)
@settings(max_examples=300, deadline=None)
def test_any_sequence_of_actions_keeps_stage_and_percentage_consistent(
    plan: RampPlan, steps: list[Any]
) -> None:
    ramp = Ramp(plan)
    ramp.check()
    for step in steps:
        if isinstance(step, tuple):
            ramp.tick(step[1], step[2])
        else:
            ramp.person(step)
        ramp.check()


@given(plan=PLANS, steps=STEPS)
@settings(max_examples=200, deadline=None)
def test_a_repeated_idempotent_action_changes_nothing(plan: RampPlan, steps: list[Any]) -> None:
    ramp = Ramp(plan)
    for step in steps:
        if isinstance(step, tuple):
            ramp.tick(step[1], step[2])
        else:
            ramp.person(step)
    for action in ("pause", "resume", "rollback"):
        ramp.person(action)  # type: ignore[arg-type]
        before = ramp.loaded().state, ramp.percentage
        try:
            again = service.target_of(action, ramp.loaded())  # type: ignore[arg-type]
        except Conflict:
            continue
        assert again is None, (action, before)


def test_every_stage_of_a_plan_is_reached_by_advancing_and_the_last_completes() -> None:
    ramp = Ramp(parse_ramp({"stages": [1, 10, 50, 100]}))
    ramp.person("start")
    seen = [ramp.percentage]
    for _ in range(3):
        ramp.person("advance")
        seen.append(ramp.percentage)
    assert seen == [Decimal(1), Decimal(10), Decimal(50), Decimal(100)]
    assert ramp.loaded().state.status == "completed"
    with pytest.raises(Conflict):
        service.target_of("advance", ramp.loaded())
