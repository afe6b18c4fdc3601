"""Write the cross-language test vectors in this folder.

    python tests/vectors/build_vectors.py            # (re)write the JSON files
    python tests/vectors/build_vectors.py --check    # exit 1 if a file is out of date

The vectors are the contract every Graylane SDK, in any language, must pass. This script
deliberately does not use the `graylane` package: every operator and targeting
expectation below is written down by hand from contract 1 (DESIGN.md), and every bucket
and rollout result is computed here with `mmh3` and the contract-2 formula, so the
vectors check the evaluation core instead of repeating it.

The output is deterministic: no randomness, insertion-ordered keys (variant and weight
order is part of a document's meaning, so keys are never sorted), `indent=1`, UTF-8 and a
trailing newline.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import mmh3

HERE = Path(__file__).resolve().parent
ENV = "production"
BUCKETS = 100_000

Json = Any
MISSING = object()
"""Marks an attribute that is absent from the context (as opposed to present and null)."""


# --- contract 2, written out independently of the core --------------------------------------


def bucket(salt: str, unit: str) -> int:
    return mmh3.hash(salt + ":" + unit, 0, signed=False) % BUCKETS


def threshold(percentage: int | float | str) -> int:
    return round(Decimal(str(percentage)) * 1000)


def unit_text(value: object) -> str | None:
    """The bucketing unit: strings as they are, integers as decimal text, else none."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def split(
    salt: str,
    percentage: int | float | str,
    weights: dict[str, int | float | str],
    otherwise: str,
    unit: str | None,
) -> tuple[str, int | None]:
    """(variant, inclusion bucket) for a unit under a rollout, by the contract-2 formula."""
    positive = [name for name, weight in weights.items() if threshold(weight) > 0]
    limit = threshold(percentage)
    if unit is None:
        return (positive[0] if limit >= BUCKETS else otherwise), None
    inclusion = bucket(salt, unit)
    if inclusion >= limit:
        return otherwise, inclusion
    variant_bucket = bucket(salt + ":variant", unit)
    cumulative = 0
    for name, weight in weights.items():
        cumulative += threshold(weight)
        if variant_bucket < cumulative:
            return name, inclusion
    raise AssertionError("weights must sum to 100")


def find_units(salt: str, wanted: Iterable[int], prefix: str = "user-") -> dict[int, str]:
    """For each wanted bucket, the first unit `prefix + N` (N = 0, 1, ...) that lands in it."""
    missing = set(wanted)
    found: dict[int, str] = {}
    n = 0
    while missing:
        unit = f"{prefix}{n}"
        b = bucket(salt, unit)
        if b in missing:
            found[b] = unit
            missing.discard(b)
        n += 1
        if n > 20_000_000:  # pragma: no cover - astronomically unlikely
            raise RuntimeError(f"no unit found for buckets {sorted(missing)} of {salt!r}")
    return found


def find_unit(salt: str, want: Callable[[int], bool], prefix: str = "user-") -> str:
    n = 0
    while not want(bucket(salt, f"{prefix}{n}")):
        n += 1
    return f"{prefix}{n}"


def find_split_unit(
    salt: str, inside: Callable[[int], bool], variant: Callable[[int], bool], prefix: str
) -> str:
    """The first unit `prefix + N` whose inclusion and variant buckets both suit."""
    n = 0
    while True:
        unit = f"{prefix}{n}"
        if inside(bucket(salt, unit)) and variant(bucket(salt + ":variant", unit)):
            return unit
        n += 1


# --- document helpers ----------------------------------------------------------------------

ON_OFF = {"on": True, "off": False}


def flag_doc(key: str, flag: dict[str, Json], segments: dict[str, Json] | None = None) -> Json:
    doc: dict[str, Json] = {"flags": {key: flag}}
    if segments is not None:
        doc["segments"] = segments
    return doc


def environment(
    rules: list[Json] | None = None, fallthrough: Json = None, *, enabled: bool = True
) -> Json:
    env: dict[str, Json] = {"enabled": enabled}
    if rules is not None:
        env["rules"] = rules
    if fallthrough is not None:
        env["fallthrough"] = fallthrough
    return env


def rollout(
    percentage: int | float,
    weights: dict[str, int | float],
    otherwise: str | None = None,
    bucket_by: str | None = None,
) -> Json:
    body: dict[str, Json] = {"percentage": percentage}
    if bucket_by is not None:
        body["bucket_by"] = bucket_by
    body["variants"] = weights
    serve: dict[str, Json] = {"rollout": body}
    if otherwise is not None:
        serve["otherwise"] = otherwise
    return serve


def case(
    name: str,
    document: Json,
    flag: str,
    context: dict[str, Json],
    value: Json,
    variant: str | None,
    reason: str,
    *,
    rule: str | None = None,
    bucket_: int | None = None,
    error_code: str | None = None,
    environment_: str = ENV,
) -> Json:
    expect: dict[str, Json] = {"value": value, "variant": variant, "reason": reason}
    if error_code is not None:
        expect["errorCode"] = error_code
    if rule is not None:
        expect["rule"] = rule
    if bucket_ is not None:
        expect["bucket"] = bucket_
    return {
        "name": name,
        "document": document,
        "environment": environment_,
        "flag": flag,
        "context": context,
        "expect": expect,
    }


class Cases(list[Json]):
    """A list of cases with shorthands for building them."""

    def add(
        self,
        name: str,
        document: Json,
        flag: str,
        context: dict[str, Json],
        *expect: Json,
        **kw: Any,
    ) -> None:
        self.append(case(name, document, flag, context, *expect, **kw))

    def split(
        self,
        name: str,
        key: str,
        *,
        percentage: int | float,
        weights: dict[str, int | float],
        context: dict[str, Json],
        variants: dict[str, Json] | None = None,
        otherwise: str | None = None,
        off_variant: str | None = None,
        bucket_by: str | None = None,
        salt: str | None = None,
    ) -> None:
        """A one-flag document whose fallthrough is this rollout; expectation by formula."""
        body: dict[str, Json] = {}
        if salt is not None:
            body["salt"] = salt
        body["variants"] = dict(ON_OFF) if variants is None else variants
        if off_variant is not None:
            body["off_variant"] = off_variant
        serve = rollout(percentage, weights, otherwise, bucket_by)
        body["environments"] = {ENV: environment(None, serve)}
        values = body["variants"]
        outside = otherwise or off_variant or "off"
        unit = unit_text(context.get(bucket_by or "targetingKey"))
        variant, b = split(salt or key, percentage, weights, outside, unit)
        self.add(
            name, flag_doc(key, body), key, context, values[variant], variant, "SPLIT", bucket_=b
        )


# --- operators.json ----------------------------------------------------------------------

# (operator, values, actual attribute value or MISSING, expected match, what the row shows)
OperatorRow = tuple[str, list[Json] | None, Json, bool, str]

NFC_ZURICH = "Z\u00fcrich"
NFD_ZURICH = "Zu\u0308rich"

