"""Ramp guards under simulated traffic: false rollbacks, time to 100%, detection delay.

    python bench/ramp_simulation.py              # 1,000 runs per scenario (~1.5 min, 2 idle CPUs)
    python bench/ramp_simulation.py --quick      # 200 runs per scenario, rougher
    python bench/ramp_simulation.py --runs 5000 --seed 7 --jobs 2
    python bench/ramp_simulation.py --explore    # also alpha, grid, limits, traffic (~4x longer)
    python bench/ramp_simulation.py --exact      # exact request rates instead of Poisson

Every tick drives the server's own code, as the ramp controller does: a `RampPlan` from
`graylane.core.parse_ramp`, one `graylane_server.ramps.guards.read` per guard on the
stage's counts, then `graylane_server.ramps.decision.decide`. Only the clock and the
traffic are simulated:

  clock     virtual; the controller ticks every 5 s; an advance starts the next stage at
            that tick (its counts start from zero, as the controller's counts start at
            the stage start); a rollback or a pause (a guard's warn level) ends the run,
            as does reaching the last stage (the controller leaves a completed ramp)
  traffic   per tick, exposed and unexposed requests are Poisson around
            rate x 5 s x the exposure share (or exact, with --exact); each request
            fails independently with its group's true error rate, so errors are
            Poisson (Binomial with --exact) thinned from the requests

Two ways the counts reach the guards:

  ideal     the guards see every request of the stage up to the tick (the default)
  pipeline  as the SDK and the server really count: the app flushes every 10 s, the
            server files counts in 10-second buckets by arrival, and a stage's counts
            start at the first bucket boundary after the stage starts (rows marked
            "pipeline"; request traffic is drawn per second, the ramp starts at a
            random second of the bucket grid and the app flushes at a random phase)

Scenarios (each run is seeded from --seed, the scenario and the run's index, so results
do not depend on --jobs):

  (a) healthy: true error rate 0.1% in both groups; false rollbacks, time to 100%, how
      often a guard held the ramp (or its warn level paused it)
  (b) bad from the start: the exposed error rate is 2% (20x the 0.1% baseline) from the
      1% stage on; time until the rollback and exposed requests until then
  (c) turns bad at the third stage (50%): healthy until the 50% stage starts, then 2%

With --explore, also:

  (x) the same scenarios with alpha 0.01 and with two other mixture grids (the server's
      `stats.alternatives` patched in this process only; the server is left as it is)
  (l) rates exactly at the guards' limits, where false rollbacks are bounded by alpha
      per guard and stage: exposed 1.5x control, and the default guard on a baseline
      equal to its max
  (s) how much exposed traffic a 60 s rollback at 1% exposure needs

The goals: false rollbacks under 1%; a 20x regression at 1% exposure rolled back
within 60 s (of virtual time).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from graylane.core import parse_ramp
from graylane.core.model import RampPlan
from graylane_server.ramps import stats
from graylane_server.ramps.decision import Advance, Hold, Pause, RampState, Rollback, decide
from graylane_server.ramps.guards import External, GroupCounts, StageCounts, read

TICK = 5.0
"""Seconds between controller ticks (the server's default `controller_interval`)."""
BUCKET = 10
"""Seconds per usage bucket on the server."""
FLUSH = 10
"""Seconds between an app's metric flushes (the SDK's default `flush_interval`)."""
BASELINE = 0.001
BAD = 0.02
NO_EXTERNAL = External()

STAGES = [1, 10, 50, 100]
MIN_STAGE_DURATION = "60s"
MIN_SAMPLES = 500
RECOMMENDED_GUARDS = [
    {"metric": "error_rate", "max": 0.01},
    {"kind": "relative", "metric": "error_rate", "max": 0.5},
]
WARN_GUARDS = [
    {"metric": "error_rate", "max": 0.01, "warn": 0.005},
    {"kind": "relative", "metric": "error_rate", "max": 0.5, "warn": 0.25},
]
GUARD_SETS: dict[str, list[dict[str, Any]] | None] = {
    "abs 1% + rel 50%": RECOMMENDED_GUARDS,
    "... + warn 0.5%/25%": WARN_GUARDS,
    "default (abs 0.1%)": None,
}


REC, WARN, DEFAULT = "abs 1% + rel 50%", "... + warn 0.5%/25%", "default (abs 0.1%)"


def plan_for(guards: str) -> RampPlan:
    raw: dict[str, Any] = {
        "stages": STAGES,
        "min_stage_duration": MIN_STAGE_DURATION,
        "min_samples": MIN_SAMPLES,
    }
    if GUARD_SETS[guards] is not None:
        raw["guards"] = GUARD_SETS[guards]
    return parse_ramp(raw)


# --- random draws (the standard library only) ------------------------------------------


class Sampler:
    def __init__(self, seed: str) -> None:
        self.rng = random.Random(seed)  # a str seed hashes with SHA-512: stable everywhere
        self.random = self.rng.random

    def poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam < 12:  # inversion by multiplication
            limit, k, product = math.exp(-lam), 0, self.random()
            while product > limit:
                k += 1
                product *= self.random()
            return k
        return self._ptrs(lam)

    def _ptrs(self, lam: float) -> int:
        """Hörmann's transformed rejection with squeeze (PTRS), exact for lam >= 10."""
        slam, loglam = math.sqrt(lam), math.log(lam)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2)
        while True:
            u = self.random() - 0.5
            v = self.random()
            us = 0.5 - abs(u)
            if us <= 0 or v <= 0:  # random() returned exactly 0: draw again
                continue
            k = math.floor((2 * a / us + b) * u + lam + 0.43)
            if us >= 0.07 and v <= vr:
                return k
            if k < 0 or (us < 0.013 and v > us):
                continue
            if math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b) <= (
                -lam + k * loglam - math.lgamma(k + 1)
            ):
                return k

    def binomial(self, n: int, p: float) -> int:
        """Exact by inversion while n*p is moderate; a normal approximation beyond (never
        reached by the scenarios here, where n*p stays under 300)."""
        if n <= 0 or p <= 0:
            return 0
        if p >= 1:
            return n
        if p > 0.5:
            return n - self.binomial(n, 1 - p)
        if n * p > 500:
            draw = round(self.rng.gauss(n * p, math.sqrt(n * p * (1 - p))))
            return min(n, max(0, draw))
        u = self.random()
        prob = math.exp(n * math.log1p(-p))
        odds = p / (1 - p)
        k, cdf = 0, prob
        while u > cdf and k < n:
            prob *= odds * (n - k) / (k + 1)
            k += 1
            cdf += prob
        return k


