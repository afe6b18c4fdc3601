"""The guards' statistics: always-valid tests that may be looked at after every batch of
counts without raising more false alarms than their level promises."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graylane_server.ramps.stats import (
    DEFAULT_ALPHA,
    alternatives,
    exceeds,
    log_evidence,
    relative_null,
)

P0 = 0.01


def test_no_data_is_no_evidence_either_way() -> None:
    assert log_evidence(0, 0, P0) == 0.0
    assert not exceeds(0, 0, P0)
    assert not exceeds(0, 0, P0, alpha=0.5)


def test_thirty_errors_in_a_hundred_requests_is_clear_evidence_against_one_percent() -> None:
    evidence = log_evidence(30, 100, P0)
    # far beyond the default threshold log(1/0.001) = 6.9, not just over it
    assert evidence > 5 * math.log(1 / DEFAULT_ALPHA)
    assert exceeds(30, 100, P0)


def test_a_rate_below_the_limit_gives_no_evidence_however_many_requests() -> None:
    for errors, requests in ((0, 10), (0, 100_000), (5, 1000), (900, 100_000)):
        assert errors / requests < P0
        assert log_evidence(errors, requests, P0) < 0
        assert not exceeds(errors, requests, P0, alpha=0.5)


def test_a_rate_exactly_at_the_limit_is_not_evidence_against_it() -> None:
    for requests in (100, 1000, 10_000, 100_000):
        assert not exceeds(round(requests * P0), requests, P0)


def test_a_rate_slightly_above_the_limit_needs_many_requests_to_count() -> None:
    # 1.5% against 1%: noise at a thousand requests, clear at a hundred thousand
    assert not exceeds(15, 1000, P0)
    assert exceeds(1500, 100_000, P0)


@given(
    requests=st.integers(min_value=1, max_value=20_000),
    data=st.data(),
    p0=st.sampled_from([0.0005, 0.001, 0.01, 0.05, 0.2]),
)
@settings(max_examples=200, deadline=None)
def test_evidence_grows_with_every_further_error(
    requests: int, data: st.DataObject, p0: float
) -> None:
    errors = data.draw(st.integers(min_value=0, max_value=requests - 1))
    assert log_evidence(errors + 1, requests, p0) > log_evidence(errors, requests, p0)


def test_evidence_is_monotone_over_a_whole_range_of_errors() -> None:
    values = [log_evidence(k, 2000, P0) for k in range(0, 2001, 5)]
    assert values == sorted(values)
    assert values[0] < 0 < values[-1]


def test_the_alternatives_lie_above_the_null_and_below_one() -> None:
    grid = alternatives(P0)
    assert len(grid) > 10
    assert all(P0 < p < 1 for p in grid)
    assert list(grid) == sorted(grid)


# --- monitored after every batch, under the null ----------------------------------------


def error_counts(rng: random.Random, rate: float, requests: int) -> Iterator[int]:
    """The cumulative error count after each request, drawn as geometric gaps between
    errors (a Bernoulli(rate) sequence without one random number per request)."""
    log_miss = math.log(1 - rate)
    next_error = int(math.log(1 - rng.random()) / log_miss) + 1
    errors = 0
    for index in range(1, requests + 1):
        if index == next_error:
            errors += 1
            next_error += int(math.log(1 - rng.random()) / log_miss) + 1
        yield errors


def share_monitored_runs_rejecting(
    rejects: Callable[[int, int], bool],
    rate: float,
    *,
    runs: int,
    looks: int,
    batch: int,
    seed: int,
) -> float:
    """Of `runs` simulated stages, the share in which a test looked at after every batch
    of `batch` requests (for `looks` batches) ever rejects."""
    rng = random.Random(seed)
    rejected = 0
    for _ in range(runs):
        cumulative = list(error_counts(rng, rate, looks * batch))
        for look in range(1, looks + 1):
            n = look * batch
            if rejects(cumulative[n - 1], n):
                rejected += 1
                break
    return rejected / runs


def naive_z_test(alpha: float) -> Callable[[int, int], bool]:
    """A fixed-sample one-sided test: right once, wrong when looked at again and again."""
    z = {0.05: 1.6449}[alpha]

    def rejects(errors: int, requests: int) -> bool:
        sd = math.sqrt(P0 * (1 - P0) / requests)
        return (errors / requests - P0) / sd > z

    return rejects


RUNS, LOOKS, BATCH, ALPHA = 300, 40, 250, 0.05


def test_monitoring_after_every_batch_under_the_null_keeps_false_alarms_within_alpha() -> None:
    """Under the null (true rate == p0), Ville's inequality bounds the chance that the
    mixture ever crosses 1/alpha by alpha, however often it is looked at. Here: 300
    stages of 10,000 requests, looked at 40 times each, at alpha = 5% (large enough for
    false alarms to be countable). We assert at most 2 * alpha of runs reject; if the
    guarantee holds, exceeding that has probability at most 1.3e-4 (binomial tail: mean <= 15
    of 300, sd ~3.8). The seeded generator makes the outcome repeatable."""
    share = share_monitored_runs_rejecting(
        lambda k, n: exceeds(k, n, P0, alpha=ALPHA),
        P0,
        runs=RUNS,
        looks=LOOKS,
        batch=BATCH,
        seed=20240611,
    )
    assert share <= 2 * ALPHA, f"{share:.1%} of monitored null runs rejected"
    # the same monitoring defeats a fixed-sample test at the same level: the simulation
    # is able to see the problem the mixture avoids
    naive = share_monitored_runs_rejecting(
        naive_z_test(ALPHA), P0, runs=RUNS, looks=LOOKS, batch=BATCH, seed=20240611
    )
    assert naive > 2 * ALPHA, f"the naive test rejected only {naive:.1%}"
    assert share < naive / 2


def test_the_same_monitoring_catches_a_doubled_error_rate_in_most_runs() -> None:
    share = share_monitored_runs_rejecting(
        lambda k, n: exceeds(k, n, P0, alpha=DEFAULT_ALPHA),
        2 * P0,
        runs=100,
        looks=LOOKS,
        batch=BATCH,
        seed=7,
    )
    assert share >= 0.9, f"only {share:.0%} of runs at twice the limit were caught"


# --- relative guards: two rates as one -----------------------------------------------------


def test_relative_null_with_equal_groups_and_no_allowance_is_one_half() -> None:
    assert relative_null(1000, 1000, 0.0) == pytest.approx(0.5)


def test_relative_null_weights_the_exposed_side_by_the_allowed_increase() -> None:
    # exposed rate up to 1.5 x control, 100 exposed vs 900 unexposed requests:
    # errors from the exposed side are at most 150 / (150 + 900) of all errors
    assert relative_null(100, 900, 0.5) == pytest.approx(150 / 1050)
    assert relative_null(100, 900, 1.0) == pytest.approx(200 / 1100)
    assert relative_null(0, 900, 0.5) == 0.0
    assert relative_null(100, 0, 0.5) == pytest.approx(1.0)


@given(
    exposed=st.integers(min_value=1, max_value=10**6),
    control=st.integers(min_value=1, max_value=10**6),
    low=st.floats(min_value=0, max_value=5),
    extra=st.floats(min_value=0.01, max_value=5),
)
def test_relative_null_grows_with_the_allowance_and_the_exposed_share(
    exposed: int, control: int, low: float, extra: float
) -> None:
    base = relative_null(exposed, control, low)
    assert 0 < base < 1
    assert relative_null(exposed, control, low + extra) > base
    assert relative_null(exposed * 2, control, low) > base


def test_relative_null_is_the_share_of_errors_when_exposure_is_exactly_that_much_worse() -> None:
    """Conditioning on errors: if the exposed rate is (1 + m) times the control rate, the
    chance an error came from the exposed group is `relative_null`, whatever the rate."""
    rng = random.Random(11)
    exposed, control, increase = 20_000, 80_000, 0.5
    for base_rate in (0.01, 0.04):
        from_exposed = sum(rng.random() < base_rate * (1 + increase) for _ in range(exposed))
        from_control = sum(rng.random() < base_rate for _ in range(control))
        share = from_exposed / (from_exposed + from_control)
        assert share == pytest.approx(relative_null(exposed, control, increase), abs=0.04)