OPERATOR_ROWS: list[OperatorRow] = [
    # in: equality with any one value; types never cross; no normalisation of strings.
    ("in", ["alice"], "alice", True, "string equal to the only value"),
    ("in", ["alice", "bob", "carol"], "bob", True, "any one of several values matches"),
    ("in", ["alice", "bob"], "dave", False, "string equal to none of the values"),
    ("in", ["Alice"], "alice", False, "comparison is case sensitive"),
    ("in", ["alice"], "alice ", False, "no trimming of whitespace"),
    ("in", ["alice"], MISSING, False, "missing attribute"),
    ("in", ["alice"], None, False, "null attribute"),
    ("in", [""], "", True, "the empty string is a value like any other"),
    ("in", [NFC_ZURICH], NFC_ZURICH, True, "unicode string equal"),
    ("in", [NFC_ZURICH], NFD_ZURICH, False, "no unicode normalisation (NFC value, NFD actual)"),
    ("in", ["\u6771\u4eac", "\u5927\u962a"], "\u5927\u962a", True, "CJK string equal"),
    ("in", ["\U0001f680"], "\U0001f680", True, "emoji string equal"),
    ("in", [42], 42, True, "integer equal"),
    ("in", [42], 42.0, True, "numbers compare by value: 42.0 equals 42"),
    ("in", [1.5, 2.5], 2.5, True, "float equal to one of several"),
    ("in", [1.5], 1.25, False, "float equal to none"),
    ("in", [42], "42", False, "a string is not a number"),
    ("in", ["42"], 42, False, "a number is not a string"),
    ("in", [1], True, False, "true is not 1"),
    ("in", [True], 1, False, "1 is not true"),
    ("in", [True], True, True, "boolean true"),
    ("in", [False], False, True, "boolean false"),
    ("in", [False], 0, False, "0 is not false"),
    ("in", [0], False, False, "false is not 0"),
    ("in", ["true"], True, False, "the string true is not the boolean true"),
    ("in", ["alice", 7, True], 7, True, "mixed value types, number matches"),
    ("in", ["alice", 7, True], "7", False, "mixed value types, string 7 is not 7"),
    ("in", ["alice", 7, True], True, True, "mixed value types, boolean matches"),
    ("in", ["alice"], ["alice"], False, "an array never matches"),
    ("in", [1], [1], False, "an array of a number never matches"),
    ("in", ["alice"], {"name": "alice"}, False, "an object never matches"),
    # not_in: present, scalar, and equal to none of the values.
    ("not_in", ["alice", "bob"], "carol", True, "present value equal to none matches"),
    ("not_in", ["alice", "bob"], "bob", False, "present value equal to one does not match"),
    ("not_in", ["alice"], MISSING, False, "missing attribute does not match"),
    ("not_in", ["alice"], None, False, "null attribute does not match"),
    ("not_in", ["Alice"], "alice", True, "case sensitive: alice is not Alice"),
    ("not_in", [42], "42", True, "a string is none of the numbers"),
    ("not_in", ["42"], 42, True, "a number is none of the strings"),
    ("not_in", [1], True, True, "true is not 1"),
    ("not_in", [0], False, True, "false is not 0"),
    ("not_in", [42], 42.0, False, "42.0 equals 42"),
    ("not_in", [True], False, True, "false is not true"),
    ("not_in", [""], "", False, "the empty string equals the empty string"),
    ("not_in", [NFC_ZURICH], NFD_ZURICH, True, "NFD spelling is a different string"),
    ("not_in", ["alice"], ["carol"], False, "an array never matches"),
    ("not_in", ["alice"], {}, False, "an object never matches"),
    # starts_with
    ("starts_with", ["pro-"], "pro-annual", True, "string with the prefix"),
    ("starts_with", ["pro-"], "basic-pro-", False, "prefix only counts at the start"),
    ("starts_with", ["Pro"], "pro-annual", False, "case sensitive"),
    ("starts_with", ["a-", "b-"], "b-1", True, "any one of several prefixes"),
    ("starts_with", ["a-", "b-"], "c-1", False, "none of several prefixes"),
    ("starts_with", ["pro-annual-plus"], "pro-annual", False, "prefix longer than the value"),
    ("starts_with", [""], "anything", True, "the empty prefix starts every string"),
    ("starts_with", ["pro"], MISSING, False, "missing attribute"),
    ("starts_with", ["pro"], None, False, "null attribute"),
    ("starts_with", ["1"], 123, False, "a number is not a string"),
    ("starts_with", ["tr"], True, False, "a boolean is not a string"),
    ("starts_with", ["pro"], ["pro"], False, "an array never matches"),
    ("starts_with", ["\u6771\u4eac"], "\u6771\u4eac\u90fd", True, "CJK prefix"),
    ("starts_with", ["\U0001f680"], "\U0001f680 launch", True, "emoji prefix"),
    # ends_with
    ("ends_with", ["@example.com"], "ann@example.com", True, "string with the suffix"),
    ("ends_with", ["@example.com"], "ann@example.com.evil.org", False, "suffix only at the end"),
    ("ends_with", ["@Example.com"], "ann@example.com", False, "case sensitive"),
    ("ends_with", ["@a.com", "@b.com"], "x@b.com", True, "any one of several suffixes"),
    ("ends_with", ["@example.com"], MISSING, False, "missing attribute"),
    ("ends_with", ["@example.com"], None, False, "null attribute"),
    ("ends_with", ["3"], 123, False, "a number is not a string"),
    ("ends_with", ["@example.com"], ["ann@example.com"], False, "an array never matches"),
    (
        "ends_with",
        ["\u682a\u5f0f\u4f1a\u793e"],
        "\u30b0\u30ec\u30fc\u30ec\u30fc\u30f3\u682a\u5f0f\u4f1a\u793e",
        True,
        "CJK suffix",
    ),
    ("ends_with", ["caf\u00e9"], "cafe\u0301", False, "no unicode normalisation"),
    ("ends_with", ["\U0001f389"], "party \U0001f389", True, "emoji suffix"),
    # contains
    ("contains", ["beta"], "app-beta-3", True, "substring in the middle"),
    ("contains", ["beta"], "app-alpha", False, "substring absent"),
    ("contains", ["Beta"], "app-beta", False, "case sensitive"),
    ("contains", ["gamma", "beta"], "beta", True, "any one of several substrings"),
    ("contains", ["alpha"], "alp", False, "needle longer than the value"),
    ("contains", ["beta"], MISSING, False, "missing attribute"),
    ("contains", ["beta"], None, False, "null attribute"),
    ("contains", ["2"], 123, False, "a number is not a string"),
    ("contains", ["beta"], ["beta"], False, "an array never matches, even one holding it"),
    ("contains", ["beta"], {"beta": 1}, False, "an object never matches"),
    (
        "contains",
        ["\u65e5\u672c"],
        "\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd",
        True,
        "CJK substring",
    ),
    ("contains", ["\U0001f44d"], "ok \U0001f44d thanks", True, "emoji substring"),
    # matches: regular-expression search, found anywhere in the string.
    ("matches", ["b"], "abc", True, "search semantics: found in the middle"),
    ("matches", ["^b"], "abc", False, "anchored at the start"),
    ("matches", ["c$"], "abc", True, "anchored at the end"),
    ("matches", ["^[a-z]+@example\\.com$"], "ann@example.com", True, "fully anchored pattern"),
    ("matches", ["^[a-z]+@example\\.com$"], "ann@exampleXcom", False, "escaped dot is literal"),
    ("matches", ["a.c"], "xabcx", True, "unescaped dot matches any character"),
    ("matches", ["\\d{3}"], "order-12345", True, "digit class with a count"),
    ("matches", ["\\d{3}"], "order-12", False, "too few digits"),
    ("matches", ["^ABC"], "abc", False, "case sensitive"),
    ("matches", ["^x", "y$"], "zzy", True, "any one of several patterns"),
    ("matches", ["^x", "^y"], "zzz", False, "none of several patterns"),
    ("matches", ["(beta|rc)\\.\\d+$"], "1.0.0-rc.2", True, "alternation inside a pattern"),
    ("matches", [".*"], "", True, "the empty string matches .*"),
    ("matches", ["^\u6771\u4eac"], "\u6771\u4eac\u30bf\u30ef\u30fc", True, "CJK pattern"),
    # matches: the RE2 dialect. Where engines differ, RE2 decides.
    ("matches", ["^\\d+$"], "\u0663", False, "RE2: \\d is ASCII digits only (re: any digit)"),
    ("matches", ["^\\w+$"], "\u00e9", False, "RE2: \\w is [0-9A-Za-z_] only"),
    ("matches", ["^\\p{L}+$"], "\u00e9t\u00e9", True, "RE2: Unicode letters by class"),
    ("matches", ["^beta$"], "beta\n", False, "RE2: $ is the end of the text, not before \\n"),
    ("matches", ["(?i)^beta"], "BETA-2", True, "RE2: (?i) makes the pattern case-insensitive"),
    ("matches", ["(?i)^\u00e9t\u00e9$"], "\u00c9T\u00c9", True, "RE2: (?i) folds non-ASCII case"),
    ("matches", ["^(a+)+$"], "a" * 64 + "!", False, "RE2: nested repetition runs in linear time"),
    ("matches", ["\\d+"], 123, False, "a number is not a string"),
    ("matches", ["true"], True, False, "a boolean is not a string"),
    ("matches", [".*"], ["a"], False, "an array never matches"),
    ("matches", [".*"], MISSING, False, "missing attribute"),
    ("matches", [".*"], None, False, "null attribute"),
    # lt / lte / gt / gte: numbers only, ints and floats compare by value.
    ("lt", [10], 9, True, "integer below"),
    ("lt", [10], 10, False, "equal is not less"),
    ("lt", [10], 10.0, False, "equal float is not less"),
    ("lt", [10], 9.999, True, "float just below"),
    ("lt", [10], -5, True, "negative below"),
    ("lt", [10], 11, False, "above"),
    ("lt", [2.5], 2, True, "integer below a float bound"),
    ("lt", [10], "9", False, "a numeric string is not a number"),
    ("lt", [10], True, False, "true is not a number"),
    ("lt", [10], MISSING, False, "missing attribute"),
    ("lt", [10], None, False, "null attribute"),
    ("lt", [10], [9], False, "an array never matches"),
    ("lte", [10], 10, True, "equal integer"),
    ("lte", [10], 10.0, True, "equal float"),
    ("lte", [10], 10.001, False, "just above"),
    ("lte", [10], 0, True, "zero"),
    ("lte", [0.5], 0.5, True, "equal float bound"),
    ("lte", [10], MISSING, False, "missing attribute"),
    ("gt", [0.5], 0.5, False, "equal is not greater"),
    ("gt", [0.5], 0.51, True, "float just above"),
    ("gt", [0.5], 1, True, "integer above a float bound"),
    ("gt", [0.5], 0, False, "below"),
    ("gt", [-1], False, False, "false is not a number"),
    ("gt", [0.5], "1", False, "a numeric string is not a number"),
    ("gt", [0.5], MISSING, False, "missing attribute"),
    ("gt", [0.5], None, False, "null attribute"),
    ("gte", [-3], -3, True, "equal negative"),
    ("gte", [-3], -3.0, True, "equal negative float"),
    ("gte", [-3], -3.5, False, "below"),
    ("gte", [-3], -2.5, True, "above"),
    ("gte", [-3], "0", False, "a numeric string is not a number"),
    ("gte", [1000000], 999999.5, False, "large bound, just below"),
    ("gte", [-3], MISSING, False, "missing attribute"),
    ("gte", [-3], {"n": 1}, False, "an object never matches"),
    # semver_*: SemVer 2.0.0 precedence; build metadata ignored; a leading v tolerated;
    # anything that is not a valid version never matches.
    ("semver_lt", ["1.0.0"], "0.9.9", True, "lower patch release"),
    ("semver_lt", ["1.0.0"], "1.0.0", False, "equal is not lower"),
    ("semver_lt", ["1.0.0"], "1.0.0-alpha", True, "a pre-release is lower than its release"),
    ("semver_lt", ["1.0.0"], "1.0.0-rc.1", True, "rc pre-release is lower than the release"),
    ("semver_lt", ["1.0.0"], "1.0.1", False, "higher patch"),
    ("semver_lt", ["1.0.0"], "1.0.0+build.7", False, "build metadata ignored: equal"),
    ("semver_lt", ["1.0.0"], "v0.9.0", True, "leading v tolerated"),
    ("semver_lt", ["2.0.0"], "10.0.0", False, "numeric, not lexical, major"),
    ("semver_lt", ["1.0.0-alpha.1"], "1.0.0-alpha", True, "alpha < alpha.1"),
    ("semver_lt", ["1.0.0-alpha.beta"], "1.0.0-alpha.1", True, "alpha.1 < alpha.beta"),
    ("semver_lt", ["1.0.0-beta"], "1.0.0-alpha.beta", True, "alpha.beta < beta"),
    ("semver_lt", ["1.0.0-beta.2"], "1.0.0-beta", True, "beta < beta.2"),
    ("semver_lt", ["1.0.0-beta.11"], "1.0.0-beta.2", True, "beta.2 < beta.11 (numeric)"),
    ("semver_lt", ["1.0.0-rc.1"], "1.0.0-beta.11", True, "beta.11 < rc.1"),
    ("semver_lt", ["1.0.0-alpha"], "1.0.0-1", True, "numeric identifier < alphanumeric"),
    ("semver_lt", ["1.0.0-alpha.0"], "1.0.0-alpha", True, "fewer identifiers is lower"),
    ("semver_lt", ["1.0.0"], "1.0", False, "invalid: two components"),
    ("semver_lt", ["1.0.0"], "1", False, "invalid: one component"),
    ("semver_lt", ["1.0.0"], "0.9.9.9", False, "invalid: four components"),
    ("semver_lt", ["2.0.0"], "01.0.0", False, "invalid: leading zero"),
    ("semver_lt", ["1.0.0"], "latest", False, "invalid: not a version"),
    ("semver_lt", ["1.0.0"], "", False, "invalid: empty string"),
    ("semver_lt", ["1.0.0"], " 0.9.0", False, "invalid: leading space"),
    ("semver_lt", ["1.0.0"], "0.9.0\n", False, "invalid: trailing newline"),
    ("semver_lt", ["1.0.0"], "0.1\uff10.0", False, "invalid: non-ASCII digit"),
    ("semver_lt", ["1.0.0"], 0, False, "a number is not a version"),
    ("semver_lt", ["1.0.0"], MISSING, False, "missing attribute"),
    ("semver_lt", ["1.0.0"], None, False, "null attribute"),
    ("semver_lte", ["1.0.0"], "1.0.0", True, "equal"),
    ("semver_lte", ["1.0.0"], "1.0.0+build.5", True, "equal ignoring build metadata"),
    ("semver_lte", ["1.0.0"], "1.0.0-rc.1", True, "pre-release of the bound"),
    ("semver_lte", ["1.0.0"], "1.0.1-alpha", False, "pre-release of a higher version"),
    ("semver_lte", ["2.0.0"], "2.0.0-01", False, "invalid: leading zero in a pre-release"),
    ("semver_lte", ["2.0.0"], MISSING, False, "missing attribute"),
    ("semver_gt", ["1.9.0"], "1.10.0", True, "numeric, not lexical, minor"),
    ("semver_gt", ["1.9.0"], "1.9.0", False, "equal is not higher"),
    ("semver_gt", ["1.9.0"], "1.9.0-rc.1", False, "pre-release is lower than the bound"),
    ("semver_gt", ["1.9.0"], "2.0.0-alpha", True, "pre-release of a higher major"),
    ("semver_gt", ["1.9.0"], "v2.0.0", True, "leading v tolerated"),
    ("semver_gt", ["1.9.0"], "1.9.0+build.2", False, "build metadata ignored: equal"),
    ("semver_gt", ["1.0.0-rc.1"], "1.0.0", True, "release > its rc"),
    ("semver_gt", ["1.0.0-alpha.beta"], "1.0.0-beta", True, "beta > alpha.beta"),
    ("semver_gt", ["1.0.0"], 2, False, "a number is not a version"),
    ("semver_gt", ["1.0.0"], None, False, "null attribute"),
    ("semver_gte", ["2.0.0"], "2.0.0", True, "equal"),
    ("semver_gte", ["2.0.0"], "2.0.0-rc.1", False, "pre-release is lower"),
    ("semver_gte", ["2.0.0"], "10.0.0", True, "two-digit major"),
    ("semver_gte", ["2.0.0"], "2.0.0+sha.abc123", True, "build metadata ignored"),
    ("semver_gte", ["2.0.0"], "1.99.99", False, "lower"),
    ("semver_gte", ["v1.2.3"], "1.2.3", True, "leading v on the bound"),
    ("semver_gte", ["1.0.0+build.1"], "1.0.0", True, "build metadata on the bound ignored"),
    ("semver_gte", ["1.0.0+build.1"], "1.0.0+build.0", True, "build metadata never ordered"),
    ("semver_gte", ["1.0.0"], "1.0.0.0", False, "invalid version"),
    ("semver_gte", ["1.0.0"], MISSING, False, "missing attribute"),
    # before / after: RFC 3339 date-times with an offset, compared as instants.
    ("before", ["2026-01-01T00:00:00Z"], "2025-12-31T23:59:59Z", True, "one second earlier"),
    ("before", ["2026-01-01T00:00:00Z"], "2026-01-01T00:00:00Z", False, "equal is not before"),
    (
        "before",
        ["2026-01-01T00:00:00Z"],
        "2026-01-01T02:00:00+02:00",
        False,
        "same instant written with +02:00",
    ),
    (
        "before",
        ["2026-01-01T00:00:00Z"],
        "2026-01-01T01:59:59+02:00",
        True,
        "one second earlier written with +02:00",
    ),
    (
        "before",
        ["2026-01-01T00:00:00Z"],
        "2025-12-31T19:00:00-05:00",
        False,
        "same instant written with -05:00",
    ),
    (
        "before",
        ["2026-01-01T00:00:00Z"],
        "2025-12-31T18:59:59.999-05:00",
        True,
        "a millisecond earlier written with -05:00",
    ),
    ("before", ["2026-01-01T00:00:00Z"], "2025-12-31T23:59:59.999Z", True, "a ms earlier"),
    ("before", ["2026-01-01T00:00:00Z"], "2026-01-01T00:00:00.001Z", False, "a ms later"),
    ("before", ["2026-01-01T00:00:00Z"], "2025-12-31t23:00:00z", True, "lowercase t and z"),
    (
        "before",
        ["2026-01-01T00:00:00Z"],
        "2025-12-31T23:59:59.123456789Z",
        True,
        "nine fraction digits",
    ),
    ("before", ["2026-01-01T00:00:00Z"], "2025-12-31T23:00:00-00:00", True, "offset -00:00"),
    ("before", ["2026-01-01T00:00:00Z"], "2025-12-31", False, "invalid: date only"),
    ("before", ["2026-01-01T00:00:00Z"], "2025-12-31T23:00:00", False, "invalid: no offset"),
    (
        "before",
        ["2026-01-01T00:00:00Z"],
        "2025-12-31T23:00:00+0200",
        False,
        "invalid: offset without a colon",
    ),
    ("before", ["2026-01-01T00:00:00Z"], "2025-02-30T00:00:00Z", False, "invalid: 30 February"),
    ("before", ["2026-01-01T00:00:00Z"], "2025-12-31T23:00:00Z\n", False, "invalid: newline"),
    ("before", ["2026-01-01T00:00:00Z"], "yesterday", False, "invalid: not a date"),
    ("before", ["2026-01-01T00:00:00Z"], 1767225599, False, "a number is not a date"),
    ("before", ["2026-01-01T00:00:00Z"], MISSING, False, "missing attribute"),
    ("before", ["2026-01-01T00:00:00Z"], None, False, "null attribute"),
    (
        "after",
        ["2026-01-01T00:00:00+02:00"],
        "2025-12-31T22:00:00Z",
        False,
        "same instant as a +02:00 bound, written with Z",
    ),
    ("after", ["2026-01-01T00:00:00+02:00"], "2025-12-31T22:00:01Z", True, "one second later"),
    ("after", ["2026-01-01T00:00:00+02:00"], "2026-01-01T00:00:00Z", True, "two hours later"),
    (
        "after",
        ["2026-01-01T00:00:00+02:00"],
        "2025-12-31T23:59:59+02:00",
        False,
        "one second earlier",
    ),
    (
        "after",
        ["2026-01-01T00:00:00+02:00"],
        "2026-01-01T00:00:00.001+02:00",
        True,
        "a millisecond later",
    ),
    (
        "after",
        ["2026-01-01T00:00:00+02:00"],
        "2025-12-31T16:30:01-05:30",
        True,
        "one second later written with -05:30",
    ),
    ("after", ["2026-01-01T00:00:00+02:00"], "2026-13-01T00:00:00Z", False, "invalid: month 13"),
    ("after", ["2026-01-01T00:00:00+02:00"], "2026-01-01T24:00:00Z", False, "invalid: hour 24"),
    ("after", ["2026-01-01T00:00:00+02:00"], True, False, "a boolean is not a date"),
    ("after", ["2026-01-01T00:00:00+02:00"], MISSING, False, "missing attribute"),
    ("after", ["2026-01-01T00:00:00+02:00"], None, False, "null attribute"),
    # exists: present and not null, whatever the type.
    ("exists", None, "x", True, "a string"),
    ("exists", None, "", True, "the empty string"),
    ("exists", None, 0, True, "zero"),
    ("exists", None, False, True, "false"),
    ("exists", None, [], True, "an empty array"),
    ("exists", None, {}, True, "an empty object"),
    ("exists", None, [1, 2], True, "an array"),
    ("exists", None, MISSING, False, "missing attribute"),
    ("exists", None, None, False, "null attribute"),
]