# --- traffic ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    section: str
    guards: str
    total_rps: float
    bad_from: int | None = None
    """Stage index from which the exposed group's error rate is BAD; None: healthy."""
    pipeline: bool = False
    exact: bool = False
    horizon: float = 2 * 3600.0
    exposed_rate: float = BASELINE
    """The exposed group's true error rate while it is not bad."""
    alpha: float = stats.DEFAULT_ALPHA
    grid: str = "server"
    """`server` (the server's own grid) or a variant explored with --explore."""

    @property
    def plan(self) -> RampPlan:
        return plan_for(self.guards)


@dataclass(slots=True)
class Outcome:
    end: str
    """completed, rolled_back, paused or horizon (still running when time ran out)."""
    at: float
    """Virtual seconds since the ramp started."""
    bad_at: float | None = None
    """When the exposed group turned bad (None: it never did)."""
    exposed_bad: int = 0
    """Exposed requests from `bad_at` until the end."""
    exposed_bad_errors: int = 0
    guard_hold: bool = False
    """A tick held only because a guard was not healthy (time and samples were met)."""
    held_by: set[str] = field(default_factory=set)
    """The guards that held it so."""
    stage: int = 0
    guard: str | None = None


class Groups:
    """Requests and errors per group, exposed first: [req_x, err_x, req_u, err_u]."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0]

    def stage_counts(self) -> StageCounts:
        req_x, err_x, req_u, err_u = self.counts
        return StageCounts(
            GroupCounts({"request": req_x, "error": err_x}),
            GroupCounts({"request": req_u, "error": err_u}),
        )


def draw(  # noqa: PLR0917 - one slice's parameters, called in the innermost loop
    sampler: Sampler, rps: float, seconds: float, share: float, rate_x: float, carry: list[float]
) -> tuple[int, int, int, int]:
    """One slice of traffic: (requests, errors) exposed, then unexposed."""
    lam_x, lam_u = rps * seconds * share, rps * seconds * (1 - share)
    if carry:  # exact arrivals: whole requests, the fractions carried to the next slice
        carry[0] += lam_x
        carry[1] += lam_u
        req_x, req_u = int(carry[0]), int(carry[1])
        carry[0] -= req_x
        carry[1] -= req_u
        return (
            req_x,
            sampler.binomial(req_x, rate_x),
            req_u,
            sampler.binomial(req_u, BASELINE),
        )
    # Poisson requests thinned by an independent error chance: errors and successes are
    # independent Poisson counts (exact, and cheaper than a binomial per group).
    err_x = sampler.poisson(lam_x * rate_x)
    err_u = sampler.poisson(lam_u * BASELINE)
    return (
        err_x + sampler.poisson(lam_x * (1 - rate_x)),
        err_x,
        err_u + sampler.poisson(lam_u * (1 - BASELINE)),
        err_u,
    )


def simulate(scenario: Scenario, run: int, seed: int) -> Outcome:
    sampler = Sampler(f"{seed}:{scenario.key}:{run}")
    if scenario.pipeline:
        return _simulate_pipeline(scenario, sampler)
    return _simulate_ideal(scenario, sampler)


def _rate_x(scenario: Scenario, stage: int) -> float:
    bad = scenario.bad_from is not None and stage >= scenario.bad_from
    return BAD if bad else scenario.exposed_rate


def _simulate_ideal(scenario: Scenario, sampler: Sampler) -> Outcome:
    plan = scenario.plan
    stages = [float(s) / 100 for s in plan.stages]
    last = len(stages) - 1
    state = RampState("running", 0, 0.0)
    group = Groups()
    outcome = Outcome("horizon", scenario.horizon)
    if scenario.bad_from == 0:
        outcome.bad_at = 0.0
    carry = [0.0, 0.0] if scenario.exact else []
    t = 0.0
    while t < scenario.horizon:
        t += TICK
        rate_x = _rate_x(scenario, state.stage)
        req_x, err_x, req_u, err_u = draw(
            sampler, scenario.total_rps, TICK, stages[state.stage], rate_x, carry
        )
        c = group.counts
        c[0] += req_x
        c[1] += err_x
        c[2] += req_u
        c[3] += err_u
        if outcome.bad_at is not None:
            outcome.exposed_bad += req_x
            outcome.exposed_bad_errors += err_x
        decision = _decide(scenario, plan, state, group.stage_counts(), t)
        if isinstance(decision, Hold):
            _held(outcome, decision)
            continue
        if isinstance(decision, Advance):
            if decision.stage == last:
                return _end(outcome, "completed", t, decision.stage)
            state = RampState("running", decision.stage, t)
            group = Groups()
            if scenario.bad_from == decision.stage:
                outcome.bad_at = t
            continue
        return _end(outcome, _ended(decision), t, state.stage, decision.guard)
    return outcome


def _decide(
    scenario: Scenario, plan: RampPlan, state: RampState, counts: StageCounts, now: float
) -> Advance | Hold | Pause | Rollback:
    readings = [
        read(g, counts, NO_EXTERNAL, min_samples=plan.min_samples, alpha=scenario.alpha)
        for g in plan.guards
    ]
    return decide(plan, state, readings, counts.exposed.requests, now)


def _held(outcome: Outcome, decision: Hold) -> None:
    if decision.reason.startswith("guard "):  # "guard <label> is <status>: ..."
        outcome.guard_hold = True
        outcome.held_by.add(decision.reason.split()[1])


def _ended(decision: Pause | Rollback) -> str:
    return "paused" if isinstance(decision, Pause) else "rolled_back"


def _end(outcome: Outcome, end: str, at: float, stage: int, guard: str | None = None) -> Outcome:
    outcome.end, outcome.at, outcome.stage, outcome.guard = end, at, stage, guard
    return outcome


class _Cumulative:
    """Per-second traffic since time 0, as running totals (index = whole seconds)."""

    def __init__(self) -> None:
        self.totals: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)]

    def add(self, slice_: tuple[int, int, int, int]) -> None:
        a, b, c, d = self.totals[-1]
        self.totals.append((a + slice_[0], b + slice_[1], c + slice_[2], d + slice_[3]))

    def between(self, start: int, end: int) -> list[int]:
        """Totals of the seconds [start, end)."""
        start = max(0, start)
        if end <= start:
            return [0, 0, 0, 0]
        hi, lo = self.totals[end], self.totals[start]
        return [hi[i] - lo[i] for i in range(4)]


def _simulate_pipeline(scenario: Scenario, sampler: Sampler) -> Outcome:
    """Counts as the server sees them: flushed every FLUSH s at a fixed phase, filed in
    BUCKET-second buckets by arrival, counted from the first boundary after the stage
    started. Times are whole seconds on the bucket grid; the ramp starts at `t0`."""
    plan = scenario.plan
    stages = [float(s) / 100 for s in plan.stages]
    last = len(stages) - 1
    t0 = int(sampler.random() * BUCKET)
    phase = int(sampler.random() * FLUSH)
    state = RampState("running", 0, float(t0))
    traffic = _Cumulative()
    outcome = Outcome("horizon", scenario.horizon)
    if scenario.bad_from == 0:
        outcome.bad_at = 0.0
    carry = [0.0, 0.0] if scenario.exact else []
    now = t0
    second = 0
    while now - t0 < scenario.horizon:
        now += int(TICK)
        while second < now:  # traffic up to the tick, at the exposure of the moment
            share = stages[state.stage] if second >= t0 else 0.0
            rate_x = _rate_x(scenario, state.stage)
            slice_ = draw(sampler, scenario.total_rps, 1.0, share, rate_x, carry)
            traffic.add(slice_)
            if outcome.bad_at is not None and second >= t0:
                outcome.exposed_bad += slice_[0]
                outcome.exposed_bad_errors += slice_[1]
            second += 1
        since = math.ceil(state.stage_started_at / BUCKET) * BUCKET
        first_flush = phase + FLUSH * math.ceil((since - phase) / FLUSH)
        last_flush = phase + FLUSH * math.floor((now - phase) / FLUSH)
        group = Groups()
        if last_flush >= first_flush:
            group.counts = traffic.between(first_flush - FLUSH, last_flush)
        decision = _decide(scenario, plan, state, group.stage_counts(), float(now))
        if isinstance(decision, Hold):
            _held(outcome, decision)
            continue
        if isinstance(decision, Advance):
            if decision.stage == last:
                return _end(outcome, "completed", now - t0, decision.stage)
            state = RampState("running", decision.stage, float(now))
            if scenario.bad_from == decision.stage:
                outcome.bad_at = float(now - t0)
            continue
        return _end(outcome, _ended(decision), now - t0, state.stage, decision.guard)
    return outcome


# --- grids explored with --explore (the server's code is left as it is) ----------------


def _grid(upper: float, points: int) -> Callable[[float], tuple[float, ...]]:
    def alternatives(p0: float) -> tuple[float, ...]:
        low = min(max(p0 * 1.05, 1e-9), 0.999)
        high = max(upper, min(0.999, low * 2))
        odds_low, odds_high = low / (1 - low), high / (1 - high)
        if odds_low >= odds_high:
            return (low,)
        step = (odds_high / odds_low) ** (1 / (points - 1))
        return tuple(o / (1 + o) for o in (odds_low * step**i for i in range(points)))

    return alternatives


GRIDS: dict[str, Callable[[float], tuple[float, ...]] | None] = {
    "server": None,
    "to 0.5, 48 pts": _grid(0.5, 48),
    "to 0.999, 16 pts": _grid(0.999, 16),
}


@contextmanager
def grid(name: str) -> Iterator[None]:
    """Run with another mixture grid (patches `stats.alternatives` in THIS process)."""
    replacement = GRIDS[name]
    if replacement is None:
        yield
        return
    original = stats.alternatives
    stats.alternatives = replacement  # type: ignore[assignment]
    try:
        yield
    finally:
        stats.alternatives = original


def run_chunk(scenario: Scenario, runs: range, seed: int) -> tuple[list[Outcome], float]:
    """Outcomes of these runs, and the CPU seconds they took."""
    started = time.process_time()
    with grid(scenario.grid):
        outcomes = [simulate(scenario, run, seed) for run in runs]
    return outcomes, time.process_time() - started


# --- the scenarios ----------------------------------------------------------------------


def _horizon(guards: str) -> float:
    """How long a run may hold before it counts as not done: 2 h, or 1 h with the default
    guard, whose ramps often hold for hours on a baseline at its limit (and would
    dominate the time this takes)."""
    return 3600.0 if guards == DEFAULT else 7200.0


def healthy(guards: str, rps: float, section: str = "a", **kw: Any) -> Scenario:
    key = f"healthy/{guards}/{rps:g}/{kw}"
    return Scenario(key, section, guards, rps, horizon=_horizon(guards), **kw)


def bad_start(guards: str, rps: float, section: str = "b", **kw: Any) -> Scenario:
    return Scenario(
        f"bad-start/{guards}/{rps:g}/{kw}", section, guards, rps, bad_from=0, horizon=3600.0, **kw
    )


def bad_third(guards: str, rps: float, section: str = "c", **kw: Any) -> Scenario:
    return Scenario(
        f"bad-third/{guards}/{rps:g}/{kw}",
        section,
        guards,
        rps,
        bad_from=2,
        horizon=_horizon(guards),
        **kw,
    )


def default_scenarios() -> list[Scenario]:
    return [
        healthy(REC, 100),
        healthy(REC, 1000),
        healthy(WARN, 1000),
        healthy(DEFAULT, 100),
        healthy(DEFAULT, 1000),
        bad_start(REC, 100),
        bad_start(REC, 10_000),
        bad_start(DEFAULT, 100),
        bad_start(DEFAULT, 10_000),
        bad_start(REC, 10_000, pipeline=True),
        bad_third(REC, 100),
        bad_third(REC, 1000),
        bad_third(DEFAULT, 1000),
        bad_third(REC, 1000, pipeline=True),
    ]


SENSITIVITY: list[dict[str, Any]] = [
    {"alpha": 0.01},
    {"grid": "to 0.5, 48 pts"},
    {"grid": "to 0.999, 16 pts"},
]
SWEEP_EXPOSED_RPS = (2, 5, 10, 20, 50)


def explore_scenarios() -> list[Scenario]:
    out = [
        healthy(WARN, 100),
        healthy(REC, 1000, pipeline=True),
        bad_start(REC, 100, pipeline=True),
    ]
    for variant in [{}, *SENSITIVITY]:
        out += [
            healthy(REC, 100, "x", **variant),
            healthy(DEFAULT, 100, "x", **variant),
            bad_start(REC, 100, "x", **variant),
            bad_start(REC, 1000, "x", **variant),
            bad_third(REC, 100, "x", **variant),
        ]
    out += [bad_start(REC, x * 100, "s") for x in SWEEP_EXPOSED_RPS]
    # At the limits: exposed exactly 1.5x the control rate (the relative guard's max), and
    # the default guard at a baseline equal to its max: false rollbacks are bounded by
    # alpha per guard and stage here, and this shows how close they come.
    for variant in [{}, {"alpha": 0.01}]:
        out += [
            healthy(REC, 1000, "l", exposed_rate=BASELINE * 1.5, **variant),
            healthy(DEFAULT, 1000, "l", **variant),
        ]
    return out


# --- running ----------------------------------------------------------------------------


@dataclass
class Result:
    scenario: Scenario
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0


def run_all(scenarios: Sequence[Scenario], runs: int, seed: int, jobs: int) -> list[Result]:
    """Every scenario's outcomes; scenarios that differ only in the table they are shown
    in (the same key) are simulated once."""
    results = [Result(s) for s in scenarios]
    first: dict[str, int] = {}
    for i, s in enumerate(scenarios):
        first.setdefault(s.key, i)
    chunk = max(25, runs // 8)
    pieces = [
        (i, range(start, min(start + chunk, runs)))
        for i in sorted(set(first.values()))
        for start in range(0, runs, chunk)
    ]
    started = time.perf_counter()

    def collect(i: int, part: range, done: tuple[list[Outcome], float]) -> None:
        results[i].outcomes += done[0]
        results[i].seconds += done[1]
        if part.stop == runs:
            _progress(results[i], started)

    if jobs <= 1:
        for i, part in pieces:
            collect(i, part, run_chunk(scenarios[i], part, seed))
        return _share(results, first)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [
            (i, part, pool.submit(run_chunk, scenarios[i], part, seed)) for i, part in pieces
        ]
        for i, part, future in futures:
            collect(i, part, future.result())
    return _share(results, first)


def _share(results: list[Result], first: dict[str, int]) -> list[Result]:
    for r in results:
        source = results[first[r.scenario.key]]
        if source is not r:
            r.outcomes, r.seconds = source.outcomes, 0.0
    return results


def _progress(result: Result, started: float) -> None:
    s = result.scenario
    extra = " pipeline" if s.pipeline else ""
    if s.alpha != stats.DEFAULT_ALPHA or s.grid != "server":
        extra += f" ({variant_label(s)})"
    print(
        f"  {s.key.split('/')[0]:<10} {s.guards:<20} {s.total_rps:>6g} req/s{extra}: "
        f"{result.seconds:5.1f} CPU s ({time.perf_counter() - started:.0f}s so far)",
        flush=True,
    )


# --- statistics for the tables ----------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank; values may hold math.inf for runs that never got there."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _log_binom_pmf(k: int, n: int, p: float) -> float:
    if p <= 0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1:
        return 0.0 if k == n else -math.inf
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def upper_bound(events: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen `events` times in `n`."""
    if events >= n:
        return 1.0
    lo, hi = events / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        cdf = sum(math.exp(_log_binom_pmf(k, n, mid)) for k in range(events + 1))
        lo, hi = (mid, hi) if cdf > 1 - confidence else (lo, mid)
    return hi


