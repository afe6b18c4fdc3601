"""Contract 2, stated as properties: what a ramp promises the people being ramped.

Every test builds flag documents the way a team would write them, parses and compiles
them with the real core, and evaluates. The statistical tests use fixed salts and fixed
units, so they are deterministic: a failure is a real change in the bucketing, not bad luck.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graylane.core import (
    BUCKETS,
    Reason,
    Snapshot,
    bucket,
    compile_document,
    evaluate,
    parse_document,
    threshold,
)
from graylane.core.document import KEY_PATTERN

ENV = "production"
OUTSIDE = "off"
"""The `otherwise` variant: never one of the rollout's own variants, so it marks outsiders."""

# --- building documents --------------------------------------------------------------------


def percent(thousandths: int) -> int | float:
    """A percentage with up to three decimals, as a document would spell it (10, 33.333)."""
    return thousandths // 1000 if thousandths % 1000 == 0 else thousandths / 1000


def rollout_snapshot(
    key: str,
    salt: str | None,
    thousandths: int,
    weights: Sequence[tuple[str, int]] = (("on", 100_000),),
    *,
    description: str = "",
) -> Snapshot:
    """Parse and compile, from scratch, one flag whose fallthrough is a rollout.

    `weights` are (variant, weight in thousandths of a percent), summing to 100 percent.
    """
    variants = {name: name for name, _ in weights} | {OUTSIDE: OUTSIDE}
    flag: dict[str, object] = {
        "description": description,
        "variants": variants,
        "off_variant": OUTSIDE,
        "environments": {
            ENV: {
                "enabled": True,
                "fallthrough": {
                    "rollout": {
                        "percentage": percent(thousandths),
                        "variants": {name: percent(w) for name, w in weights},
                    },
                    "otherwise": OUTSIDE,
                },
            }
        },
    }
    if salt is not None:
        flag["salt"] = salt
    return compile_document(parse_document({"flags": {key: flag}}), ENV)


def variants_by_unit(snapshot: Snapshot, key: str, units: Iterable[str]) -> dict[str, str | None]:
    return {unit: evaluate(snapshot, key, {"targetingKey": unit}).variant for unit in units}


def exposed(snapshot: Snapshot, key: str, units: Iterable[str]) -> set[str]:
    return {unit for unit, v in variants_by_unit(snapshot, key, units).items() if v != OUTSIDE}


# --- strategies ----------------------------------------------------------------------------

flag_keys = st.from_regex(KEY_PATTERN, fullmatch=True)
salts = st.none() | st.text(min_size=1, max_size=40).filter(lambda s: s.strip() and "\0" not in s)
"""No salt (the key is the salt) or any non-blank text a document may hold (no NUL)."""
units = st.lists(st.text(max_size=24), min_size=1, max_size=60, unique=True)
thousandths = st.integers(min_value=0, max_value=BUCKETS)
"""A percentage from 0 to 100 in steps of 0.001, counted in thousandths."""


@st.composite
def two_percentages(draw: st.DrawFn) -> tuple[int, int]:
    low, high = sorted((draw(thousandths), draw(thousandths)))
    return low, high