def clause_document(op: str, values: list[Json] | None) -> Json:
    clause: dict[str, Json] = {"attribute": "attr", "op": op}
    if values is not None:
        clause["values"] = values
    return flag_doc(
        "f",
        {
            "variants": dict(ON_OFF),
            "off_variant": "off",
            "environments": {
                ENV: environment(
                    [{"name": "clause", "when": [clause], "serve": {"variant": "on"}}],
                    {"variant": "off"},
                )
            },
        },
    )


def operator_cases() -> list[Json]:
    cases = []
    for op, values, actual, matched, note in OPERATOR_ROWS:
        context: dict[str, Json] = {"targetingKey": "user-1"}
        if actual is not MISSING:
            context["attr"] = actual
        doc = clause_document(op, values)
        name = f"{op}: {note}"
        if matched:
            cases.append(
                case(name, doc, "f", context, True, "on", "TARGETING_MATCH", rule="clause")
            )
        else:
            cases.append(case(name, doc, "f", context, False, "off", "STATIC"))
    return cases


# --- targeting.json ----------------------------------------------------------------------


def _rule_order_cases(out: Cases) -> None:
    """Rule order: the first matching rule wins."""
    colors = {"red": "#f00", "green": "#0f0", "blue": "#00f"}
    ordered = flag_doc(
        "theme",
        {
            "variants": dict(colors),
            "off_variant": "red",
            "environments": {
                ENV: environment(
                    [
                        {
                            "name": "staff",
                            "when": [
                                {"attribute": "email", "op": "ends_with", "values": ["@corp.io"]}
                            ],
                            "serve": {"variant": "green"},
                        },
                        {
                            "name": "pro-plan",
                            "when": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                            "serve": {"variant": "blue"},
                        },
                        {
                            "name": "red-again",
                            "when": [{"attribute": "plan", "op": "in", "values": ["free"]}],
                            "serve": {"variant": "red"},
                        },
                    ],
                    {"variant": "red"},
                )
            },
        },
    )
    out.add(
        "rules: first matching rule wins when two match",
        ordered,
        "theme",
        {"targetingKey": "u1", "email": "a@corp.io", "plan": "pro"},
        "#0f0",
        "green",
        "TARGETING_MATCH",
        rule="staff",
    )
    out.add(
        "rules: second rule decides when the first does not match",
        ordered,
        "theme",
        {"targetingKey": "u1", "email": "a@gmail.com", "plan": "pro"},
        "#00f",
        "blue",
        "TARGETING_MATCH",
        rule="pro-plan",
    )
    out.add(
        "rules: a rule serving the off variant is still a targeting match",
        ordered,
        "theme",
        {"targetingKey": "u1", "plan": "free"},
        "#f00",
        "red",
        "TARGETING_MATCH",
        rule="red-again",
    )
    out.add(
        "rules: no rule matches, fixed fallthrough is STATIC",
        ordered,
        "theme",
        {"targetingKey": "u1", "plan": "team"},
        "#f00",
        "red",
        "STATIC",
    )
    out.add(
        "rules: empty context falls through",
        ordered,
        "theme",
        {},
        "#f00",
        "red",
        "STATIC",
    )


