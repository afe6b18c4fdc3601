"""Ramp guards under simulated traffic: false rollbacks, regressions that reach 100%,
rollbacks left undone, time to 100%.

    python bench/ramp_simulation.py              # 100 runs per row (docs/guards.md)
    python bench/ramp_simulation.py --quick      # 3 runs a row, 90 min (a test runs it)
    python bench/ramp_simulation.py --runs 400 --seed 7 --jobs 2
    python bench/ramp_simulation.py --only users # rows whose key contains "users"

Every read drives the server's own code, as the ramp controller does: a `RampPlan` from
`graylane.core.parse_ramp` (with its default guards, stages, time and samples unless the
row says otherwise), `graylane_server.ramps.guards.readings` on fabricated
`Observations`, then `graylane_server.ramps.decision.decide`. Only the clock, the traffic
and the reporting are simulated:

  clock     virtual, in 10-second usage buckets; the guards are read every 30 s (the
            controller reads every 5 s: detection here is up to 25 s slower, and fewer
            looks can only lower the false-alarm rates shown); an advance starts the next
            stage at that read; a pause keeps reading (a breach must still roll back);
            a rollback, reaching 100%, or the horizon ends the run
  traffic   per bucket and unit cluster, requests are Poisson around rate x 10 s x the
            group's share / 32 and each fails independently with its group's rate (many
            units); or, in `users` rows, 200 units with lognormal request rates and
            error rates spread tenfold, each exposed or not by its own bucket, so
            requests of one unit are correlated, as in the field
  reports   counts are filed by the SDK's window and the percentage that produced them,
            and reach the server `lag` seconds after their window ends (`bursty`: all at
            once every 5 minutes); `reported_until` follows

The goals: healthy releases rolled back in under 1% of runs in every row; no regression
of x2 or more reaching 100% in any row; every run in which a guard read a breach rolled
back (none left paused); the time to 100% of healthy ramps, the price of the above.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from graylane.core import parse_ramp
from graylane.core.model import RampPlan
from graylane_server.ramps.decision import Advance, Hold, Pause, RampState, Rollback, decide
from graylane_server.ramps.guards import RESTARTS, External, readings
from graylane_server.ramps.observations import CLUSTERS, Group, Observations, Series, Slice

BUCKET = 10
READ_EVERY = 30
NO_EXTERNAL = External()

WARN_GUARDS = [
    {"kind": "relative", "metric": "error_rate", "max": 0.5, "warn": 0.25},
    {"metric": "error_rate", "max": 0.2, "warn": 0.1},
]
GUARD_SETS: dict[str, list[dict[str, Any]] | None] = {
    "recommended": None,  # the plan's defaults, which README recommends
    "with warn": WARN_GUARDS,
}


def plan_for(guards: str) -> RampPlan:
    raw: dict[str, Any] = {"stages": [1, 10, 50, 100]}
    if GUARD_SETS[guards] is not None:
        raw["guards"] = GUARD_SETS[guards]
    return parse_ramp(raw)


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    section: str
    rps: float
    baseline: float
    mult: float = 1.0
    """The exposed group's error rate is `mult` x the baseline once it is bad."""
    bad_from: int = 0
    """The stage at which the exposed group turns bad (with `mult` != 1)."""
    bad_after: float = 0.0
    """Seconds into that stage."""
    guards: str = "recommended"
    users: int | None = None
    lag: float = 15.0
    bursty: bool = False
    incident: bool = False
    """Everyone's error rate x10 for 10 minutes from the 10% -> 50% change."""
    horizon: float = 3 * 3600.0

    @property
    def healthy(self) -> bool:
        return self.mult <= 1.0


@dataclass(slots=True)
class Outcome:
    end: str
    """completed (reached 100%), rolled_back, paused or running (at the horizon)."""
    at: float
    bad_at: float | None = None
    breached: bool = False
    """A guard read breach at some read."""
    stage: int = 0


