"""Guards read Observations: positive evidence of safety, per-unit (cluster) variance,
evidence carried across stages, a change detector, counts by the SDK's window and
percentage, no-data and sample-ratio readings, continuous metrics. Pure functions."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from scipy import stats as scipy_stats

from graylane.core.model import Guard, RampPlan
from graylane_server.ramps.decision import Advance, Hold, RampState, decide, stage_exposures
from graylane_server.ramps.guards import (
    NO_DATA_AFTER,
    External,
    Reading,
    read,
    readings,
    sample_ratio,
)
from graylane_server.ramps.observations import CLUSTERS, Group, Observations, Series, Slice
from graylane_server.ramps.sequential import boundary

RELATIVE = Guard(kind="relative", metric="error_rate", max=0.5)
CAP = Guard(metric="error_rate", max=0.05)
PLAN = RampPlan(
    stages=(Decimal(1), Decimal(10), Decimal(50), Decimal(100)),
    min_stage_duration=600.0,
    min_samples=1000,
    guards=(RELATIVE, CAP),
)
T0 = 1_000_000.0


def spread(n: int, clusters: int = CLUSTERS, offset: int = 0) -> tuple[int, ...]:
    """n spread as evenly as possible over `clusters` clusters, the remainder starting at
    cluster `offset` (so successive slices do not pile their remainders on the same
    clusters, which would read as units with higher error rates)."""
    base, extra = divmod(n, clusters)
    out = [base + (1 if (c - offset) % clusters < extra else 0) for c in range(clusters)]
    return tuple(out + [0] * (CLUSTERS - clusters))


def group(
    requests: int,
    errors: int,
    error_clusters: int = CLUSTERS,
    latency: float | None = None,
    offset: int = 0,
) -> Group:
    req = spread(requests)
    err = spread(errors, error_clusters, offset)
    series = {
        "request": Series(req, tuple(map(float, req)), tuple(map(float, req))),
        "error": Series(err, tuple(map(float, err)), tuple(map(float, err))),
    }
    if latency is not None:  # every request took `latency`, give or take 10%
        series["latency"] = Series(
            req,
            tuple(n * latency for n in req),
            tuple(n * latency**2 * 1.01 for n in req),
        )
    return Group(series)


def at(
    start: float,
    percentage: float,
    exposed: tuple[int, int],
    unexposed: tuple[int, int],
    error_clusters: int = CLUSTERS,
) -> Slice:
    return Slice(
        start,
        Decimal(str(percentage)),
        group(*exposed, error_clusters=error_clusters, offset=int(start) // 10),
        group(*unexposed, offset=int(start) // 10 + 16),
    )


def in_cluster(cluster: int, n: int) -> Series:
    """`n` plain events, all in one cluster (one unit's)."""
    count = tuple(n if c == cluster else 0 for c in range(CLUSTERS))
    return Series(count, tuple(map(float, count)), tuple(map(float, count)))


def running(stage: int, started: float = T0, ramp_started: float | None = None) -> RampState:
    return RampState("running", stage, started, ramp_started)


def reading(
    guard: Guard, slices: list[Slice], state: RampState, now: float, **kw: object
) -> Reading:
    observations = Observations(tuple(slices), now)
    return read(guard, observations, External(), plan=PLAN, state=state, now=now)


# --- defect 2: positive evidence ------------------------------------------------------------


def test_absence_of_evidence_does_not_advance() -> None:
    # 20,000 exposed requests at 1% with 30 errors against 0.1% unexposed: nothing shows
    # harm, and nothing shows its absence either (x2 is well within the noise)
    slices = [at(T0, 1, (20_000, 30), (1_980_000, 1980))]
    now = T0 + 600
    relative = reading(RELATIVE, slices, running(0), now)
    assert relative.status == "inconclusive"
    obs = Observations(tuple(slices), now)
    decision = decide(PLAN, running(0), readings(PLAN, running(0), obs, External(), now), obs, now)
    assert isinstance(decision, Hold)
    assert "error_rate-relative is inconclusive" in decision.reason


def test_positive_evidence_advances() -> None:
    slices = [at(T0, 50, (400_000, 400), (400_000, 400))]
    now = T0 + 600
    obs = Observations(tuple(slices), now)
    state = running(2)
    result = readings(PLAN, state, obs, External(), now)
    assert [r.status for r in result] == ["healthy", "healthy", "healthy"]
    upper = result[0].upper
    assert upper is not None
    assert upper < 1.5
    assert decide(PLAN, state, result, obs, now) == Advance(3, Decimal(100))


def test_an_absolute_guard_needs_its_upper_bound_below_max() -> None:
    # 30 clean requests cannot show a rate under 5%; 3,000 can
    few = reading(CAP, [at(T0, 10, (30, 0), (270, 0))], running(1), T0 + 600)
    many = reading(CAP, [at(T0, 10, (3000, 0), (27_000, 0))], running(1), T0 + 600)
    assert few.status == "inconclusive"
    assert many.status == "healthy"
    assert many.upper is not None
    assert many.upper < 0.05


def test_an_inconclusive_guard_says_how_long_the_current_traffic_needs() -> None:
    slices = [at(T0, 10, (20_000, 20), (180_000, 180))]
    result = reading(RELATIVE, slices, running(1), T0 + 300)
    assert result.status == "inconclusive"
    assert result.needs is not None
    assert result.needs > 0
    assert "more at the current traffic to show error_rate < 50% worse" in result.detail


def test_a_reading_shows_the_interval_of_the_harm_around_its_estimate() -> None:
    result = reading(RELATIVE, [at(T0, 50, (100_000, 200), (100_000, 100))], running(2), T0 + 60)
    assert result.value == pytest.approx(2.0)
    assert result.lower is not None
    assert result.upper is not None
    assert result.lower < 2.0 < result.upper
    assert result.limit == 1.5


# --- defect 4: the unit, not the request ---------------------------------------------------


def test_two_failing_requests_of_one_user_with_no_control_errors_do_not_breach() -> None:
    slices = [at(T0, 1, (1000, 2), (99_000, 0), error_clusters=1)]
    result = reading(RELATIVE, slices, running(0), T0 + 60)
    assert result.status not in ("breach", "warn")


def test_errors_concentrated_in_one_cluster_widen_the_interval() -> None:
    def upper(clusters: int) -> float:
        slices = [at(T0, 50, (100_000, 150), (100_000, 100), error_clusters=clusters)]
        bound = reading(RELATIVE, slices, running(2), T0 + 60).upper
        assert bound is not None
        return bound

    assert upper(2) > upper(CLUSTERS)


def test_a_unit_with_its_own_high_error_rate_alone_on_the_change_is_no_evidence() -> None:
    # at 1% of 200 users one user is exposed: its 4% error rate against everyone else's 1%
    # is that user's own, not the release's, so the guard neither breaches nor advances,
    # and after a stage's time without a comparison it says why and pauses
    lone = Slice(
        T0, Decimal(1), Group({"request": in_cluster(7, 20_000), "error": in_cluster(7, 800)})
    )
    slices = [replace(lone, unexposed=group(2_000_000, 20_000))]
    early = reading(RELATIVE, slices, running(0), T0 + 300)
    assert early.status == "inconclusive"
    assert "exposed units fall in 1 of 32 clusters, too few to judge" in early.detail
    late = reading(RELATIVE, slices, running(0), T0 + NO_DATA_AFTER)
    assert late.status == "no_data"
    assert late.upper is None


# --- defect 5: evidence across stages, change detection -----------------------------------


def test_evidence_carries_across_stages() -> None:
    earlier = at(T0, 10, (300_000, 300), (2_700_000, 2700))
    now_stage = at(T0 + 700, 50, (60_000, 60), (60_000, 60))
    state = running(2, started=T0 + 700, ramp_started=T0)
    alone = reading(RELATIVE, [now_stage], state, T0 + 1300)
    carried = reading(RELATIVE, [earlier, now_stage], state, T0 + 1300)
    assert alone.status == "inconclusive"
    assert carried.status == "healthy"


def test_a_regression_starting_mid_stage_is_caught_by_the_change_detector() -> None:
    # 20 minutes clean, then 6 minutes at 3x: diluted over the whole stage it is not a
    # breach, in the window restarted 16 minutes in it is
    clean = [at(T0 + 10 * i, 50, (10_000, 10), (10_000, 10)) for i in range(120)]
    bad = [at(T0 + 1200 + 10 * i, 50, (10_000, 30), (10_000, 10)) for i in range(36)]
    result = reading(RELATIVE, clean + bad, running(2), T0 + 1560)
    assert result.status == "breach"
    assert "into the stage" in result.detail


def test_a_recent_window_halfway_to_the_limit_holds_a_stage_the_whole_ramp_shows_safe() -> None:
    # 32 clean minutes show the ramp's harm below 1.5x; the 4 minutes since the window
    # restarted 1920 s into the stage read 1.35x, short of a breach but past halfway
    # (1.25x): the stage does not advance on them
    clean = [at(T0 + 10 * i, 50, (20_000, 20), (20_000, 20)) for i in range(192)]
    recent = [at(T0 + 1920 + 10 * i, 50, (20_000, 27), (20_000, 20)) for i in range(24)]
    assert reading(RELATIVE, clean, running(2), T0 + 1920).status == "healthy"
    held = reading(RELATIVE, clean + recent, running(2), T0 + 2160)
    assert held.status == "inconclusive"
    assert "reads more than 25% worse than unexposed since 1920s into the stage" in held.detail


def test_a_stage_counts_the_usage_bucket_it_started_in() -> None:
    # the stage began 5 s into a bucket: that bucket's traffic at 50% is the stage's own
    first = at(T0, 50, (300, 0), (300, 0))
    obs = Observations((first,), T0 + 30)
    assert stage_exposures(PLAN, running(2, started=T0 + 5), obs) == 300


# --- defect 3: counts by window and percentage ---------------------------------------------


def test_a_global_incident_at_a_stage_change_does_not_read_as_harm() -> None:
    # errors jump tenfold for everyone just as 10% becomes 50%: pooled, the exposed group
    # (mostly 50% traffic) looks far worse; stratified by percentage it is not
    before = at(T0, 10, (100_000, 100), (900_000, 900))
    after = at(T0 + 600, 50, (500_000, 5000), (500_000, 5000))
    state = running(2, started=T0 + 600, ramp_started=T0)
    result = reading(RELATIVE, [before, after], state, T0 + 700)
    assert result.status != "breach"
    assert result.value == pytest.approx(1.0, rel=0.05)


def test_only_slices_of_the_stage_percentage_count_as_its_exposures() -> None:
    late = at(T0 + 10, 10, (5000, 0), (45_000, 0))  # previous stage, reported late
    own = at(T0 + 20, 50, (300, 0), (300, 0))
    obs = Observations((late, own), T0 + 30)
    assert stage_exposures(PLAN, running(2), obs) == 300


def test_stale_reports_hold_the_stage() -> None:
    healthy = [Reading("g", "absolute", "healthy", "fine")]
    slices = (at(T0, 10, (100_000, 0), (900_000, 0)),)
    fresh = Observations(slices, T0 + 600)
    stale = Observations(slices, T0 + 520)
    assert isinstance(decide(PLAN, running(1), healthy, fresh, T0 + 600), Advance)
    held = decide(PLAN, running(1), healthy, stale, T0 + 600)
    assert isinstance(held, Hold)
    assert "behind the clock" in held.reason


# --- defect 6: no data ---------------------------------------------------------------------


def test_a_guard_with_no_data_for_too_long_reads_no_data() -> None:
    nobody = [at(T0, 1, (0, 0), (50_000, 50))]
    assert reading(RELATIVE, nobody, running(0), T0 + 60).status == "inconclusive"
    late = reading(RELATIVE, nobody, running(0), T0 + NO_DATA_AFTER)
    assert late.status == "no_data"
    prometheus = Guard(kind="prometheus", query="up", max=1)
    unreachable = External(values={"prometheus": None}, missing_since={"prometheus": T0})
    obs = Observations((), T0)
    result = read(prometheus, obs, unreachable, plan=PLAN, state=running(0), now=T0 + 3600)
    assert result.status == "no_data"


def test_a_relative_guard_with_no_control_events_says_there_is_nothing_to_compare() -> None:
    flawless = [at(T0, 10, (50_000, 0), (450_000, 0))]
    early = reading(RELATIVE, flawless, running(1), T0 + 60)
    assert early.status == "inconclusive"
    assert early.detail == "no error events among unexposed requests to compare with"
    assert reading(RELATIVE, flawless, running(1), T0 + NO_DATA_AFTER).status == "no_data"


# --- defect 7: continuous metrics and sample ratios ----------------------------------------


def test_a_relative_guard_on_latency_breaches_when_the_exposed_mean_is_far_higher() -> None:
    guard = Guard(kind="relative", metric="latency", max=0.3, warn=0.15)
    exposed = Group({**group(50_000, 0, latency=200.0).series})
    unexposed = Group({**group(50_000, 0, latency=100.0).series})
    slices = [Slice(T0, Decimal(50), exposed, unexposed)]
    result = reading(guard, slices, running(2), T0 + 60)
    assert result.status == "breach"
    assert result.value == pytest.approx(2.0)
    same = Slice(T0, Decimal(50), unexposed, unexposed)
    assert reading(guard, [same], running(2), T0 + 60).status == "healthy"


def test_a_sample_ratio_mismatch_is_read_against_the_rollout_percentage() -> None:
    # 60% exposed at a 50% rollout, over 100,000 requests
    skewed = Observations((at(T0, 50, (60_000, 0), (40_000, 0)),), T0)
    fair = Observations((at(T0, 50, (50_100, 0), (49_900, 0)),), T0)
    assert sample_ratio(skewed, running(2), T0).status == "mismatch"
    assert sample_ratio(fair, running(2), T0).status == "healthy"


def test_a_sample_ratio_a_hair_under_the_rollout_reads_zero_not_minus_zero() -> None:
    fair = Observations((at(T0, 50, (49_999, 0), (50_001, 0)),), T0)
    assert "exposed of 100000 requests, +0.0 standard errors" in (
        sample_ratio(fair, running(2), T0).detail
    )


def test_the_sample_ratio_z_matches_scipys_chi_square_at_a_single_look() -> None:
    obs = Observations((at(T0, 10, (10_320, 0), (89_680, 0)),), T0)
    result = sample_ratio(obs, running(1), T0)
    expected = scipy_stats.chisquare([10_320, 89_680], f_exp=[10_000, 90_000])
    assert result.value is not None
    assert result.value**2 == pytest.approx(expected.statistic, rel=1e-6)


def test_the_always_valid_boundary_is_wider_than_a_single_look_normal_bound() -> None:
    for v in (1.0, 10.0, 1e3, 1e6):
        single = scipy_stats.norm.ppf(1 - 0.001) * v**0.5
        assert boundary(v, 0.001) > single