def _clause_cases(out: Cases) -> None:
    """All clauses of a rule must hold."""
    conjunction = flag_doc(
        "adult-offer",
        {
            "environments": {
                ENV: environment(
                    [
                        {
                            "name": "working-age",
                            "when": [
                                {"attribute": "age", "op": "gte", "values": [18]},
                                {"attribute": "age", "op": "lt", "values": [65]},
                                {"attribute": "country", "op": "in", "values": ["DE", "FR"]},
                            ],
                            "serve": {"variant": "on"},
                        }
                    ],
                    {"variant": "off"},
                )
            }
        },
    )
    out.add(
        "clauses: all clauses hold",
        conjunction,
        "adult-offer",
        {"targetingKey": "u", "age": 30, "country": "FR"},
        True,
        "on",
        "TARGETING_MATCH",
        rule="working-age",
    )
    out.add(
        "clauses: one clause fails so the rule does not match",
        conjunction,
        "adult-offer",
        {"targetingKey": "u", "age": 70, "country": "FR"},
        False,
        "off",
        "STATIC",
    )
    out.add(
        "clauses: a missing attribute fails its clause",
        conjunction,
        "adult-offer",
        {"targetingKey": "u", "age": 30},
        False,
        "off",
        "STATIC",
    )
    out.add(
        "defaults: variants default to on/off booleans",
        conjunction,
        "adult-offer",
        {"age": 18, "country": "DE"},
        True,
        "on",
        "TARGETING_MATCH",
        rule="working-age",
    )


