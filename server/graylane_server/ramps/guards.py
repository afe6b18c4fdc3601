"""Guard readings: from Observations (and external signals) to healthy, inconclusive, warn,
breach, no_data or mismatch. Pure: the controller, the API and the simulation all call
the same code.

An SDK guard (absolute or relative, on a rate or a continuous metric) reads an
always-valid confidence sequence of its harm (`sequential`):

- **breach** / **warn**: the lower bound is above `max` / `warn`, in the evidence
  carried over the whole ramp (strata = rollout percentages), or in one of the change
  detector's windows, restarted at the stage start and 1, 2, 4, ... minutes after it, so a
  regression that starts mid-stage is not diluted by the healthy time before it. The
  level `alpha` is split: half to the whole ramp, half evenly over the windows.
- **healthy**: positive evidence of safety. The upper bound of the whole ramp's harm is
  below `max` (at `SAFETY_ALPHA`), and the current stage's own estimate is not above it.
- **no_data**: nothing to compare for longer than `NO_DATA_AFTER`.
- **inconclusive** otherwise, with how long the current traffic needs to decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from graylane.core.model import Guard, RampPlan
from graylane_server.ramps.observations import (
    CLUSTERS,
    REQUEST,
    Group,
    Observations,
    Series,
    Slice,
    bucket_start,
)
from graylane_server.ramps.sequential import MIN_CLUSTERS, Stratum, Summary, boundary, summarise

if TYPE_CHECKING:
    from graylane_server.ramps.decision import RampState

Status = Literal["healthy", "inconclusive", "warn", "breach", "no_data", "mismatch"]
DEFAULT_ALPHA = 0.001
"""Chance, per guard and stage, of a rollback (or warn) on a release within the limit."""
SAFETY_ALPHA = 0.01
"""Chance that the upper bound ever shows a harm above `max` as below it."""
SRM_ALPHA = 0.001
"""Sample-ratio mismatch: always-valid p-value below which the ramp pauses."""
NO_DATA_AFTER = 600.0
"""Seconds a stage may run with nothing for an SDK guard to compare before the guard
reads `no_data` (and the ramp pauses, saying so): ten minutes is one default stage."""
RESTARTS = (0, 60, 120, 240, 480, 960, 1920, 3840, 7680)
"""Seconds after the stage start at which the change detector's windows begin."""
MIN_WINDOW = 120.0
"""Seconds a change-detector window must span before its estimate can hold a stage."""
SRM_MIN_CLUSTERS = 8
"""Clusters with traffic needed on each side before a sample-ratio test is judged: with
fewer, a few heavy units decide the ratio and no variance estimate is trustworthy."""


@dataclass(frozen=True, slots=True)
class External:
    """Signals from outside the SDKs: a Prometheus query's value, a webhook's alert."""

    values: Mapping[str, float | None] = field(default_factory=dict)
    """Guard label -> the query's current value (None: no data)."""
    firing: Mapping[str, bool] = field(default_factory=dict)
    """Guard name -> an alert is firing."""
    missing_since: Mapping[str, float] = field(default_factory=dict)
    """Guard label -> since when (Unix seconds) its query has answered no value."""


@dataclass(frozen=True, slots=True)
class Reading:
    guard: str
    kind: str
    status: Status
    detail: str
    value: float | None = None
    """The measured harm: the exposed group's mean (absolute), the exposed-to-unexposed
    ratio (relative, 1.0 is "the same"), or the query's value; `limit`, `warn`, `lower`
    and `upper` are on the same scale."""
    control: float | None = None
    """The unexposed group's mean, for relative guards."""
    limit: float | None = None
    warn: float | None = None
    samples: int = 0
    lower: float | None = None
    """Always-valid lower bound of the harm (None: unknown)."""
    upper: float | None = None
    """Always-valid upper bound of the harm (None: unbounded)."""
    needs: float | None = None
    """Seconds more at the current traffic until the guard can show harm below its limit
    (None: not projected, e.g. the estimate is above the limit or there is no traffic)."""


# --- legacy counts, kept while callers move to Observations -------------------------------