def poisson_tail(c: int, lam: float) -> float:
    """P(K >= c) for K ~ Poisson(lam)."""
    if c <= 0:
        return 1.0
    term, below = math.exp(-lam), 0.0
    for k in range(c):
        below += term
        term *= lam / (k + 1)
    return max(0.0, 1.0 - below)


def kl_bernoulli(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def seconds(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "never"
    if value >= 3600:
        return f"{value / 3600:.1f}h"
    return f"{value:.0f}s" if value < 600 else f"{value / 60:.0f}m"


def count(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "-"
    return f"{value:,.0f}"


def share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def traffic_label(s: Scenario, exposure: float | None = None) -> str:
    if exposure is None:
        label = f"{s.total_rps:,.0f}/s" + (" pipeline" if s.pipeline else "")
        if s.exposed_rate != BASELINE:
            label += f", exp {s.exposed_rate:.2%}"
        return label
    exposed = s.total_rps * exposure
    label = f"{s.total_rps:,.0f}/s ({exposed:,.0f} exp/s)"
    return label + (" pipeline" if s.pipeline else "")


def variant_label(s: Scenario) -> str:
    parts = []
    if s.alpha != stats.DEFAULT_ALPHA:
        parts.append(f"alpha {s.alpha:g}")
    if s.grid != "server":
        parts.append(f"grid {s.grid}")
    return ", ".join(parts) or "as shipped"


# --- reports ----------------------------------------------------------------------------


def report_healthy(results: Sequence[Result], with_variant: bool = False) -> None:
    head = f"{'guards':<20} {'traffic':<17} "
    if with_variant:
        head = f"{'variant':<24} " + head
    print(
        head + f"{'runs':>5} {'rolled back':>11} {'95% bound':>9} {'paused':>7} "
        f"{'guard hold':>10} {'to 100% p50':>11} {'p90':>6} {'p99':>6} {'not done':>8}"
    )
    for r in results:
        n = len(r.outcomes)
        back = sum(o.end == "rolled_back" for o in r.outcomes)
        paused = sum(o.end == "paused" for o in r.outcomes)
        hold = sum(o.guard_hold for o in r.outcomes)
        done = [o.at if o.end == "completed" else math.inf for o in r.outcomes]
        not_done = f"{sum(o.end == 'horizon' for o in r.outcomes)} in {seconds(r.scenario.horizon)}"
        row = f"{r.scenario.guards:<20} {traffic_label(r.scenario):<17} "
        if with_variant:
            row = f"{variant_label(r.scenario):<24} " + row
        print(
            row + f"{n:>5} {share(back, n):>11} {upper_bound(back, n):>9.2%} "
            f"{share(paused, n):>7} {share(hold, n):>10} "
            f"{seconds(percentile(done, 50)):>11} {seconds(percentile(done, 90)):>6} "
            f"{seconds(percentile(done, 99)):>6} {not_done:>8}"
        )
    for r in results:
        n = len(r.outcomes)
        held: dict[str, int] = {}
        for o in r.outcomes:
            for label in o.held_by:
                held[label] = held.get(label, 0) + 1
        if held:
            by = ", ".join(f"{label} {share(k, n)}" for label, k in sorted(held.items()))
            label = variant_label(r.scenario) + ", " if with_variant else ""
            print(f"  guard holds, {label}{r.scenario.guards}, {traffic_label(r.scenario)}: {by}")


def report_bad(
    results: Sequence[Result], exposure_of: Callable[[Scenario], float], with_variant: bool = False
) -> None:
    head = f"{'guards':<20} {'traffic (total, exposed)':<28} "
    if with_variant:
        head = f"{'variant':<24} " + head
    print(
        head + f"{'runs':>5} {'rolled back':>11} {'in 60s':>6} {'delay p50':>9} {'p90':>6} "
        f"{'p99':>6} {'exposed req p50':>15} {'p90':>7} {'p99':>7} {'exp. errors p50':>15} "
        f"{'missed':>6} {'other':>5}"
    )
    for r in results:
        n = len(r.outcomes)
        caught = [o.end == "rolled_back" and o.bad_at is not None for o in r.outcomes]
        delays = [
            o.at - (o.bad_at or 0.0) if hit else math.inf
            for o, hit in zip(r.outcomes, caught, strict=True)
        ]
        fast = sum(d <= 60 for d in delays)
        exposed = [
            o.exposed_bad if hit else math.inf for o, hit in zip(r.outcomes, caught, strict=True)
        ]
        errors = [
            o.exposed_bad_errors if hit else math.inf
            for o, hit in zip(r.outcomes, caught, strict=True)
        ]
        missed = sum(o.end == "completed" for o in r.outcomes)
        other = n - sum(caught) - missed
        row = f"{r.scenario.guards:<20} {traffic_label(r.scenario, exposure_of(r.scenario)):<28} "
        if with_variant:
            row = f"{variant_label(r.scenario):<24} " + row
        print(
            row + f"{n:>5} {share(sum(caught), n):>11} {share(fast, n):>6} "
            f"{seconds(percentile(delays, 50)):>9} {seconds(percentile(delays, 90)):>6} "
            f"{seconds(percentile(delays, 99)):>6} {count(percentile(exposed, 50)):>15} "
            f"{count(percentile(exposed, 90)):>7} {count(percentile(exposed, 99)):>7} "
            f"{count(percentile(errors, 50)):>15} {missed:>6} {other:>5}"
        )


def report_bound(exposed_rps: Sequence[float]) -> None:
    """What any test could do at 1% exposure within 60 s, from the data alone."""
    print(
        f"{'exposed req/s':>13} {'requests in 60s':>15} {'errors if 0.1%':>14} "
        f"{'errors if 2%':>12} {'>=1 error':>9} {'best power a=0.01':>17} "
        f"{'a=0.001':>7} {'oracle SPRT mean':>16}"
    )
    for rate in exposed_rps:
        n = rate * 60
        lam0, lam1 = n * BASELINE, n * BAD
        powers = []
        for alpha in (0.01, 0.001):
            c = 0
            while poisson_tail(c, lam0) > alpha:
                c += 1
            powers.append(poisson_tail(c, lam1))
        sprt = math.log(1 / stats.DEFAULT_ALPHA) / (rate * kl_bernoulli(BAD, BASELINE))
        print(
            f"{rate:>13g} {n:>15,.0f} {lam0:>14.2f} {lam1:>12.1f} "
            f"{poisson_tail(1, lam1):>9.1%} {powers[0]:>17.1%} {powers[1]:>7.1%} "
            f"{seconds(sprt):>16}"
        )
    print(
        "(exposed errors in 60 s are Poisson; `best power` is the most powerful fixed-time "
        "test at that false-alarm level that also knows the baseline exactly: the share of "
        "bad releases it could catch within 60 s. `>=1 error`: even rolling back on the "
        "first error catches no more. `oracle SPRT mean`: mean time for a sequential test "
        "that knows both rates exactly, at alpha 0.001)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, help="runs per scenario (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="base seed (default 1)")
    parser.add_argument("--quick", action="store_true", help="200 runs per scenario")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes (default: 2, or 1 on one CPU)",
    )
    parser.add_argument(
        "--exact", action="store_true", help="exact request rates instead of Poisson arrivals"
    )
    parser.add_argument(
        "--explore", action="store_true", help="also alpha, grid and exposed-traffic sweeps"
    )
    args = parser.parse_args(argv)
    runs = args.runs or (200 if args.quick else 1000)

    scenarios = default_scenarios()
    if args.explore:
        scenarios += explore_scenarios()
    if args.exact:
        scenarios = [replace(s, exact=True, key=s.key + "/exact") for s in scenarios]
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; {runs} runs per "
        f"scenario, seed {args.seed}, {args.jobs} job(s), "
        f"{'exact rates' if args.exact else 'Poisson arrivals'}; tick {TICK:g}s; "
        f"alpha {stats.DEFAULT_ALPHA:g}"
    )
    print(
        f"plan: stages {STAGES}, min_stage_duration {MIN_STAGE_DURATION}, min_samples "
        f"{MIN_SAMPLES}; baseline error rate {BASELINE:.1%}, bad {BAD:.0%} "
        f"({BAD / BASELINE:.0f}x)"
    )
    started = time.perf_counter()
    results = run_all(scenarios, runs, args.seed, args.jobs)
    by_section: dict[str, list[Result]] = {}
    for r in results:
        by_section.setdefault(r.scenario.section, []).append(r)

    print("\n(a) Healthy release: 0.1% errors in both groups")
    report_healthy(by_section["a"])
    print(
        "(rolled back = false rollbacks; 95% bound = one-sided Clopper-Pearson upper bound "
        "of that rate; paused = a guard's warn level stopped the ramp; guard hold = at "
        "least one tick where time and samples were met but a guard was not yet healthy; "
        "to 100% = virtual time to complete, runs that did not complete count as never; "
        "not done = runs still held when the simulated time ran out)"
    )

    print("\n(b) Bad release from the start: exposed 2% errors (20x) at the 1% stage")
    report_bad(by_section["b"], lambda s: 0.01)
    print(
        "(delay = virtual seconds from the ramp start to the rollback; in 60s = share of "
        "runs rolled back within 60 s; exposed req/errors = exposed requests and their "
        "errors until the rollback; missed = runs that reached 100% first)"
    )
    print("\nWhat the data allow at 1% exposure within 60 s (any test, however built):")
    report_bound([1, 100])

    print("\n(c) Healthy until the 50% stage, then exposed 2% errors")
    report_bad(by_section["c"], lambda s: 0.5)
    print(
        "(delay = from the 50% stage start, when the exposed group turned bad, to the "
        "rollback; exposed req = exposed requests since then; missed = runs that "
        "reached 100% before a rollback; other = runs that ended before the 50% stage or "
        "were still held before it after 2 h (1 h with the default guard))"
    )

    if args.explore:
        print("\n(x) Sensitivity: alpha and the mixture grid (the server's code, patched here)")
        x = by_section["x"]
        report_healthy([r for r in x if r.scenario.bad_from is None], with_variant=True)
        print()
        report_bad([r for r in x if r.scenario.bad_from == 0], lambda s: 0.01, with_variant=True)
        print()
        report_bad([r for r in x if r.scenario.bad_from == 2], lambda s: 0.5, with_variant=True)
        print(
            "\n(l) At the limits: exposed 0.15% vs 0.1% control (relative max +50%), "
            "and the default guard (max 0.1%) on a 0.1% baseline"
        )
        report_healthy(by_section["l"], with_variant=True)
        print("\n(s) Bad from the start at 1% exposure: how much exposed traffic 60 s needs")
        report_bad(by_section["s"], lambda s: 0.01)
        report_bound([2, 5, 10, 20, 50])

    print(f"\nsimulated in {time.perf_counter() - started:.0f}s")
    _goals(by_section)
    return 0


def _goals(by_section: dict[str, list[Result]]) -> None:
    print()
    for r in by_section["a"]:
        n = len(r.outcomes)
        back = sum(o.end == "rolled_back" for o in r.outcomes)
        met = back / n < 0.01
        print(
            f"goal: false rollbacks under 1%, {r.scenario.guards}, "
            f"{traffic_label(r.scenario)}: {'met' if met else 'NOT met'} "
            f"({back}/{n}, 95% bound {upper_bound(back, n):.2%})"
        )
    for r in by_section["b"]:
        n = len(r.outcomes)
        fast = sum(
            o.end == "rolled_back" and o.bad_at is not None and o.at - o.bad_at <= 60
            for o in r.outcomes
        )
        met = fast / n >= 0.99
        print(
            f"goal: 20x regression at 1% rolled back within 60 s, {r.scenario.guards}, "
            f"{traffic_label(r.scenario, 0.01)}: {'met' if met else 'NOT met'} "
            f"({fast / n:.1%} of runs)"
        )


if __name__ == "__main__":
    sys.exit(main())