def _attribute_cases(out: Cases) -> None:
    """Attribute names are flat keys."""
    flat = flag_doc(
        "flat-keys",
        {
            "environments": {
                ENV: environment(
                    [
                        {
                            "name": "dotted",
                            "when": [{"attribute": "user.plan", "op": "in", "values": ["pro"]}],
                            "serve": {"variant": "on"},
                        },
                        {
                            "name": "unicode-name",
                            "when": [
                                {"attribute": "pa\u00eds", "op": "in", "values": ["Espa\u00f1a"]}
                            ],
                            "serve": {"variant": "on"},
                        },
                    ]
                )
            }
        },
    )
    out.add(
        "attributes: a dotted attribute name is one flat key",
        flat,
        "flat-keys",
        {"user.plan": "pro"},
        True,
        "on",
        "TARGETING_MATCH",
        rule="dotted",
    )
    out.add(
        "attributes: a dotted attribute name does not look inside objects",
        flat,
        "flat-keys",
        {"user": {"plan": "pro"}},
        False,
        "off",
        "STATIC",
    )
    out.add(
        "attributes: unicode attribute names",
        flat,
        "flat-keys",
        {"pa\u00eds": "Espa\u00f1a"},
        True,
        "on",
        "TARGETING_MATCH",
        rule="unicode-name",
    )
    out.add(
        "attributes: names are case sensitive",
        flat,
        "flat-keys",
        {"User.Plan": "pro"},
        False,
        "off",
        "STATIC",
    )
    out.add(
        "defaults: no fallthrough serves the off variant as STATIC",
        flat,
        "flat-keys",
        {"targetingKey": "u"},
        False,
        "off",
        "STATIC",
    )


def _targeting_key_cases(out: Cases) -> None:
    """Targeting on the targeting key itself."""
    by_key = flag_doc(
        "by-key",
        {
            "environments": {
                ENV: environment(
                    [
                        {
                            "name": "listed",
                            "when": [
                                {"attribute": "targetingKey", "op": "in", "values": ["u-1", 7]}
                            ],
                            "serve": {"variant": "on"},
                        }
                    ],
                    {"variant": "off"},
                )
            }
        },
    )
    out.add(
        "clauses: targetingKey is an attribute like any other",
        by_key,
        "by-key",
        {"targetingKey": "u-1"},
        True,
        "on",
        "TARGETING_MATCH",
        rule="listed",
    )
    out.add(
        "clauses: integer targetingKey compared as a number",
        by_key,
        "by-key",
        {"targetingKey": 7},
        True,
        "on",
        "TARGETING_MATCH",
        rule="listed",
    )
    out.add(
        "invalid context: a clause on a targetingKey that is not valid Unicode",
        by_key,
        "by-key",
        {"targetingKey": "u-\ud800"},
        None,
        None,
        "ERROR",
        error_code="INVALID_CONTEXT",
    )
    by_unit = flag_doc(
        "by-unit", {"environments": {ENV: environment(None, rollout(50, {"on": 100}))}}
    )
    out.add(
        "invalid context: a rollout unit that is not valid Unicode is not hashed",
        by_unit,
        "by-unit",
        {"targetingKey": "\udc00"},
        None,
        None,
        "ERROR",
        error_code="INVALID_CONTEXT",
    )
    out.add(
        "clauses: string targetingKey 7 is not the number 7",
        by_key,
        "by-key",
        {"targetingKey": "7"},
        False,
        "off",
        "STATIC",
    )


def _segment_cases(out: Cases) -> None:
    """Segments."""
    segments = {
        "beta-testers": {
            "include": ["user-1", "user-2", "42"],
            "exclude": ["user-9", "user-2", "9"],
            "when": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
        },
        "vips": {"include": ["vip-1"]},
        "europe": {
            "description": "clauses only",
            "when": [
                {"attribute": "continent", "op": "in", "values": ["EU"]},
                {"attribute": "consent", "op": "in", "values": [True]},
            ],
        },
    }
    seg_doc = flag_doc(
        "beta-ui",
        {
            "variants": {"new": "new-ui", "old": "old-ui"},
            "off_variant": "old",
            "environments": {
                ENV: environment(
                    [
                        {"name": "vip", "segment": "vips", "serve": {"variant": "new"}},
                        {
                            "name": "beta-on-mobile",
                            "segment": "beta-testers",
                            "when": [{"attribute": "device", "op": "in", "values": ["mobile"]}],
                            "serve": {"variant": "new"},
                        },
                        {"name": "eu", "segment": "europe", "serve": {"variant": "new"}},
                    ],
                    {"variant": "old"},
                )
            },
        },
        segments,
    )

    def seg(name: str, context: dict[str, Json], rule: str | None) -> None:
        if rule is None:
            out.add(name, seg_doc, "beta-ui", context, "old-ui", "old", "STATIC")
        else:
            out.add(
                name, seg_doc, "beta-ui", context, "new-ui", "new", "TARGETING_MATCH", rule=rule
            )

    for name, context, rule in (
        (
            "segments: included key is in without matching the clauses",
            {"targetingKey": "user-1", "device": "mobile", "plan": "free"},
            "beta-on-mobile",
        ),
        (
            "segments: excluded key is out although the clauses match",
            {"targetingKey": "user-9", "device": "mobile", "plan": "pro"},
            None,
        ),
        (
            "segments: exclude beats include for a key in both",
            {"targetingKey": "user-2", "device": "mobile", "plan": "pro"},
            None,
        ),
        (
            "segments: unlisted key is in when the clauses match",
            {"targetingKey": "user-5", "device": "mobile", "plan": "pro"},
            "beta-on-mobile",
        ),
        (
            "segments: unlisted key is out when the clauses fail",
            {"targetingKey": "user-5", "device": "mobile", "plan": "free"},
            None,
        ),
        (
            "segments: no targeting key, the clauses decide",
            {"device": "mobile", "plan": "pro"},
            "beta-on-mobile",
        ),
        (
            "segments: integer targeting key is listed by its decimal text",
            {"targetingKey": 42, "device": "mobile"},
            "beta-on-mobile",
        ),
        (
            "segments: integer targeting key is excluded by its decimal text",
            {"targetingKey": 9, "device": "mobile", "plan": "pro"},
            None,
        ),
        (
            "segments: boolean targeting key is no key, the clauses decide",
            {"targetingKey": True, "device": "mobile", "plan": "pro"},
            "beta-on-mobile",
        ),
        (
            "segments: the rule's own clauses must hold as well as the segment",
            {"targetingKey": "user-1", "device": "desktop"},
            None,
        ),
        ("segments: include-only segment matches a listed key", {"targetingKey": "vip-1"}, "vip"),
        (
            "segments: include-only segment does not match an unlisted key",
            {"targetingKey": "vip-2"},
            None,
        ),
        (
            "segments: include lists compare exactly, case sensitive",
            {"targetingKey": "VIP-1"},
            None,
        ),
        (
            "segments: all clauses of a segment must hold",
            {"targetingKey": "u", "continent": "EU", "consent": True},
            "eu",
        ),
        (
            "segments: one failing segment clause keeps the key out",
            {"targetingKey": "u", "continent": "EU", "consent": "true"},
            None,
        ),
        (
            "segments: the first matching segment rule wins",
            {"targetingKey": "vip-1", "continent": "EU", "consent": True},
            "vip",
        ),
    ):
        seg(name, context, rule)


