"""Specification of the small helpers behind the operators and ramp plans:
SemVer 2.0.0 precedence, RFC 3339 instants and human-written durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest

from graylane.core.dates import parse_instant
from graylane.core.durations import format_duration, parse_duration
from graylane.core.semver import Version, parse_version


def version(text: str) -> Version:
    parsed = parse_version(text)
    assert parsed is not None, f"{text!r} should be a valid semantic version"
    return parsed


# --- semantic versions --------------------------------------------------------------------

# The precedence example of SemVer 2.0.0, section 11, in ascending order.
SPEC_PRERELEASE_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
]


@pytest.mark.parametrize(("lower", "higher"), list(pairwise(SPEC_PRERELEASE_ORDER)))
def test_semver_prerelease_precedence_follows_the_spec_example(lower: str, higher: str) -> None:
    assert version(lower) < version(higher)
    assert version(higher) > version(lower)
    assert version(lower) != version(higher)


def test_semver_sorting_the_spec_example_reproduces_its_order() -> None:
    shuffled = [SPEC_PRERELEASE_ORDER[i] for i in (7, 3, 0, 5, 2, 6, 1, 4)]
    assert sorted(shuffled, key=version) == SPEC_PRERELEASE_ORDER


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0", "2.0.0"),
        ("2.0.0", "2.1.0"),
        ("2.1.0", "2.1.1"),
        ("1.9.0", "1.10.0"),  # numeric, not lexical
        ("1.0.9", "1.0.10"),
        ("0.9.99", "1.0.0"),
        ("1.0.0-2", "1.0.0-10"),  # numeric identifiers compare as numbers
        ("1.0.0-999", "1.0.0-alpha"),  # numeric identifiers sort before alphanumeric ones
        ("1.0.0-alpha", "1.0.0-alpha.0"),  # a longer set of identifiers wins when equal so far
        ("1.0.0-Beta", "1.0.0-alpha"),  # alphanumeric identifiers compare in ASCII order
        ("1.0.0-rc.9", "1.0.0-rc.10"),
        ("1.0.0-rc.1", "1.0.0"),  # a release outranks its pre-releases
        ("1.0.0", "1.0.1-alpha"),
    ],
)
def test_semver_precedence(lower: str, higher: str) -> None:
    assert version(lower) < version(higher)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.0.0+build.1", "1.0.0"),
        ("1.0.0+build.1", "1.0.0+build.2"),
        ("1.0.0-alpha+001", "1.0.0-alpha"),
        ("1.0.0+20130313144700", "1.0.0+exp.sha.5114f85"),
        ("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta"),
    ],
)
def test_semver_build_metadata_is_ignored_for_precedence(a: str, b: str) -> None:
    assert version(a) == version(b)
    assert hash(version(a)) == hash(version(b))
    assert not version(a) < version(b)
    assert not version(b) < version(a)


def test_semver_parts_are_parsed() -> None:
    parsed = version("10.20.30-rc.1.x-y+build")
    assert (parsed.major, parsed.minor, parsed.patch) == (10, 20, 30)
    assert parsed.prerelease == ("rc", 1, "x-y")


def test_semver_a_leading_v_is_tolerated() -> None:
    assert version("v1.2.3") == version("1.2.3")
    assert version("V1.2.3-rc.1") == version("1.2.3-rc.1")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-01",  # numeric pre-release identifiers have no leading zeros
        "1.2.3-",
        "1.2.3+",
        "1.2.3-alpha..1",
        "1.2.3+build..1",
        "1.2.3-al_pha",
        "-1.2.3",
        "a.b.c",
        " 1.2.3",
        "1.2.3 ",
        "vv1.2.3",
        "1.2.x",
        "latest",
        "1.2.3\n",  # a trailing newline is not part of a version
        "\uff11.\uff12.\uff13",  # full-width digits: SemVer digits are ASCII
        "1\u0660.0.0",  # an Arabic-Indic zero
    ],
)
def test_semver_invalid_strings_give_none(text: str) -> None:
    assert parse_version(text) is None


# --- RFC 3339 instants --------------------------------------------------------------------


def test_dates_z_and_plus_zero_offset_are_the_same_instant() -> None:
    z = parse_instant("2026-01-31T09:00:00Z")
    offset = parse_instant("2026-01-31T09:00:00+00:00")
    assert z is not None
    assert z == offset
    assert z == datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


def test_dates_other_offsets_denote_the_same_instant_in_utc() -> None:
    # Given the same moment written in Berlin (+01:00) and New York (-05:00) time
    berlin = parse_instant("2026-01-31T10:00:00+01:00")
    new_york = parse_instant("2026-01-31T04:00:00-05:00")
    # Then both are 09:00 UTC
    assert berlin == new_york == parse_instant("2026-01-31T09:00:00Z")


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-31T09:00:00.5Z",
        "2026-01-31T09:00:00.123456Z",
        "2026-01-31t09:00:00z",  # RFC 3339 allows lower case T and Z
        "2026-01-31 09:00:00Z",  # and a space instead of T
        "2026-12-31T23:59:59-12:00",
    ],
)
def test_dates_valid_rfc3339_strings_are_accepted(text: str) -> None:
    instant = parse_instant(text)
    assert instant is not None
    assert instant.utcoffset() is not None


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-31T09:00:00",  # naive: no offset, so no instant
        "2026-01-31 09:00:00",
        "2026-01-31",  # a date alone
        "09:00:00Z",
        "2026-01-31T09:00Z",  # seconds are required
        "2026-01-31T09:00:00+0100",  # the offset needs its colon
        "2026-02-30T09:00:00Z",  # no such day
        "2026-01-31T24:00:00Z",
        "31/01/2026 09:00",
        "yesterday",
        "",
    ],
)
def test_dates_naive_or_malformed_strings_are_rejected(text: str) -> None:
    assert parse_instant(text) is None


def test_dates_aware_datetime_objects_are_accepted_as_they_are() -> None:
    aware = datetime(2026, 1, 31, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert parse_instant(aware) is aware
    assert parse_instant(aware) == parse_instant("2026-01-31T09:00:00Z")


def test_dates_naive_datetime_objects_are_rejected() -> None:
    assert parse_instant(datetime(2026, 1, 31, 9, 0)) is None


@pytest.mark.parametrize("value", [None, 1769850000, 1769850000.0, True, ["2026-01-31T09:00:00Z"]])
def test_dates_non_string_values_are_not_instants(value: object) -> None:
    assert parse_instant(value) is None


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),  # spaces between parts are allowed
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("0s", 0.0),
        ("1d2h3m4s", 86400.0 + 7200 + 180 + 4),
    ],
)
def test_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10",
        "m",
        "10x",
        "-5m",
        "1h30",
        "10 minutes",
        "ten minutes",
        "1.h",
        "h1",
        "1w",
        "10m\n",  # a trailing newline is not part of a duration
        "\uff11\uff10m",  # full-width digits
    ],
)
def test_durations_invalid_text_gives_none(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (30, "30s"),
        (90, "90s"),
        (600, "10m"),
        (5400, "90m"),
        (7200, "2h"),
        (86400, "1d"),
        (172800, "2d"),
        (0.5, "500ms"),
        (1.5, "1.5s"),
    ],
)
def test_durations_format_gives_the_shortest_spelling(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    "seconds",
    [
        0,
        0.001,
        0.0015,
        0.25,
        1,
        1.5,
        59,
        60,
        61,
        600,
        3599,
        3600,
        5400,
        86399,
        86400,
        90061,
        604800,
        100000.5,
        1234567.5,
        2.0000001,
        1e-7,
    ],
)
def test_durations_format_round_trips_through_parse(seconds: float) -> None:
    # Exactly: the text is the shortest *exact* spelling
    assert parse_duration(format_duration(seconds)) == seconds