@dataclass(frozen=True, slots=True)
class GroupCounts:
    events: Mapping[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return self.events.get(REQUEST, 0)


@dataclass(frozen=True, slots=True)
class StageCounts:
    exposed: GroupCounts = field(default_factory=GroupCounts)
    unexposed: GroupCounts = field(default_factory=GroupCounts)

    def observations(self, percentage: Decimal, start: float) -> Observations:
        def group(counts: GroupCounts) -> Group:
            return Group({e: _one_cluster(n) for e, n in counts.events.items()})

        slice_ = Slice(start, percentage, group(self.exposed), group(self.unexposed))
        return Observations((slice_,), None)


def _one_cluster(n: int) -> Series:
    count = (n,) + (0,) * (CLUSTERS - 1)
    total = (float(n),) + (0.0,) * (CLUSTERS - 1)
    return Series(count, total, total)


# --- reading ------------------------------------------------------------------------------


def readings(
    plan: RampPlan,
    state: RampState,
    observations: Observations,
    external: External,
    now: float,
) -> list[Reading]:
    """Every guard of the plan, then the sample-ratio check."""
    out = [read(g, observations, external, plan=plan, state=state, now=now) for g in plan.guards]
    out.append(sample_ratio(observations, state, now))
    return out


def read(
    guard: Guard,
    observations: Observations,
    external: External,
    *,
    plan: RampPlan,
    state: RampState,
    now: float,
    alpha: float = DEFAULT_ALPHA,
) -> Reading:
    if guard.kind in ("absolute", "relative"):
        return _sdk_guard(guard, observations, plan, state, now, alpha)
    if guard.kind == "prometheus":
        return _threshold(guard, external, now)
    firing = external.firing.get(guard.label, False)
    return Reading(
        guard.label,
        guard.kind,
        "breach" if firing else "healthy",
        "an alert is firing" if firing else "no alert firing",
    )


def percentage_of(plan: RampPlan, state: RampState) -> Decimal:
    return plan.stages[state.stage] if state.stage >= 0 else Decimal(0)


def _since(state: RampState) -> float:
    started = getattr(state, "started_at", None)
    return float("-inf") if started is None else float(started)


Sums = dict[Decimal, list[list[float]]]
"""Per percentage: per-cluster sums [a_x, b_x, q_x, a_u, b_u, q_u]."""


def _add(sums: Sums, s: Slice, event: str, continuous: bool) -> None:
    rows = sums.get(s.percentage)
    if rows is None:
        rows = sums[s.percentage] = [[0.0] * CLUSTERS for _ in range(6)]
    for offset, group in ((0, s.exposed), (3, s.unexposed)):
        values, requests = group.get(event), group.get(REQUEST)
        parts = (values.total if continuous else values.count, requests.count, values.squares)
        for i, part in enumerate(parts):
            if any(part):
                row = rows[offset + i]
                rows[offset + i] = [a + b for a, b in zip(row, part, strict=True)]


def _suffixes(
    slices: Sequence[Slice], starts: Sequence[float], event: str, continuous: bool
) -> list[Sums]:
    """The sums of the slices starting at or after each of `starts` (ascending), in one
    pass from the newest slice back."""
    out: list[Sums] = [{} for _ in starts]
    sums: Sums = {}
    pending = len(starts) - 1
    for s in sorted((s for s in slices if s.percentage > 0), key=lambda s: -s.start):
        while pending >= 0 and s.start < starts[pending]:
            out[pending] = {k: [list(r) for r in v] for k, v in sums.items()}
            pending -= 1
        if pending < 0:
            break
        _add(sums, s, event, continuous)
    while pending >= 0:
        out[pending] = sums
        pending -= 1
    return out


def _summary(sums: Sums, relative: bool, binary: bool) -> Summary:
    return summarise(
        [
            Stratum(
                tuple(rows[0]),
                tuple(rows[1]),
                tuple(rows[2]),
                tuple(rows[3]),
                tuple(rows[4]),
                tuple(rows[5]),
                binary,
            )
            for _, rows in sorted(sums.items())
        ],
        relative,
    )


def _sdk_guard(  # noqa: PLR0917 - read's own arguments, passed through
    guard: Guard,
    observations: Observations,
    plan: RampPlan,
    state: RampState,
    now: float,
    alpha: float,
) -> Reading:
    relative = guard.kind == "relative"
    continuous = guard.continuous
    event = guard.event or "error"
    since = _since(state)
    slices = [s for s in observations.slices if s.start >= since]
    percentage = percentage_of(plan, state)
    # A slice is dated by the start of its usage bucket: the bucket a window opens in counts.
    starts = [
        bucket_start(state.stage_started_at + r)
        for r in RESTARTS
        if state.stage_started_at + r <= now
    ]
    binary = not continuous
    whole = _summary(_suffixes(slices, [since], event, continuous)[0], relative, binary)
    own = [s for s in slices if s.percentage == percentage]
    windows = [
        _summary(sums, relative, binary) for sums in _suffixes(own, starts, event, continuous)
    ]
    stage = windows[0] if windows else _summary({}, relative, binary)
    offset = 1.0 if relative else 0.0
    limit = None if guard.max is None else offset + guard.max
    warn = None if guard.warn is None else offset + guard.warn
    value = whole.estimate()
    control = _control(whole) if relative else None
    samples = round(stage.exposed)
    lower = whole.lower(alpha) if whole.strata else None
    upper = whole.upper(SAFETY_ALPHA) if whole.strata else None

    def reading(status: Status, detail: str, needs: float | None = None) -> Reading:
        return Reading(
            guard.label,
            guard.kind,
            status,
            detail,
            value,
            control,
            limit,
            warn,
            samples,
            lower,
            upper,
            needs,
        )

    shown = _shown(guard, whole, value, control)
    split = alpha / 2 / len(RESTARTS)
    levels: tuple[tuple[float | None, Status], ...] = ((limit, "breach"), (warn, "warn"))
    for level, status in levels:
        if level is None:
            continue
        if whole.strata and whole.test(level).above(alpha / 2):
            return reading(status, f"{shown}: {_above(guard, level)} (all stages so far)")
        for start, window in zip(RESTARTS, windows, strict=False):
            if window.strata and window.test(level).above(split):
                return reading(
                    status, f"{shown}: {_above(guard, level)} (since {start}s into the stage)"
                )
    if not whole.strata or whole.exposed <= 0 or value is None:
        ran = now - state.stage_started_at
        what = "no exposed and unexposed traffic to compare" if relative else "no exposed traffic"
        if relative and whole.strata and whole.exposed > 0:
            # a ratio to a control with no events at all is undefined, not small
            what = f"no {event} events among unexposed requests to compare with"
        if ran >= NO_DATA_AFTER:
            return reading("no_data", f"{what} for {_duration(ran)}")
        return reading("inconclusive", what)
    if whole.occupied < MIN_CLUSTERS:
        ran = now - state.stage_started_at
        few = (
            f"{shown}: exposed units fall in {whole.occupied} of {CLUSTERS} clusters, "
            f"too few to judge (at least {MIN_CLUSTERS})"
        )
        return reading("no_data" if ran >= NO_DATA_AFTER else "inconclusive", few)
    if limit is None:
        return reading("healthy", shown)
    # Never advance while the stage, or a change-detector window of two minutes or more,
    # reads above the hold level: evidence carried from earlier stages must not outvote
    # a regression that began in this one, and a window's estimate is noisy, so a
    # relative guard holds from halfway to its limit.
    hold = (1.0 + limit) / 2 if relative else limit
    for start, window in zip(RESTARTS, windows, strict=False):
        recent = window.estimate()
        spans = now - state.stage_started_at - start >= MIN_WINDOW
        if spans and recent is not None and recent > hold:
            return reading(
                "inconclusive",
                f"{shown}: reads {_above(guard, hold)} since {start}s into the stage",
            )
    if whole.test(limit).below(SAFETY_ALPHA):
        return reading("healthy", f"{shown}: shown {_level(guard, limit)}")
    needs = _needs(whole, stage, limit, state, observations, now)
    goal = f"to show {guard.metric} {_level(guard, limit)}"
    if needs is None:
        return reading("inconclusive", f"{shown}: not yet shown {_level(guard, limit)}")
    return reading(
        "inconclusive",
        f"{shown}: needs about {_duration(needs)} more at the current traffic {goal}",
        needs,
    )


def _control(summary: Summary) -> float | None:
    a_u = sum(s[3] for s in summary.strata)
    b_u = sum(s[4] for s in summary.strata)
    return a_u / b_u if b_u else None


def _shown(guard: Guard, whole: Summary, value: float | None, control: float | None) -> str:
    if guard.kind == "relative":
        a_x = sum(s[0] for s in whole.strata)
        b_x = whole.exposed
        exposed = a_x / b_x if b_x else None
        return f"{guard.metric} {_fmt(guard, exposed)} exposed vs {_fmt(guard, control)} unexposed"
    return f"{guard.metric} {_fmt(guard, value)} ({round(whole.exposed)} requests)"


def _fmt(guard: Guard, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if guard.continuous else f"{value * 100:.3g}%"


def _level(guard: Guard, level: float) -> str:
    if guard.kind == "relative":
        return f"< {round((level - 1) * 100):g}% worse than unexposed"
    return f"< {_fmt(guard, level)}"


def _above(guard: Guard, level: float) -> str:
    if guard.kind == "relative":
        return f"more than {round((level - 1) * 100):g}% worse than unexposed"
    return f"above {_fmt(guard, level)}"


def _needs(  # noqa: PLR0917
    whole: Summary,
    stage: Summary,
    limit: float,
    state: RampState,
    observations: Observations,
    now: float,
) -> float | None:
    """Seconds until T(limit) reaches -u(V) if the signal per unit of variance stays as
    it is and the variance grows at the current stage's pace."""
    test = whole.test(limit)
    if test.t >= 0 or test.v <= 0 or not stage.strata:
        return None
    pace_v = stage.test(limit).v
    reported = observations.reported_until if observations.reported_until is not None else now
    elapsed = min(now, reported) - state.stage_started_at
    if pace_v <= 0 or elapsed <= 0:
        return None
    per_second = pace_v / elapsed
    drift = -test.t / test.v
    v = test.v
    for _ in range(60):
        if drift * v >= boundary(v, SAFETY_ALPHA):
            return (v - test.v) / per_second
        v *= 1.25
    return None


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1.5:
        return f"{max(1, round(seconds))} seconds"
    if minutes < 90:
        return f"{round(minutes)} minutes"
    hours = minutes / 60
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.0f} days"


def _threshold(guard: Guard, external: External, now: float) -> Reading:
    value = external.values.get(guard.label)

    def reading(status: Status, detail: str) -> Reading:
        return Reading(guard.label, guard.kind, status, detail, value, None, guard.max, guard.warn)

    if value is None:
        since = external.missing_since.get(guard.label)
        if since is not None and now - since >= NO_DATA_AFTER:
            return reading("no_data", f"no value from the query for {_duration(now - since)}")
        return reading("inconclusive", "no value from the query")
    shown = f"{guard.query} = {value:g}"
    if guard.max is not None and value > guard.max:
        return reading("breach", f"{shown} is above {guard.max:g}")
    if guard.warn is not None and value > guard.warn:
        return reading("warn", f"{shown} is above {guard.warn:g}")
    return reading("healthy", shown)


# --- sample-ratio mismatch ----------------------------------------------------------------

SRM = "sample-ratio"


def sample_ratio(observations: Observations, state: RampState, now: float) -> Reading:
    """Exposed against unexposed requests, against the rollout percentage that produced
    them (Fabijan et al. 2019, "Diagnosing sample ratio mismatch in online controlled
    experiments", KDD). Per percentage p the statistic is N_x - p N; its variance the
    larger of the binomial p(1-p)N and the cluster-robust sum over clusters, so heavy
    units do not read as a mismatch. Judged with the two-sided normal-mixture boundary
    (always valid, at `SRM_ALPHA`); `detail` also gives the single-look chi-square
    p-value (1 degree of freedom) of the same z."""
    since = _since(state)
    t, v_binomial = 0.0, 0.0
    residual = [0.0] * CLUSTERS
    exposed_clusters, unexposed_clusters = set(), set()
    n_x = n = 0
    for s in observations.slices:
        if s.start < since or not 0 < s.percentage < 100:
            continue
        p = float(s.percentage) / 100
        x, u = s.exposed.get(REQUEST).count, s.unexposed.get(REQUEST).count
        for c, (a, b) in enumerate(zip(x, u, strict=True)):
            residual[c] += a - p * (a + b)
            if a:
                exposed_clusters.add(c)
            if b:
                unexposed_clusters.add(c)
        sx, su = sum(x), sum(u)
        n_x += sx
        n += sx + su
        t += sx - p * (sx + su)
        v_binomial += p * (1 - p) * (sx + su)
    c = CLUSTERS
    robust = max(0.0, sum(r * r for r in residual) - t * t / c) * c / (c - 1)
    v = max(v_binomial, robust)
    base = Reading(SRM, "srm", "healthy", "", None, None, None, None, n)
    z = t / math.sqrt(v) if v > 0 else 0.0
    if min(len(exposed_clusters), len(unexposed_clusters)) < SRM_MIN_CLUSTERS or v <= 0:
        return _with(base, "inconclusive", "too few units on one side to compare the ratio")
    p_value = math.erfc(abs(z) / math.sqrt(2))
    # `+ 0.0` turns a z that rounds to -0.0 into 0.0: "-0.0 standard errors" reads as a sign
    shown = (
        f"{n_x} exposed of {n} requests, {round(z, 1) + 0.0:+.1f} standard errors from the rollout"
    )
    if abs(t) >= boundary(v, SRM_ALPHA / 2):
        return _with(
            base,
            "mismatch",
            f"sample ratio mismatch: {shown} (always-valid p < {SRM_ALPHA:g}, single-look "
            f"chi-square p = {p_value:.2g}); the groups are not what the rollout says, "
            "so no comparison of them can be trusted",
            z,
        )
    return _with(base, "healthy", shown, z)


def _with(reading: Reading, status: Status, detail: str, z: float | None = None) -> Reading:
    """`value` of a sample-ratio reading: z, the standard errors from the rollout."""
    return Reading(
        reading.guard, reading.kind, status, detail, z, None, None, None, reading.samples
    )
