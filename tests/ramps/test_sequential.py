"""The confidence sequences guards read: the normal-mixture boundary, the cluster-robust
(delta method) variance, the model floor, and their error rates under monitoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from graylane_server.ramps.sequential import (
    MIN_CLUSTERS,
    SMALL_SAMPLE_Z,
    Stratum,
    boundary,
    small_sample,
    summarise,
)

C = 32


def stratum(
    a_x: np.ndarray, b_x: np.ndarray, a_u: np.ndarray | None = None, b_u: np.ndarray | None = None
) -> Stratum:
    zeros = np.zeros(C)
    a_u = zeros if a_u is None else a_u
    b_u = zeros if b_u is None else b_u
    return Stratum(
        tuple(map(float, a_x)),
        tuple(map(float, b_x)),
        tuple(map(float, a_x)),
        tuple(map(float, a_u)),
        tuple(map(float, b_u)),
        tuple(map(float, a_u)),
        True,
    )


def test_the_boundary_is_the_one_sided_normal_mixture_of_howard_et_al() -> None:
    v, rho, alpha = 250.0, 10.0, 0.001
    expected = math.sqrt(2 * (v + rho) * math.log(math.sqrt((v + rho) / rho) / (2 * alpha) + 1))
    assert boundary(v, alpha, rho) == pytest.approx(expected)
    # wider than any single look at the same level, and growing slower than v
    assert boundary(v, alpha, rho) > scipy_stats.norm.ppf(1 - alpha) * math.sqrt(v)
    assert boundary(4 * v, alpha, rho) < 4 * boundary(v, alpha, rho)


def test_the_cluster_variance_is_the_delta_method_variance_of_a_ratio() -> None:
    # Deng, Knoblich, Lu 2018, eq. for a ratio of means over C independent clusters:
    # Var(R) = (s_a^2 - 2 R s_ab + R^2 s_b^2) / (C mu_b^2)
    rng = np.random.default_rng(3)
    b = rng.poisson(5000, C).astype(float)
    a = rng.binomial(b.astype(int), 0.01 * rng.gamma(2.0, 0.5, C)).astype(float)
    summary = summarise([stratum(a, b)], relative=False)
    ratio = a.sum() / b.sum()
    cov = np.cov(np.vstack([a, b]), ddof=1)
    delta = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (C * b.mean() ** 2)
    test = summary.test(ratio)
    # widened only by the small-sample factor for 32 clusters
    assert test.v / small_sample(C) / b.sum() ** 2 == pytest.approx(delta, rel=1e-9)


def test_zero_errors_still_carry_the_binomial_variance_at_the_limit() -> None:
    b = np.full(C, 100.0)
    summary = summarise([stratum(np.zeros(C), b)], relative=False)
    assert summary.test(0.05).v == pytest.approx(0.05 * 0.95 * 3200)


def test_a_relative_statistic_is_zero_in_expectation_at_the_true_ratio() -> None:
    b = np.full(C, 10_000.0)
    summary = summarise([stratum(b * 0.002, b, b * 0.001, b)], relative=True)
    assert summary.estimate() == pytest.approx(2.0)
    assert summary.test(2.0).t == pytest.approx(0.0, abs=1e-9)
    assert summary.test(1.5).t > 0
    assert summary.test(2.5).t < 0


@pytest.mark.parametrize("occupied", [MIN_CLUSTERS, 5, 6, 8, 12, 16, 24, C])
def test_the_small_sample_widening_is_the_student_t_quantile_ratio(occupied: int) -> None:
    z = SMALL_SAMPLE_Z
    exact = scipy_stats.t.ppf(scipy_stats.norm.cdf(z), occupied - 1) / z
    assert math.sqrt(small_sample(occupied)) == pytest.approx(exact, rel=0.05)
    if occupied >= 8:
        assert math.sqrt(small_sample(occupied)) == pytest.approx(exact, rel=0.002)


@pytest.mark.parametrize("occupied", range(1, MIN_CLUSTERS))
def test_exposed_units_in_fewer_than_min_clusters_are_no_evidence_either_way(
    occupied: int,
) -> None:
    # huge counts, exposed rate 4x the unexposed one, but all of it from a few units
    b_x = np.zeros(C)
    b_x[:occupied] = 100_000.0
    b_u = np.full(C, 100_000.0)
    summary = summarise([stratum(b_x * 0.04, b_x, b_u * 0.01, b_u)], relative=True)
    assert summary.estimate() == pytest.approx(4.0)
    for theta in (1.5, 10.0):
        assert not summary.test(theta).above(0.001)
        assert not summary.test(theta).below(0.01)
    assert summary.upper(0.01) is None


def _false_alarms(
    rng: np.random.Generator, runs: int, looks: int, clustered: bool, alpha: float
) -> int:
    """Monitor `looks` times a rate exactly at the limit; count runs that ever read
    evidence above it."""
    alarms = 0
    p0 = 0.01
    for _ in range(runs):
        a = np.zeros(C)
        b = np.zeros(C)
        # clustered: each cluster has its own rate around p0 (units differ), which a
        # request-level binomial variance ignores
        rates = p0 * rng.gamma(0.5, 2.0, C) if clustered else np.full(C, p0)
        rates *= p0 / (rates.mean())
        for _ in range(looks):
            n = rng.poisson(200, C)
            b += n
            a += rng.binomial(n, np.minimum(rates, 1.0))
            if summarise([stratum(a, b)], relative=False).test(p0).above(alpha):
                alarms += 1
                break
    return alarms


@pytest.mark.parametrize("clustered", [False, True])
def test_monitoring_a_rate_at_its_limit_after_every_batch_rarely_raises_an_alarm(
    clustered: bool,
) -> None:
    rng = np.random.default_rng(11 if clustered else 12)
    runs, alpha = 200, 0.05
    alarms = _false_alarms(rng, runs, looks=50, clustered=clustered, alpha=alpha)
    # Ville's bound is alpha for the whole sequence of 50 looks; allow the binomial
    # noise of 200 runs (upper 99.9% point of Binomial(300, alpha))
    assert alarms <= scipy_stats.binom.ppf(0.999, runs, alpha)