@st.composite
def variant_weights(draw: st.DrawFn) -> list[tuple[str, int]]:
    """One to five variants whose weights have up to three decimals and sum to exactly 100.
    Zero weights are allowed: such a variant is never served."""
    count = draw(st.integers(min_value=1, max_value=5))
    cuts = sorted(draw(st.lists(thousandths, min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, BUCKETS]
    return [(f"v{i}", bounds[i + 1] - bounds[i]) for i in range(count)]


@st.composite
def ramp_stages(draw: st.DrawFn) -> list[int]:
    """A rising plan of percentages, in thousandths, ending at 100."""
    stages = draw(st.lists(thousandths, min_size=1, max_size=6, unique=True))
    return sorted({*stages, BUCKETS})


PROPERTY = settings(max_examples=150, deadline=None)

# --- the contract formula ------------------------------------------------------------------


@PROPERTY
@given(key=flag_keys, salt=salts, units=units, p=thousandths, weights=variant_weights())
def test_a_rollout_decides_exactly_by_the_contract_formula(
    key: str, salt: str | None, units: list[str], p: int, weights: list[tuple[str, int]]
) -> None:
    snapshot = rollout_snapshot(key, salt, p, weights)
    flag_salt = key if salt is None else salt
    assert threshold(percent(p)) == p
    for unit in units:
        result = evaluate(snapshot, key, {"targetingKey": unit})
        assert result.reason == Reason.SPLIT
        assert result.bucket == bucket(flag_salt, unit)
        if bucket(flag_salt, unit) >= p:
            assert result.variant == OUTSIDE
            continue
        variant_bucket = bucket(f"{flag_salt}:variant", unit)
        cumulative = 0
        for name, weight in weights:
            cumulative += weight
            if variant_bucket < cumulative:
                assert result.variant == name
                break


@PROPERTY
@given(key=flag_keys, salt=salts, units=units)
def test_zero_percent_exposes_nobody_and_a_hundred_percent_exposes_everyone(
    key: str, salt: str | None, units: list[str]
) -> None:
    assert exposed(rollout_snapshot(key, salt, 0), key, units) == set()
    assert exposed(rollout_snapshot(key, salt, BUCKETS), key, units) == set(units)


# --- ramping up, rolling back --------------------------------------------------------------


@PROPERTY
@given(key=flag_keys, salt=salts, units=units, percentages=two_percentages())
def test_raising_the_percentage_only_adds_units(
    key: str, salt: str | None, units: list[str], percentages: tuple[int, int]
) -> None:
    lower, higher = percentages
    before = exposed(rollout_snapshot(key, salt, lower), key, units)
    after = exposed(rollout_snapshot(key, salt, higher), key, units)
    assert before <= after, f"lost the change when ramping up: {sorted(before - after)}"


@PROPERTY
@given(
    key=flag_keys,
    salt=salts,
    units=units,
    percentages=two_percentages(),
    weights=variant_weights(),
)
def test_a_units_variant_does_not_change_as_the_percentage_grows(
    key: str,
    salt: str | None,
    units: list[str],
    percentages: tuple[int, int],
    weights: list[tuple[str, int]],
) -> None:
    lower, higher = percentages
    before = variants_by_unit(rollout_snapshot(key, salt, lower, weights), key, units)
    after = variants_by_unit(rollout_snapshot(key, salt, higher, weights), key, units)
    for unit, variant in before.items():
        if variant != OUTSIDE:
            assert after[unit] == variant, f"{unit!r} switched from {variant} to {after[unit]}"


@PROPERTY
@given(
    key=flag_keys,
    salt=salts,
    units=units,
    stages=ramp_stages(),
    weights=variant_weights(),
)
def test_rolling_back_to_zero_and_ramping_again_exposes_the_same_units_in_the_same_order(
    key: str,
    salt: str | None,
    units: list[str],
    stages: list[int],
    weights: list[tuple[str, int]],
) -> None:
    def ramp(description: str) -> list[dict[str, str | None]]:
        # A fresh document per stage, as every edit of the flag produces one.
        return [
            variants_by_unit(
                rollout_snapshot(key, salt, p, weights, description=description), key, units
            )
            for p in stages
        ]

    first = ramp("first attempt")
    rolled_back = rollout_snapshot(key, salt, 0, weights, description="rolled back")
    assert exposed(rolled_back, key, units) == set()
    second = ramp("second attempt, after the fix")
    assert second == first

    def exposure_order(results: list[dict[str, str | None]]) -> dict[str, int]:
        """For each unit, the stage at which it first got the change."""
        return {
            unit: next(i for i, stage in enumerate(results) if stage[unit] != OUTSIDE)
            for unit in units
        }

    assert exposure_order(second) == exposure_order(first)


# --- independence and uniformity (deterministic statistics) --------------------------------

N = 20_000
"""Units for the independence and share tests: large enough for tight bounds, still fast."""
UNITS = [f"user-{i}" for i in range(N)]


def within_sigmas(observed: float, n: int, p: float, sigmas: float) -> bool:
    """`observed` successes out of `n` lie within `sigmas` binomial standard deviations."""
    return abs(observed - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


SALT_PAIRS = [
    ("new-checkout", "search-ranking"),
    ("flag-1", "flag-2"),  # keys that differ in one character
    ("checkout", "checkout-v2"),  # one salt a prefix of the other
    ("new-checkout", "new-checkout:variant"),  # a flag's exposure salt and its variant salt
]


@pytest.mark.parametrize(("salt_a", "salt_b"), SALT_PAIRS)
def test_two_flags_at_fifty_percent_both_expose_about_a_quarter_of_units(
    salt_a: str, salt_b: str
) -> None:
    # Two flags in one document, each at 50%: independent halves overlap in a quarter.
    half = {"percentage": 50, "variants": {"on": 100}}
    document = parse_document(
        {
            "flags": {
                key: {
                    "salt": salt,
                    "environments": {
                        ENV: {"enabled": True, "fallthrough": {"rollout": half, "otherwise": "off"}}
                    },
                }
                for key, salt in (("flag-a", salt_a), ("flag-b", salt_b))
            }
        }
    )
    snapshot = compile_document(document, ENV)
    in_a = exposed(snapshot, "flag-a", UNITS)
    in_b = exposed(snapshot, "flag-b", UNITS)
    both = len(in_a & in_b)
    assert within_sigmas(both, N, 0.25, sigmas=4), f"{both} of {N} units in both, expected ~{N / 4}"


@pytest.mark.parametrize(("salt_a", "salt_b"), SALT_PAIRS)
def test_a_units_buckets_for_two_salts_agree_no_more_often_than_chance(
    salt_a: str, salt_b: str
) -> None:
    pairs = [(bucket(salt_a, unit), bucket(salt_b, unit)) for unit in UNITS]
    # Exactly the same bucket: chance is 1 in 100,000, so about N / 100,000 = 0.2 units.
    # Poisson(0.2) reaches 4 with probability below 1e-4.
    same = sum(a == b for a, b in pairs)
    assert same < 4, f"{same} units share their exact bucket"
    # The same whole percent (a coarser view that catches weaker correlation): 1 in 100.
    same_percent = sum(a // 1000 == b // 1000 for a, b in pairs)
    assert within_sigmas(same_percent, N, 0.01, sigmas=4), f"{same_percent} share their percent"


def test_exposure_and_variant_choice_are_independent() -> None:
    # Variants hash with their own salt, so the units inside a 10% rollout still split 50/50.
    weights = [("a", 50_000), ("b", 50_000)]
    snapshot = rollout_snapshot("split", None, 10_000, weights)
    inside = [v for v in variants_by_unit(snapshot, "split", UNITS).values() if v != OUTSIDE]
    share_of_a = inside.count("a")
    assert within_sigmas(share_of_a, len(inside), 0.5, sigmas=4), f"{share_of_a} of {len(inside)}"


CHI_SQUARE_99_DF_999 = 148.23
"""Critical value of the chi-square distribution with 99 degrees of freedom at 0.999
(from standard tables; scipy.stats.chi2.ppf(0.999, 99) = 148.2304). A uniform hash
exceeds it one time in a thousand."""


@pytest.mark.parametrize(
    "salt", ["new-checkout", "new-checkout:variant", "a", "Ünïcødé-flag", "flag-1", "flag-2"]
)
def test_buckets_are_uniform_across_a_hundred_bins(salt: str) -> None:
    n = 100_000
    counts = Counter(bucket(salt, f"user-{i}") * 100 // BUCKETS for i in range(n))
    expected = n / 100
    chi_square = sum((counts[b] - expected) ** 2 / expected for b in range(100))
    assert chi_square < CHI_SQUARE_99_DF_999, f"chi-square {chi_square:.1f} for salt {salt!r}"


@pytest.mark.parametrize("percentage", [0.1, 1, 10, 33.333, 50, 99])
def test_a_rollout_of_p_percent_exposes_p_percent_of_units(percentage: float) -> None:
    n = 100_000
    p = round(percentage * 1000)
    snapshot = rollout_snapshot("share", None, p)
    count = len(exposed(snapshot, "share", (f"user-{i}" for i in range(n))))
    assert within_sigmas(count, n, percentage / 100, sigmas=3), (
        f"{count} of {n} units inside a {percentage}% rollout"
    )
