"""Always-valid confidence sequences for a guard's harm, from sufficient statistics.

A guard asks whether the exposed group's mean (an error rate, a latency) exceeds a limit
`theta`: absolutely (`mu_x <= theta`) or relative to the unexposed group
(`mu_x <= theta * mu_u`). Both are tested through one linear statistic, stratified by the
rollout percentage that produced the counts (within one percentage the exposed share is
fixed by randomisation, so a baseline that moves over time moves both groups alike and
cancels; mixing percentages is what produced Simpson's paradox):

    T(theta) = sum_s [ A_xs - theta * lambda_s * A_us ],   lambda_s = B_xs / B_us

(A: the metric's summed values, B: its observations; absolute guards have no `u` term,
`lambda_s A_us` reads as `B_xs`). Under `harm == theta`, E[T] = 0, and T is a sum of
independent cluster totals (units fall in fixed clusters, so a unit's correlated requests
stay in one term). Its variance is the larger of

- the cluster-robust ("bucket") estimate sum_c r_c^2 * C/(C-1), with r_c the cluster's
  centred residual: the delta method for a ratio metric with the cluster as the unit
  (Deng, Knoblich, Lu 2018, "Applying the delta method in metric analytics", §3), and
- the model variance if requests were independent, at the fit constrained to the
  boundary (binomial for event rates, so zero observed errors still carry variance).

The boundary is the one-sided normal mixture (Howard, Ramdas, McAuliffe, Sekhon 2021,
"Time-uniform, nonparametric, nonasymptotic confidence sequences", eq. (14); the mSPRT of
Johari, Koomen, Pekelis, Walsh 2017 "Peeking at A/B tests" is the same mixture):

    u(V) = sqrt( 2 (V + rho) log( sqrt((V + rho) / rho) / (2 alpha) + 1 ) )

P(exists t: T_t >= u(V_t)) <= alpha for a martingale with Gaussian increments and
variance process V; with the variance estimated this holds asymptotically
(Waudby-Smith, Arbour, Sinha, Kennedy, Ramdas 2021, "Time-uniform central limit theory
and asymptotic confidence sequences", Thm 2.2). The error rates it actually produces are
measured by `bench/ramp_simulation.py`, not assumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SMALL_SAMPLE_Z = 3.3
"""The normal quantile the small-sample correction is taken at (about the guards' level)."""

MIN_CLUSTERS = 4
"""Clusters the exposed group must occupy before its harm is judged either way. With
fewer, the exposed mean is a handful of units' own rates, their spread has fewer than
three degrees of freedom (the Student-t quantile at the guards' level is 13 or more
standard errors, beyond any expansion) and no variance estimate is trustworthy: one user
with ten times the usual error rate would read as a regression."""

RHO_EVENTS = 10.0
"""Mixture scale in units of the statistic's variance (for event rates: about ten
errors' worth). Makes the boundary tightest where guards usually decide."""


@dataclass(frozen=True, slots=True)
class Stratum:
    """One rollout percentage's sufficient statistics, per cluster: the exposed group's
    summed values `a_x` over `b_x` observations (and sum of squares `q_x`), the same
    for the unexposed group. `binary`: the values are 0/1 events (an error rate)."""

    a_x: tuple[float, ...]
    b_x: tuple[float, ...]
    q_x: tuple[float, ...]
    a_u: tuple[float, ...]
    b_u: tuple[float, ...]
    q_u: tuple[float, ...]
    binary: bool


@dataclass(frozen=True, slots=True)
class Test:
    """The statistic at one boundary `theta`: `t` and its variance `v`."""

    theta: float
    t: float
    v: float

    def above(self, alpha: float, rho: float = RHO_EVENTS) -> bool:
        """Evidence, valid under continuous monitoring, that the harm exceeds theta."""
        return self.v > 0 and self.t >= boundary(self.v, alpha, rho)

    def below(self, alpha: float, rho: float = RHO_EVENTS) -> bool:
        """Evidence, valid under continuous monitoring, that the harm is below theta."""
        return self.v > 0 and -self.t >= boundary(self.v, alpha, rho)


def boundary(v: float, alpha: float, rho: float = RHO_EVENTS) -> float:
    """One-sided normal-mixture boundary u(V) (Howard et al. 2021, eq. (14))."""
    return math.sqrt(2 * (v + rho) * math.log(math.sqrt((v + rho) / rho) / (2 * alpha) + 1))


@dataclass(frozen=True, slots=True)
class Summary:
    """Cluster-level sums that let T and V be evaluated at any theta in O(strata)."""

    strata: tuple[tuple[float, ...], ...]
    """Per stratum: A_x, B_x, Q_x, A_u, B_u, Q_u, lambda, binary (1.0/0.0)."""
    sxx: float
    sxy: float
    syy: float
    clusters: int
    relative: bool
    occupied: int = 0
    """Clusters in which the exposed group has observations."""

    @property
    def exposed(self) -> float:
        return sum(s[1] for s in self.strata)

    def estimate(self) -> float | None:
        """The pooled harm: the exposed mean (absolute) or the exposed-to-unexposed
        ratio of means, strata weighted by their exposed observations (relative)."""
        a_x = sum(s[0] for s in self.strata)
        if not self.relative:
            b_x = self.exposed
            return a_x / b_x if b_x else None
        denominator = sum(s[6] * s[3] for s in self.strata)
        return a_x / denominator if denominator > 0 else None

    def test(self, theta: float) -> Test:
        t = 0.0
        model = 0.0
        for a_x, b_x, q_x, a_u, b_u, q_u, lam, binary in self.strata:
            if not self.relative:
                t += a_x - theta * b_x
                model += _variance(a_x, b_x, q_x, theta, binary > 0)
                continue
            t += a_x - theta * lam * a_u
            if binary > 0:  # the fit constrained to mu_x = theta * mu_u
                mu_u = (a_x + a_u) / (theta * b_x + b_u) if theta * b_x + b_u > 0 else 0.0
                model += _variance(a_x, b_x, q_x, theta * mu_u, True)
                model += (theta * lam) ** 2 * _variance(a_u, b_u, q_u, mu_u, True)
            else:
                model += _variance(a_x, b_x, q_x, a_x / b_x if b_x else 0.0, False)
                mu_u = a_u / b_u if b_u else 0.0
                model += (theta * lam) ** 2 * _variance(a_u, b_u, q_u, mu_u, False)
        robust = self.sxx - 2 * theta * self.sxy + theta**2 * self.syy
        c = self.clusters
        if not self.relative:
            robust -= t * t / c if c else 0.0
        robust = max(0.0, robust) * c / (c - 1) if c > 1 else 0.0
        if self.occupied < MIN_CLUSTERS:
            return Test(theta, t, 0.0)  # too few exposed units to judge: no evidence
        return Test(theta, t, max(robust * small_sample(self.occupied), model))

    def lower(self, alpha: float, rho: float = RHO_EVENTS) -> float | None:
        """The always-valid lower bound of the harm (None: no estimate yet)."""
        estimate = self.estimate()
        return None if estimate is None else _solve(self, estimate, alpha, rho, up=False)

    def upper(self, alpha: float, rho: float = RHO_EVENTS) -> float | None:
        """The always-valid upper bound of the harm (None: unbounded so far)."""
        estimate = self.estimate()
        return None if estimate is None else _solve(self, estimate, alpha, rho, up=True)


def small_sample(occupied: int) -> float:
    """How much to widen a cluster-robust variance estimated from `occupied` clusters:
    with few units exposed, a unit with its own high error rate looks like a regression
    and the variance estimate itself is noisy. The square of the ratio of the Student-t
    quantile (nu = occupied - 1 degrees of freedom) to the normal quantile `z` at
    `SMALL_SAMPLE_Z`, the t quantile from the Cornish-Fisher expansion to four terms
    (Abramowitz and Stegun 26.7.5):

        t = z + g1/nu + g2/nu^2 + g3/nu^3 + g4/nu^4
        g1 = (z^3 + z) / 4
        g2 = (5 z^5 + 16 z^3 + 3 z) / 96
        g3 = (3 z^7 + 19 z^5 + 17 z^3 - 15 z) / 384
        g4 = (79 z^9 + 776 z^7 + 1482 z^5 - 1920 z^3 - 945 z) / 92160

    Within 5% of the exact quantile at nu = 3 (`MIN_CLUSTERS` - 1), within 0.2% from
    nu = 7 on (`tests/ramps/test_sequential.py` checks it against `scipy.stats.t`)."""
    z = SMALL_SAMPLE_Z
    nu = float(max(MIN_CLUSTERS, occupied) - 1)
    terms = (
        (z**3 + z) / 4,
        (5 * z**5 + 16 * z**3 + 3 * z) / 96,
        (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
        (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160,
    )
    t = z + sum(g / nu ** (k + 1) for k, g in enumerate(terms))
    return (t / z) ** 2


def _variance(a: float, b: float, q: float, mu: float, binary: bool) -> float:
    if b <= 0:
        return 0.0
    if binary:
        mu = min(max(mu, 0.0), 1.0)
        return b * mu * (1 - mu)
    return max(0.0, q - 2 * mu * a + mu * mu * b)


def _solve(summary: Summary, estimate: float, alpha: float, rho: float, up: bool) -> float | None:
    """The theta where the one-sided test at theta just stops rejecting, by bisection on
    a log scale (T is decreasing in theta)."""
    if up:
        low, high = max(estimate, 1e-9), max(estimate, 1e-9) * 2
        for _ in range(60):
            if summary.test(high).below(alpha, rho):
                break
            low, high = high, high * 2
        else:
            return None
    else:
        high, low = max(estimate, 1e-12), max(estimate, 1e-12) / 2
        for _ in range(40):
            if low < 1e-9 or summary.test(low).above(alpha, rho):
                break
            high, low = low, low / 2
        if low < 1e-9:
            return 0.0
    for _ in range(12):
        mid = math.sqrt(low * high)
        rejected = (
            summary.test(mid).below(alpha, rho) if up else summary.test(mid).above(alpha, rho)
        )
        if up:
            low, high = (low, mid) if rejected else (mid, high)
        else:
            low, high = (mid, high) if rejected else (low, mid)
    return high if up else low


def summarise(strata: Sequence[Stratum], relative: bool) -> Summary:
    """Collapse clusters into the sums `Summary.test` needs. Residuals are centred at
    each stratum's own means, so sum_c (x_c - theta y_c)^2 is quadratic in theta."""
    rows: list[tuple[float, ...]] = []
    clusters = len(strata[0].a_x) if strata else 0
    x = [0.0] * clusters
    y = [0.0] * clusters
    for s in strata:
        a_x, b_x, a_u, b_u = sum(s.a_x), sum(s.b_x), sum(s.a_u), sum(s.b_u)
        if relative and (b_x <= 0 or b_u <= 0):
            continue  # no comparison possible at this percentage (e.g. 100%)
        lam = b_x / b_u if b_u > 0 else 0.0
        rows.append((a_x, b_x, sum(s.q_x), a_u, b_u, sum(s.q_u), lam, 1.0 if s.binary else 0.0))
        mu_x = a_x / b_x if b_x else 0.0
        for c, (a, b) in enumerate(zip(s.a_x, s.b_x, strict=True)):
            x[c] += a - mu_x * b
        if relative:
            mu_u = a_u / b_u
            for c, (a, b) in enumerate(zip(s.a_u, s.b_u, strict=True)):
                y[c] += lam * (a - mu_u * b)
    if not relative:
        # T(theta) = sum_c (a_c - theta b_c): the residuals are the uncentred cluster terms,
        # centred across clusters in `Summary.test`.
        x = [0.0] * clusters
        y = [0.0] * clusters
        for s in strata:
            for c, (a, b) in enumerate(zip(s.a_x, s.b_x, strict=True)):
                x[c] += a
                y[c] += b
    sxx = sum(v * v for v in x)
    sxy = sum(a * b for a, b in zip(x, y, strict=True))
    syy = sum(v * v for v in y)
    occupied = sum(1 for c in range(clusters) if any(s.b_x[c] > 0 for s in strata))
    return Summary(tuple(rows), sxx, sxy, syy, clusters, relative, occupied)