class Traffic:
    """Per-cluster draws of one bucket, for both groups."""

    def __init__(self, s: Scenario, rng: np.random.Generator) -> None:
        self.s, self.rng = s, rng
        if s.users:
            weights = rng.lognormal(0.0, 1.0, s.users)
            self.rate = weights / weights.sum() * s.rps
            self.err = s.baseline * rng.gamma(1.0, 1.0, s.users)  # mean 1, spread ~10x
            self.err = np.minimum(self.err, 1.0)
            self.position = rng.random(s.users)
            self.cluster = rng.integers(0, CLUSTERS, s.users)

    def draw(self, share: float, rate_x: float, rate_u: float) -> tuple[np.ndarray, ...]:
        rng, s = self.rng, self.s
        if not s.users:
            lam = s.rps * BUCKET / CLUSTERS
            req_x = rng.poisson(lam * share, CLUSTERS)
            req_u = rng.poisson(lam * (1 - share), CLUSTERS)
            return (
                req_x,
                rng.binomial(req_x, min(rate_x, 1.0)),
                req_u,
                rng.binomial(req_u, min(rate_u, 1.0)),
            )
        requests = rng.poisson(self.rate * BUCKET)
        exposed = self.position < share
        scale = np.where(exposed, rate_x / s.baseline, rate_u / s.baseline)
        errors = rng.binomial(requests, np.minimum(self.err * scale, 1.0))
        out = []
        for mask in (exposed, ~exposed):
            out.append(np.bincount(self.cluster[mask], requests[mask], CLUSTERS).astype(int))
            out.append(np.bincount(self.cluster[mask], errors[mask], CLUSTERS).astype(int))
        return tuple(out)


def _series(counts: np.ndarray) -> Series:
    values = tuple(int(v) for v in counts)
    floats = tuple(float(v) for v in values)
    return Series(values, floats, floats)


class Blocks:
    """Reported buckets merged between the change detector's restart points (the guards
    read nothing finer), keyed by percentage and block start."""

    def __init__(self) -> None:
        self.sums: dict[tuple[Decimal, float], np.ndarray] = {}
        self.cache: dict[tuple[Decimal, float], Slice] = {}

    def add(self, key: tuple[Decimal, float], counts: np.ndarray) -> None:
        self.sums[key] = self.sums.get(key, 0) + counts
        self.cache.pop(key, None)

    def slices(self) -> tuple[Slice, ...]:
        out = []
        for key in sorted(self.sums, key=lambda k: k[1]):
            cached = self.cache.get(key)
            if cached is None:
                c = self.sums[key]
                cached = Slice(
                    key[1],
                    key[0],
                    Group({"request": _series(c[0]), "error": _series(c[1])}),
                    Group({"request": _series(c[2]), "error": _series(c[3])}),
                )
                self.cache[key] = cached
            out.append(cached)
        return tuple(out)


def _block_start(stage_start: float, t: float) -> float:
    return stage_start + max(r for r in RESTARTS if stage_start + r <= t)


