"""Always-valid sequential tests for rates.

A guard looks at its counts every few seconds for as long as a stage runs. An ordinary
fixed-sample test checked that often would raise false alarms far above its nominal
level. Here each test is a mixture likelihood ratio: under the null hypothesis it is a
nonnegative supermartingale, so by Ville's inequality the chance that it *ever* reaches
1/alpha, however often it is looked at, is at most alpha.

The null is one-sided, "the rate is at most p0": a unit's outcome is an error with
probability p. For every alternative p1 > p0 the likelihood ratio
(p1/p0)^k ((1-p1)/(1-p0))^(n-k) has expectation at most 1 under any p <= p0, and so does
a fixed mixture of them over a grid of alternatives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

DEFAULT_ALPHA = 0.001
"""Per guard and stage; with a handful of guards and stages the chance of a false
rollback over a whole ramp stays well under 1% (measured by simulation)."""

_GRID_POINTS = 48


@lru_cache(maxsize=256)
def alternatives(p0: float) -> tuple[float, ...]:
    """Alternatives from just above p0 up to (nearly) 1, spaced geometrically in the odds,
    so a doubling and a hundredfold increase are both well represented."""
    low = min(max(p0 * 1.05, 1e-9), 0.999)
    odds_low, odds_high = low / (1 - low), 0.999 / 0.001
    if odds_low >= odds_high:
        return (low,)
    step = (odds_high / odds_low) ** (1 / (_GRID_POINTS - 1))
    return tuple(o / (1 + o) for o in (odds_low * step**i for i in range(_GRID_POINTS)))


def log_evidence(successes: int, trials: int, p0: float) -> float:
    """log of the mixture likelihood ratio against "rate <= p0" after `successes` in
    `trials` (0 with no trials: no evidence either way)."""
    if trials <= 0 or p0 >= 1:
        return 0.0
    if p0 <= 0:
        return math.inf if successes > 0 else 0.0
    failures = trials - successes
    terms = [
        successes * math.log(p1 / p0) + failures * math.log((1 - p1) / (1 - p0))
        for p1 in alternatives(p0)
    ]
    return _log_mean_exp(terms)


def exceeds(successes: int, trials: int, p0: float, alpha: float = DEFAULT_ALPHA) -> bool:
    """True once the data show, at level `alpha` valid under continuous monitoring, that
    the rate is above `p0`."""
    return log_evidence(successes, trials, p0) >= math.log(1 / alpha)


def relative_null(exposed_trials: int, control_trials: int, max_increase: float) -> float:
    """For "the exposed rate is at most (1 + max_increase) times the control rate":
    given an error happened, the chance it came from the exposed group is at most this.
    (Conditioning on errors turns two rates into one, testable like an absolute rate.)"""
    weighted = exposed_trials * (1 + max_increase)
    return weighted / (weighted + control_trials)


def _log_mean_exp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values) / len(values))