def _disabled_and_environment_cases(out: Cases) -> None:
    """Disabled flags, environments and unknown flags."""
    toggles = {
        "flags": {
            "checkout": {
                "variants": {"v1": 1, "v2": 2, "v3": 3},
                "off_variant": "v1",
                "environments": {
                    ENV: environment(
                        [
                            {
                                "name": "everyone",
                                "when": [{"attribute": "targetingKey", "op": "exists"}],
                                "serve": {"variant": "v3"},
                            }
                        ],
                        {"variant": "v2"},
                        enabled=False,
                    ),
                    "staging": environment(
                        [
                            {
                                "name": "everyone",
                                "when": [{"attribute": "targetingKey", "op": "exists"}],
                                "serve": {"variant": "v3"},
                            }
                        ],
                        {"variant": "v2"},
                    ),
                },
            },
            "staging-only": {
                "variants": {"on": "yes", "off": "no"},
                "environments": {"staging": environment(None, {"variant": "on"})},
            },
            "no-environments": {"variants": {"a": [1, 2], "b": [3]}, "off_variant": "b"},
            "enabled-unset": {
                "environments": {
                    ENV: {"rules": [], "fallthrough": {"variant": "on"}},
                }
            },
            "rollout-off": {
                "environments": {
                    ENV: environment(
                        [
                            {
                                "name": "all",
                                "when": [{"attribute": "targetingKey", "op": "exists"}],
                                "serve": rollout(100, {"on": 100}),
                            }
                        ],
                        rollout(100, {"on": 100}),
                        enabled=False,
                    )
                }
            },
        }
    }
    out.add(
        "disabled: serves the off variant even when a rule matches",
        toggles,
        "checkout",
        {"targetingKey": "u1"},
        1,
        "v1",
        "DISABLED",
    )
    out.add(
        "disabled: serves the off variant with an empty context",
        toggles,
        "checkout",
        {},
        1,
        "v1",
        "DISABLED",
    )
    out.add(
        "environments: the same flag enabled in staging",
        toggles,
        "checkout",
        {"targetingKey": "u1"},
        3,
        "v3",
        "TARGETING_MATCH",
        rule="everyone",
        environment_="staging",
    )
    out.add(
        "environments: staging fallthrough when no rule matches",
        toggles,
        "checkout",
        {},
        2,
        "v2",
        "STATIC",
        environment_="staging",
    )
    out.add(
        "environments: flag not configured for the environment is DISABLED",
        toggles,
        "staging-only",
        {"targetingKey": "u1"},
        "no",
        "off",
        "DISABLED",
    )
    out.add(
        "environments: flag configured for the environment is evaluated there",
        toggles,
        "staging-only",
        {"targetingKey": "u1"},
        "yes",
        "on",
        "STATIC",
        environment_="staging",
    )
    out.add(
        "environments: flag with no environments at all is DISABLED",
        toggles,
        "no-environments",
        {"targetingKey": "u1"},
        [3],
        "b",
        "DISABLED",
    )
    out.add(
        "environments: an environment nobody configured leaves every flag DISABLED",
        toggles,
        "checkout",
        {"targetingKey": "u1"},
        1,
        "v1",
        "DISABLED",
        environment_="qa",
    )
    out.add(
        "defaults: enabled defaults to false",
        toggles,
        "enabled-unset",
        {"targetingKey": "u1"},
        False,
        "off",
        "DISABLED",
    )
    out.add(
        "disabled: a disabled rollout serves the off variant with no bucket",
        toggles,
        "rollout-off",
        {"targetingKey": "u1"},
        False,
        "off",
        "DISABLED",
    )

    # Unknown flags.
    out.add(
        "not found: unknown flag key",
        toggles,
        "does-not-exist",
        {"targetingKey": "u1"},
        None,
        None,
        "ERROR",
        error_code="FLAG_NOT_FOUND",
    )
    out.add(
        "not found: flag keys are case sensitive",
        toggles,
        "Checkout",
        {"targetingKey": "u1"},
        None,
        None,
        "ERROR",
        error_code="FLAG_NOT_FOUND",
    )
    out.add(
        "not found: empty document",
        {},
        "checkout",
        {},
        None,
        None,
        "ERROR",
        error_code="FLAG_NOT_FOUND",
    )
    out.add(
        "not found: document with an empty flags object",
        {"flags": {}},
        "checkout",
        {"targetingKey": "u1"},
        None,
        None,
        "ERROR",
        error_code="FLAG_NOT_FOUND",
        environment_="staging",
    )


def _value_cases(out: Cases) -> None:
    """Variant value types."""
    typed = {
        "flags": {
            "limits": {
                "variants": {
                    "small": {"max_items": 10, "tags": ["a"], "nested": {"x": None}},
                    "large": {"max_items": 1000, "tags": [], "nested": {"x": 1.5}},
                },
                "off_variant": "small",
                "environments": {ENV: environment(None, {"variant": "large"})},
            },
            "ratio": {
                "variants": {"low": 0.25, "high": 2, "off": 0},
                "environments": {ENV: environment(None, {"variant": "low"})},
            },
            "list-flag": {
                "variants": {"none": [], "some": ["x", 1, True]},
                "off_variant": "none",
                "environments": {ENV: environment(None, {"variant": "some"})},
            },
            "greeting": {
                "variants": {"hello": "Hello", "hola": "\u00a1Hola!", "nihao": "\u4f60\u597d"},
                "off_variant": "hello",
                "environments": {ENV: environment(None, {"variant": "nihao"})},
            },
            "off-is-default": {
                "variants": {"off": "plain", "fancy": "fancy"},
                "environments": {ENV: environment(enabled=False)},
            },
        }
    }
    out.add(
        "values: object variant",
        typed,
        "limits",
        {},
        {"max_items": 1000, "tags": [], "nested": {"x": 1.5}},
        "large",
        "STATIC",
    )
    out.add("values: float variant", typed, "ratio", {}, 0.25, "low", "STATIC")
    out.add("values: array variant", typed, "list-flag", {}, ["x", 1, True], "some", "STATIC")
    out.add(
        "values: unicode string variant", typed, "greeting", {}, "\u4f60\u597d", "nihao", "STATIC"
    )
    out.add(
        "defaults: off_variant defaults to the variant named off",
        typed,
        "off-is-default",
        {"targetingKey": "u"},
        "plain",
        "off",
        "DISABLED",
    )
    out.add(
        "environments: an unconfigured environment serves the object off variant",
        typed,
        "limits",
        {},
        {"max_items": 10, "tags": ["a"], "nested": {"x": None}},
        "small",
        "DISABLED",
        environment_="staging",
    )


def _rule_rollout_order_cases(out: Cases) -> None:
    """A matching rule that serves a rollout decides, even for units outside it."""
    first_rollout = flag_doc(
        "guarded",
        {
            "environments": {
                ENV: environment(
                    [
                        {
                            "name": "nobody-yet",
                            "when": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                            "serve": rollout(0, {"on": 100}),
                        },
                        {
                            "name": "pro-fixed",
                            "when": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                            "serve": {"variant": "on"},
                        },
                    ],
                    {"variant": "on"},
                )
            }
        },
    )
    out.add(
        "rules: a matching rollout rule decides even for a unit outside it",
        first_rollout,
        "guarded",
        {"targetingKey": "user-1", "plan": "pro"},
        False,
        "off",
        "SPLIT",
        rule="nobody-yet",
        bucket_=bucket("guarded", "user-1"),
    )
    out.add(
        "rules: a matching rollout rule decides for a unit without a bucket_by value",
        first_rollout,
        "guarded",
        {"plan": "pro"},
        False,
        "off",
        "SPLIT",
        rule="nobody-yet",
    )
    out.add(
        "rules: no rule matches, fixed fallthrough",
        first_rollout,
        "guarded",
        {"targetingKey": "user-1", "plan": "free"},
        True,
        "on",
        "STATIC",
    )


def _flag_key_cases(out: Cases) -> None:
    """A flag among several, and keys with the full key alphabet."""
    several = {
        "flags": {
            "a.b_c-1": {"environments": {ENV: environment(None, {"variant": "on"})}},
            "Z9": {"environments": {ENV: environment(None, {"variant": "off"})}},
        }
    }
    out.add(
        "keys: dots, underscores and dashes in a flag key",
        several,
        "a.b_c-1",
        {},
        True,
        "on",
        "STATIC",
    )
    out.add("keys: another flag in the same document", several, "Z9", {}, False, "off", "STATIC")


TARGETING_TOPICS = (
    _rule_order_cases,
    _clause_cases,
    _attribute_cases,
    _targeting_key_cases,
    _segment_cases,
    _disabled_and_environment_cases,
    _value_cases,
    _rule_rollout_order_cases,
    _flag_key_cases,
)


def targeting_cases() -> list[Json]:
    out = Cases()
    for topic in TARGETING_TOPICS:
        topic(out)
    return out


# --- rollouts.json -----------------------------------------------------------------------