def simulate(s: Scenario, run: int, seed: int) -> Outcome:  # noqa: PLR0915 - one loop
    digest = hashlib.sha256(f"{seed}:{s.key}:{run}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    plan = plan_for(s.guards)
    shares = [float(p) / 100 for p in plan.stages]
    last = len(shares) - 1
    traffic = Traffic(s, rng)
    state = RampState("running", 0, 0.0, 0.0)
    blocks = Blocks()
    pending: list[tuple[float, float, tuple[Decimal, float], np.ndarray]] = []
    outcome = Outcome("running", s.horizon)
    incident_from: float | None = None
    reported = 0.0
    t = 0.0
    while t < s.horizon:
        # one bucket of traffic at the current percentage
        stage = state.stage
        bad = s.mult != 1.0 and (
            stage > s.bad_from
            or (stage == s.bad_from and t - state.stage_started_at >= s.bad_after)
        )
        if bad and outcome.bad_at is None:
            outcome.bad_at = t
        factor = 10.0 if incident_from is not None and t < incident_from + 600 else 1.0
        rate_u = s.baseline * factor
        rate_x = rate_u * (s.mult if bad else 1.0)
        counts = np.array(traffic.draw(shares[stage], rate_x, rate_u))
        key = (plan.stages[stage], _block_start(state.stage_started_at, t))
        end = t + BUCKET
        arrives = end + s.lag
        if s.bursty:
            arrives = math.ceil(arrives / 300) * 300
        pending.append((arrives, end, key, counts))
        t = end
        if t % READ_EVERY:
            continue
        still = []
        for item in pending:
            if item[0] <= t:
                blocks.add(item[2], item[3])
                reported = max(reported, item[1])
            else:
                still.append(item)
        pending = still
        observations = Observations(blocks.slices(), reported if reported > 0 else None)
        found = readings(plan, state, observations, NO_EXTERNAL, t)
        if any(r.status == "breach" for r in found):
            outcome.breached = True
        decision = decide(plan, state, found, observations, t)
        if isinstance(decision, Hold):
            continue
        if isinstance(decision, Rollback):
            return _end(outcome, "rolled_back", t, stage)
        if isinstance(decision, Pause):
            state = RampState("paused", stage, state.stage_started_at, 0.0)
            continue
        assert isinstance(decision, Advance)
        if decision.stage == last:
            return _end(outcome, "completed", t, decision.stage)
        state = RampState("running", decision.stage, t, 0.0)
        if s.incident and plan.stages[decision.stage] == Decimal(50):
            incident_from = t
    return _end(outcome, state.status if state.status == "paused" else "running", t, state.stage)


def _end(outcome: Outcome, end: str, at: float, stage: int) -> Outcome:
    outcome.end, outcome.at, outcome.stage = end, at, stage
    return outcome


# --- the rows -----------------------------------------------------------------------------

BASELINES = (0.001, 0.01, 0.05)
RATES = (10, 100, 1000, 10_000)


def scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    out += [
        Scenario(f"healthy/{baseline}/{rps}", "healthy", rps, baseline)
        for baseline in BASELINES
        for rps in RATES
    ]
    out += [
        Scenario(f"x2/{baseline}/{rps}", "regression", rps, baseline, 2.0)
        for baseline in BASELINES
        for rps in RATES
    ]
    for mult in (1.1, 5.0, 20.0):
        for baseline in (0.001, 0.01):
            for rps in (10, 1000):
                mult_ = min(mult, 1 / baseline)
                key = f"x{mult:g}/{baseline}/{rps}"
                out.append(Scenario(key, "regression", rps, baseline, mult_))
    special = [
        Scenario("warn x5/0.01/1000", "special", 1000, 0.01, 5.0, guards="with warn"),
        Scenario("warn x20/0.001/100", "special", 100, 0.001, 20.0, guards="with warn"),
        Scenario("incident healthy/0.001/1000", "special", 1000, 0.001, incident=True),
        Scenario("incident healthy/0.001/10000", "special", 10_000, 0.001, incident=True),
        Scenario("late 700s x2 at 50%/0.01/1000", "special", 1000, 0.01, 2.0, 2, lag=700),
        Scenario("late 700s healthy/0.01/1000", "special", 1000, 0.01, lag=700),
        Scenario("bursty x2/0.01/1000", "special", 1000, 0.01, 2.0, bursty=True),
        Scenario("bursty healthy/0.01/1000", "special", 1000, 0.01, bursty=True),
        Scenario("users healthy/0.01/100", "special", 100, 0.01, users=200),
        Scenario("users healthy/0.01/1000", "special", 1000, 0.01, users=200),
        Scenario("users x2/0.01/1000", "special", 1000, 0.01, 2.0, users=200),
        Scenario("mid-50% x2/0.001/1000", "special", 1000, 0.001, 2.0, 2, 300.0),
        Scenario("mid-50% x2/0.01/1000", "special", 1000, 0.01, 2.0, 2, 300.0),
        Scenario("mid-50% x20/0.001/100", "special", 100, 0.001, 20.0, 2, 300.0),
    ]
    return out + special


# --- running ------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: Scenario
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0


def run_chunk(s: Scenario, runs: range, seed: int) -> tuple[list[Outcome], float]:
    started = time.process_time()
    outcomes = [simulate(s, run, seed) for run in runs]
    return outcomes, time.process_time() - started


def run_all(rows: Sequence[Scenario], runs: int, seed: int, jobs: int) -> list[Result]:
    results = [Result(s) for s in rows]
    chunk = max(2, math.ceil(runs / 4))
    pieces = [
        (i, range(a, min(a + chunk, runs))) for i in range(len(rows)) for a in range(0, runs, chunk)
    ]
    if jobs <= 1:
        for i, part in pieces:
            outcomes, cpu = run_chunk(rows[i], part, seed)
            results[i].outcomes += outcomes
            results[i].seconds += cpu
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [(i, pool.submit(run_chunk, rows[i], part, seed)) for i, part in pieces]
        for i, future in futures:
            outcomes, cpu = future.result()
            results[i].outcomes += outcomes
            results[i].seconds += cpu
    return results


def upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a share seen k times in n."""
    if n == 0:
        return math.nan
    if k >= n:
        return 1.0
    return float(scipy_stats.beta.ppf(confidence, k + 1, n - k))


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def duration(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "never"
    if value >= 3600:
        return f"{value / 3600:.1f}h"
    return f"{value / 60:.0f}m" if value >= 60 else f"{value:.0f}s"


def share(k: int, n: int) -> str:
    return f"{k}/{n} <={upper_bound(k, n):.1%}"


def report(results: Sequence[Result]) -> list[str]:
    """The table, and the goals that failed (empty: all met)."""
    failed: list[str] = []
    print(
        f"{'row':<32} {'runs':>4} {'rolled back (95% bound)':>24} {'reached 100%':>20} "
        f"{'breach left paused':>18} {'paused':>6} {'to 100% p50':>11} {'p90':>6} "
        f"{'caught p50':>10} {'CPU s':>6}"
    )
    for r in results:
        s, outs = r.scenario, r.outcomes
        n = len(outs)
        back = sum(o.end == "rolled_back" for o in outs)
        done = sum(o.end == "completed" for o in outs)
        left = sum(o.breached and o.end != "rolled_back" for o in outs)
        paused = sum(o.end == "paused" for o in outs)
        times = [o.at if o.end == "completed" else math.inf for o in outs]
        caught = [
            o.at - o.bad_at if o.end == "rolled_back" and o.bad_at is not None else math.inf
            for o in outs
        ]
        print(
            f"{s.key:<32} {n:>4} {share(back, n):>24} {share(done, n):>20} {left:>18} {paused:>6} "
            f"{duration(percentile(times, 50)):>11} {duration(percentile(times, 90)):>6} "
            f"{'-' if s.healthy else duration(percentile(caught, 50)):>10} {r.seconds:>6.1f}"
        )
        if s.healthy and back / n >= 0.01:
            failed.append(f"{s.key}: healthy ramps rolled back in {back}/{n}")
        if s.mult >= 2 and done:
            failed.append(f"{s.key}: a x{s.mult:g} regression reached 100% in {done}/{n}")
        if left:
            failed.append(f"{s.key}: {left} runs read a breach and were not rolled back")
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, help="runs per row (default 100; 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="3 runs per row, 90 minutes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--only", help="rows whose key contains this text")
    parser.add_argument(
        "--hours", type=float, help="virtual hours a run may last (default 3; 1.5 with --quick)"
    )
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 100)
    rows = [s for s in scenarios() if args.only is None or args.only in s.key]
    hours = args.hours or (1.5 if args.quick else None)
    if hours:
        rows = [replace(s, horizon=hours * 3600) for s in rows]
    plan = plan_for("recommended")
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; {runs} runs per row, "
        f"seed {args.seed}, {args.jobs} job(s); guards read every {READ_EVERY}s"
    )
    print(
        f"plan: stages {[float(p) for p in plan.stages]}, min_stage_duration "
        f"{plan.min_stage_duration:g}s, min_samples {plan.min_samples}; guards "
        + "; ".join(f"{g.kind} {g.metric} max {g.max:g}" for g in plan.guards if g.max)
    )
    started = time.perf_counter()
    results = run_all(rows, runs, args.seed, args.jobs)
    failed = report(results)
    print(
        "(rolled back / reached 100%: runs, with the one-sided 95% Clopper-Pearson upper "
        "bound of the share; breach left paused: runs where a guard read breach and the "
        "ramp did not roll back; to 100%: virtual time, runs that did not get there count "
        "as never; caught: from the regression's start to the rollback)"
    )
    print(
        f"\nsimulated in {time.perf_counter() - started:.0f}s, horizon {duration(rows[0].horizon)}"
    )
    for line in failed:
        print(f"goal NOT met: {line}")
    if not failed:
        print("every goal met in every row")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
