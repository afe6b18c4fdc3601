"""Guard readings: from counts (and external signals) to healthy, inconclusive, warn or
breach. Pure: the controller, the API and the simulation all call the same code."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from graylane.core.model import Guard
from graylane_server.ramps.stats import DEFAULT_ALPHA, exceeds, log_evidence, relative_null

Status = Literal["healthy", "inconclusive", "warn", "breach"]
REQUEST = "request"
HOLD_EVIDENCE = math.log(5)
"""A relative guard holds its stage once the evidence that the exposed group is worse
reaches 5:1: far below the rollback bar, but above what the noise of two groups produces
most of the time (holding on every unlucky ratio stalled a quarter of healthy ramps)."""


@dataclass(frozen=True, slots=True)
class GroupCounts:
    """What the SDKs counted for one side of a ramp in the current stage."""

    events: Mapping[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return self.events.get(REQUEST, 0)

    def rate(self, event: str) -> float | None:
        return self.events.get(event, 0) / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class StageCounts:
    exposed: GroupCounts = field(default_factory=GroupCounts)
    unexposed: GroupCounts = field(default_factory=GroupCounts)


@dataclass(frozen=True, slots=True)
class External:
    """Signals from outside the SDKs: a Prometheus query's value, a webhook's alert."""

    values: Mapping[str, float | None] = field(default_factory=dict)
    """Guard label -> the query's current value (None: no data)."""
    firing: Mapping[str, bool] = field(default_factory=dict)
    """Guard name -> an alert is firing."""


@dataclass(frozen=True, slots=True)
class Reading:
    guard: str
    kind: str
    status: Status
    detail: str
    value: float | None = None
    """The measured rate (absolute), the exposed-to-unexposed ratio (relative, 1.0 is
    "the same"), or the query's value; `limit` and `warn` are on the same scale."""
    control: float | None = None
    """The unexposed group's rate, for relative guards."""
    limit: float | None = None
    warn: float | None = None
    samples: int = 0


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.3g}%"


def read(
    guard: Guard,
    counts: StageCounts,
    external: External,
    *,
    min_samples: int,
    alpha: float = DEFAULT_ALPHA,
) -> Reading:
    if guard.kind == "absolute":
        return _absolute(guard, counts, min_samples, alpha)
    if guard.kind == "relative":
        return _relative(guard, counts, min_samples, alpha)
    if guard.kind == "prometheus":
        return _threshold(guard, external.values.get(guard.label))
    firing = external.firing.get(guard.label, False)
    return Reading(
        guard.label,
        guard.kind,
        "breach" if firing else "healthy",
        "an alert is firing" if firing else "no alert firing",
    )


def _event(guard: Guard) -> str:
    assert guard.metric is not None
    return guard.metric.removesuffix("_rate")


def _absolute(guard: Guard, counts: StageCounts, min_samples: int, alpha: float) -> Reading:
    event = _event(guard)
    n = counts.exposed.requests
    k = counts.exposed.events.get(event, 0)
    rate = k / n if n else None

    def reading(status: Status, detail: str) -> Reading:
        return Reading(
            guard.label, "absolute", status, detail, rate, None, guard.max, guard.warn, n
        )

    shown = f"{guard.metric} {_percent(rate)} ({k}/{n})"
    if guard.max is not None and exceeds(k, n, guard.max, alpha):
        return reading("breach", f"{shown} is above {_percent(guard.max)}")
    if guard.warn is not None and exceeds(k, n, guard.warn, alpha):
        return reading("warn", f"{shown} is above {_percent(guard.warn)}")
    if n < min_samples:
        return reading("inconclusive", f"{n} of {min_samples} samples")
    # Never advance while the measured rate is above the limit a person set.
    if guard.max is not None and rate is not None and rate > guard.max:
        return reading(
            "inconclusive", f"{shown} is above {_percent(guard.max)}, not yet significant"
        )
    return reading("healthy", shown)


def _relative(guard: Guard, counts: StageCounts, min_samples: int, alpha: float) -> Reading:
    event = _event(guard)
    n_x, n_u = counts.exposed.requests, counts.unexposed.requests
    k_x, k_u = counts.exposed.events.get(event, 0), counts.unexposed.events.get(event, 0)
    rate_x, rate_u = counts.exposed.rate(event), counts.unexposed.rate(event)
    # Shrink the exposed rate towards the control rate by one pseudo-error's worth of
    # exposure, so a handful of requests with no (or one) error reads as "like control",
    # not as infinitely better or worse.
    control = (k_u + 1) / (n_u + 1)
    ratio = ((k_x + 1) / (n_x + 1 / control)) / control

    # Limits on the ratio's own scale: a `max` of 0.5 (50% worse) reads as 1.5.
    limit = None if guard.max is None else 1 + guard.max
    warn = None if guard.warn is None else 1 + guard.warn

    def reading(status: Status, detail: str) -> Reading:
        return Reading(guard.label, "relative", status, detail, ratio, rate_u, limit, warn, n_x)

    shown = f"{guard.metric} {_percent(rate_x)} exposed vs {_percent(rate_u)} unexposed"
    levels: tuple[tuple[float | None, Status], ...] = ((guard.max, "breach"), (guard.warn, "warn"))
    if n_x and n_u:
        for level, status in levels:
            if level is not None and exceeds(k_x, k_x + k_u, relative_null(n_x, n_u, level), alpha):
                return reading(status, f"{shown}: more than {level:.0%} worse")
    if n_x < min_samples or n_u == 0:
        return reading("inconclusive", f"{n_x} of {min_samples} exposed samples, {n_u} unexposed")
    if (
        guard.max is not None
        and n_u
        and log_evidence(k_x, k_x + k_u, relative_null(n_x, n_u, guard.max)) >= HOLD_EVIDENCE
    ):
        return reading("inconclusive", f"{shown}: worse, not yet significantly")
    return reading("healthy", shown)


def _threshold(guard: Guard, value: float | None) -> Reading:
    def reading(status: Status, detail: str) -> Reading:
        return Reading(guard.label, guard.kind, status, detail, value, None, guard.max, guard.warn)

    if value is None:
        return reading("inconclusive", "no value from the query")
    shown = f"{guard.query} = {value:g}"
    if guard.max is not None and value > guard.max:
        return reading("breach", f"{shown} is above {guard.max:g}")
    if guard.warn is not None and value > guard.warn:
        return reading("warn", f"{shown} is above {guard.warn:g}")
    return reading("healthy", shown)