def _percentage_cases(out: Cases) -> None:
    """Whole percentages and the smallest step."""
    on = {"on": 100}
    key = "new-checkout"
    for unit in ("user-1", "user-2", "user-3"):
        out.split(
            f"0%: {unit} is outside", key, percentage=0, weights=on, context={"targetingKey": unit}
        )
        out.split(
            f"100%: {unit} is inside",
            key,
            percentage=100,
            weights=on,
            context={"targetingKey": unit},
        )
    edges = find_units(key, [0, 1, 12344, 12345, 49999, 50000, 99998, 99999])
    for percentage, b, where in (
        (0.001, 0, "inside"),
        (0.001, 1, "outside"),
        (12.345, 12344, "inside"),
        (12.345, 12345, "outside"),
        (50, 49999, "inside"),
        (50, 50000, "outside"),
        (99.999, 99998, "inside"),
        (99.999, 99999, "outside"),
        (100, 99999, "inside"),
    ):
        out.split(
            f"{percentage}%: bucket {b} is {where}",
            key,
            percentage=percentage,
            weights=on,
            context={"targetingKey": edges[b]},
        )
    for unit in ("alice", "bob", "carol", "dave"):
        out.split(
            f"12.345%: {unit}", key, percentage=12.345, weights=on, context={"targetingKey": unit}
        )


def _ramp_cases(out: Cases) -> None:
    """Raising the percentage only adds units, and the variant never changes."""
    on = {"on": 100}
    key = "new-checkout"
    early = find_unit(key, lambda b: b < 5000)
    late = find_unit(key, lambda b: 30000 <= b < 60000)
    for pct in (1, 5, 10, 25, 50, 75, 100):
        out.split(
            f"ramp: early unit at {pct}%",
            key,
            percentage=pct,
            weights=on,
            context={"targetingKey": early},
        )
        out.split(
            f"ramp: late unit at {pct}%",
            key,
            percentage=pct,
            weights=on,
            context={"targetingKey": late},
        )


def _unit_type_cases(out: Cases) -> None:
    """Missing, null and non-string, non-integer units."""
    on = {"on": 100}
    key = "new-checkout"
    for label, context in (
        ("missing targetingKey", {}),
        ("null targetingKey", {"targetingKey": None}),
        ("boolean targetingKey", {"targetingKey": True}),
        ("float targetingKey", {"targetingKey": 1.5}),
        ("array targetingKey", {"targetingKey": ["user-1"]}),
        ("object targetingKey", {"targetingKey": {"id": "user-1"}}),
    ):
        out.split(
            f"50%: {label} is outside with no bucket",
            key,
            percentage=50,
            weights=on,
            context=context,
        )
    out.split("99.999%: missing unit is outside", key, percentage=99.999, weights=on, context={})
    out.split("100%: missing unit is inside", key, percentage=100, weights=on, context={})
    out.split(
        "100%: boolean unit is inside with no bucket",
        key,
        percentage=100,
        weights=on,
        context={"targetingKey": False},
    )

    # Integer units are their decimal text; strings are used as they are.
    for unit in (12345, "12345", -7, "-7", 0, "0", 9007199254740991):
        out.split(
            f"50%: {'string' if isinstance(unit, str) else 'integer'} unit {unit}",
            key,
            percentage=50,
            weights=on,
            context={"targetingKey": unit},
        )
    for unit in ("", " ", "user-1 ", "USER-1"):
        out.split(
            f"50%: string unit {unit!r}",
            key,
            percentage=50,
            weights=on,
            context={"targetingKey": unit},
        )

    # Unicode units.
    for label, unit in (
        ("CJK", "\u7528\u6237\u4e00\u53f7"),
        ("katakana", "\u30e6\u30fc\u30b6\u30fc-1"),
        ("emoji", "\U0001f600\U0001f389"),
        ("NFC", NFC_ZURICH),
        ("NFD", NFD_ZURICH),
        ("flag emoji", "\U0001f1e9\U0001f1ea"),
    ):
        out.split(
            f"50%: {label} unit", key, percentage=50, weights=on, context={"targetingKey": unit}
        )


def _weight_cases(out: Cases) -> None:
    """Several variants, boundaries of cumulative weights."""
    abc = {"control": "control", "blue": "blue", "green": "green"}
    thirds = {"control": 33.333, "blue": 33.333, "green": 33.334}
    exp = "checkout-experiment"
    vb = find_units(exp + ":variant", [0, 33332, 33333, 66665, 66666, 99999])
    for b, unit in sorted(vb.items()):
        out.split(
            f"weights 33.333/33.333/33.334: variant bucket {b}",
            exp,
            percentage=100,
            weights=thirds,
            variants=abc,
            off_variant="control",
            context={"targetingKey": unit},
        )
    at_40 = [
        find_split_unit(exp, lambda b: b < 40000, lambda v: v < 33333, "unit-"),
        find_split_unit(exp, lambda b: b < 40000, lambda v: 33333 <= v < 66666, "unit-"),
        find_split_unit(exp, lambda b: b < 40000, lambda v: v >= 66666, "unit-"),
        find_split_unit(exp, lambda b: b >= 40000, lambda v: v >= 66666, "unit-"),
    ]
    for unit in at_40:
        out.split(
            f"weights 33.333/33.333/33.334 at 40%: {unit}",
            exp,
            percentage=40,
            weights=thirds,
            variants=abc,
            off_variant="control",
            context={"targetingKey": unit},
        )

    # Zero weights are never served.
    zero = "zero-weights"
    three = {"a": "A", "b": "B", "c": "C", "off": "-"}
    zb = find_units(zero + ":variant", [0, 49999, 50000, 99999])
    for b, unit in sorted(zb.items()):
        out.split(
            f"weights 50/0/50: variant bucket {b}",
            zero,
            percentage=100,
            weights={"a": 50, "b": 0, "c": 50},
            variants=three,
            context={"targetingKey": unit},
        )
    for unit in ("user-1", "user-2", "user-3"):
        out.split(
            f"weights 0/100: {unit} gets the second variant",
            zero,
            percentage=100,
            weights={"a": 0, "b": 100},
            variants=three,
            context={"targetingKey": unit},
        )
    out.split(
        "100% with weights 0/100: missing unit gets the first positive weight",
        zero,
        percentage=100,
        weights={"a": 0, "b": 100},
        variants=three,
        context={},
    )
    out.split(
        "100% with weights 0/30/70: missing unit gets the first positive weight",
        zero,
        percentage=100,
        weights={"a": 0, "b": 30, "c": 70},
        variants=three,
        context={"other": "x"},
    )
    out.split(
        "100% with weights 60/40: missing unit gets the first variant",
        zero,
        percentage=100,
        weights={"c": 60, "a": 40},
        variants=three,
        context={},
    )
    out.split(
        "100% with weights 60/40: float unit gets the first variant",
        zero,
        percentage=100,
        weights={"c": 60, "a": 40},
        variants=three,
        context={"targetingKey": 2.5},
    )

    # Fractional weights.
    frac = "fractional-weights"
    fb = find_units(frac + ":variant", [12499, 12500])
    for b, unit in sorted(fb.items()):
        out.split(
            f"weights 12.5/87.5: variant bucket {b}",
            frac,
            percentage=100,
            weights={"on": 12.5, "off": 87.5},
            context={"targetingKey": unit},
        )
    for unit in ("user-10", "user-11", "user-12"):
        out.split(
            f"weights 0.001/99.999: {unit}",
            frac,
            percentage=100,
            weights={"on": 0.001, "off": 99.999},
            context={"targetingKey": unit},
        )


def _growing_exposure_cases(out: Cases) -> None:
    """The variant a unit gets never changes as exposure grows."""
    grow = "growing-experiment"
    variants = {"control": "c", "t1": "t1", "t2": "t2"}
    weights = {"control": 20, "t1": 40, "t2": 40}
    inside_early = [
        find_split_unit(grow, lambda b: b < 10000, lambda v: v < 20000, "unit-"),
        find_split_unit(grow, lambda b: b < 10000, lambda v: 20000 <= v < 60000, "unit-"),
        find_split_unit(grow, lambda b: b < 10000, lambda v: v >= 60000, "unit-"),
    ]
    for unit in inside_early:
        for pct in (10, 50, 100):
            out.split(
                f"growing exposure: {unit} at {pct}%",
                grow,
                percentage=pct,
                weights=weights,
                variants=variants,
                otherwise="control",
                off_variant="control",
                context={"targetingKey": unit},
            )


def _bucket_by_cases(out: Cases) -> None:
    """bucket_by a custom attribute."""
    acct = "per-account"
    for label, context in (
        ("first user of account acme", {"targetingKey": "user-1", "accountId": "acme"}),
        ("second user of account acme", {"targetingKey": "user-2", "accountId": "acme"}),
        ("user of account globex", {"targetingKey": "user-1", "accountId": "globex"}),
        ("integer account 1234", {"targetingKey": "user-1", "accountId": 1234}),
        ("string account 1234", {"targetingKey": "user-1", "accountId": "1234"}),
        ("no account, targetingKey ignored", {"targetingKey": "user-1"}),
        ("null account", {"targetingKey": "user-1", "accountId": None}),
    ):
        out.split(
            f"bucket_by accountId at 50%: {label}",
            acct,
            percentage=50,
            weights={"on": 100},
            bucket_by="accountId",
            context=context,
        )
    out.split(
        "bucket_by accountId at 100%: no account is inside with no bucket",
        acct,
        percentage=100,
        weights={"on": 100},
        bucket_by="accountId",
        context={"targetingKey": "user-1"},
    )


def _salt_cases(out: Cases) -> None:
    """Custom salt: bucketing follows the salt, not the key."""
    on = {"on": 100}
    for flag_key in ("salted-a", "salted-b"):
        for unit in ("user-1", "user-2", "user-3"):
            out.split(
                f"salt shared-salt: {flag_key} {unit}",
                flag_key,
                percentage=50,
                weights=on,
                salt="shared-salt",
                context={"targetingKey": unit},
            )
    for unit in ("user-1", "user-2", "user-3"):
        out.split(
            f"no salt: salted-c {unit} buckets by its key",
            "salted-c",
            percentage=50,
            weights=on,
            context={"targetingKey": unit},
        )
    out.split(
        "salt with unicode and colons",
        "salted-d",
        percentage=50,
        weights={"on": 100},
        salt="r\u00e9sum\u00e9:v2",
        context={"targetingKey": "user-1"},
    )

    # Different flags bucket independently (same unit, different keys).
    for flag_key in ("flag-x", "flag-y", "flag-z"):
        out.split(
            f"independent flags: {flag_key} user-1",
            flag_key,
            percentage=50,
            weights=on,
            context={"targetingKey": "user-1"},
        )


def _rule_rollout_cases(out: Cases) -> None:
    """A rule serving a rollout reports SPLIT with the rule name."""
    abc = {"control": "control", "blue": "blue", "green": "green"}
    rule_key = "beta-rollout"
    rule_weights = {"blue": 50, "green": 50}
    rule_doc = flag_doc(
        rule_key,
        {
            "variants": dict(abc),
            "off_variant": "control",
            "environments": {
                ENV: environment(
                    [
                        {
                            "name": "beta",
                            "when": [{"attribute": "plan", "op": "in", "values": ["beta"]}],
                            "serve": rollout(30, rule_weights, "control", "accountId"),
                        }
                    ],
                    rollout(10, {"green": 100}),
                )
            },
        },
    )
    accounts = [
        find_split_unit(rule_key, lambda b: b < 30000, lambda v: v < 50000, "account-"),
        find_split_unit(rule_key, lambda b: b < 30000, lambda v: v >= 50000, "account-"),
        find_split_unit(rule_key, lambda b: b >= 30000, lambda v: True, "account-"),
    ]
    for account in accounts:
        variant, b = split(rule_key, 30, rule_weights, "control", account)
        out.add(
            f"rule rollout at 30% by accountId: {account}",
            rule_doc,
            rule_key,
            {"targetingKey": "user-1", "plan": "beta", "accountId": account},
            abc[variant],
            variant,
            "SPLIT",
            rule="beta",
            bucket_=b,
        )
    out.add(
        "rule rollout: no accountId is outside with no bucket",
        rule_doc,
        rule_key,
        {"targetingKey": "user-1", "plan": "beta"},
        "control",
        "control",
        "SPLIT",
        rule="beta",
    )
    for unit in ("user-1", "user-2", "user-3", "user-4"):
        variant, b = split(rule_key, 10, {"green": 100}, "control", unit)
        out.add(
            f"fallthrough rollout at 10% after the rule: {unit}",
            rule_doc,
            rule_key,
            {"targetingKey": unit, "plan": "ga"},
            abc[variant],
            variant,
            "SPLIT",
            bucket_=b,
        )


ROLLOUT_TOPICS = (
    _percentage_cases,
    _ramp_cases,
    _unit_type_cases,
    _weight_cases,
    _growing_exposure_cases,
    _bucket_by_cases,
    _salt_cases,
    _rule_rollout_cases,
)


def rollouts_cases() -> list[Json]:
    out = Cases()
    for topic in ROLLOUT_TOPICS:
        topic(out)
    return out


# --- bucketing.json ----------------------------------------------------------------------


def bucketing_table() -> list[Json]:
    salts = ["new-checkout", "new-checkout:variant", "a", "flag.with_dots-1", ""]
    units = [
        "",
        "user-1",
        "user-2",
        "user-1000",
        "alice",
        "Alice",
        "0",
        "1",
        "42",
        "-7",
        "12345",
        "9007199254740993",
        " ",
        "a:b",
        "tab\there",
        "line\nbreak",
        "caf\u00e9",
        "cafe\u0301",
        "\u7528\u6237",
        "\u30e6\u30fc\u30b6\u30fc",
        "\ud55c\uad6d\uc5b4",
        "\u0645\u0631\u062d\u0628\u0627",
        "\U0001f600",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "x" * 1000,
        "0123456789" * 30,
    ]
    rows = [{"salt": s, "unit": u} for s in salts[:2] for u in units]
    rows += [{"salt": s, "unit": u} for s in salts[2:] for u in units[:12]]
    rows += [
        # salt + ":" + unit is hashed as one string, so these two pairs share a bucket.
        {"salt": "a:b", "unit": "c"},
        {"salt": "a", "unit": "b:c"},
        {"salt": "r\u00e9sum\u00e9", "unit": "user-1"},
        {"salt": "\U0001f680", "unit": "\U0001f680"},
        {"salt": "\u6a19\u6e96", "unit": "\u6771\u4eac"},
        {"salt": "s" * 500, "unit": "u" * 500},
        {"salt": "shared-salt", "unit": "user-1"},
        {"salt": "shared-salt:variant", "unit": "user-1"},
    ]
    rows += [{"salt": "seq", "unit": str(n)} for n in range(20)]
    return [{**row, "bucket": bucket(row["salt"], row["unit"])} for row in rows]


# --- output ------------------------------------------------------------------------------

CASE_FILES: dict[str, tuple[str, Callable[[], list[Json]]]] = {
    "operators.json": (
        "Every clause operator with its edge cases. Each case is one flag `f` with one rule "
        "`clause` holding the clause on attribute `attr` and serving `on`; a match gives "
        "TARGETING_MATCH with rule `clause`, no match gives the fixed fallthrough `off` (STATIC).",
        operator_cases,
    ),
    "targeting.json": (
        "Rule order, clause conjunction, segments (include, exclude, when), disabled and "
        "unconfigured flags, unknown flags, variant value types and document defaults.",
        targeting_cases,
    ),
    "rollouts.json": (
        "Percentage rollouts and variant splits. Buckets are the contract-2 formula: "
        "bucket(salt, unit) = murmur3_x86_32(utf8(salt + ':' + unit), seed 0) mod 100000; "
        "inside iff bucket(flag_salt, unit) < round(percentage * 1000); variant by "
        "bucket(flag_salt + ':variant', unit) against cumulative weight thresholds.",
        rollouts_cases,
    ),
}


def render() -> dict[str, str]:
    """File name -> exact file text, for every vector file."""
    out: dict[str, str] = {}
    names: set[str] = set()
    for filename, (description, build) in CASE_FILES.items():
        cases = build()
        for item in cases:
            if item["name"] in names:
                raise ValueError(f"duplicate case name {item['name']!r}")
            names.add(item["name"])
        out[filename] = dump({"description": description, "cases": cases})
    out["bucketing.json"] = dump(
        {
            "description": "bucket(salt, unit) = murmur3_x86_32(utf8(salt + ':' + unit), "
            "seed 0) mod 100000, as an unsigned 32-bit hash. Every SDK must reproduce "
            "every row.",
            "buckets": bucketing_table(),
        }
    )
    return out


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def dump(data: Json) -> str:
    text = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    # A lone surrogate has no UTF-8 form: written as its JSON escape, as a client sends it.
    return LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    stale = []
    for filename, text in render().items():
        path = HERE / filename
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(filename)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}", file=sys.stderr)
        return 1
    for filename in stale:
        print(f"wrote {filename}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
