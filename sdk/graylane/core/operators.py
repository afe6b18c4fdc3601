"""The clause operators of contract 1: one small compile function per operator.

Compiling checks a clause's values once, when a document is read, and returns a
predicate built for speed (sets for membership, compiled regexes, parsed versions and
dates). Predicates are only ever called with a present value: a missing attribute fails
every clause before its predicate runs. A value of the wrong type never matches.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

import re2

from .dates import parse_instant
from .semver import Version, parse_version

Predicate = Callable[[object], bool]
Comparison = Callable[[Any, Any], bool]


class OperandError(ValueError):
    """A clause's `values` do not suit its operator; `index` points at the culprit."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    summary: str
    compile: Callable[[Sequence[object]], Predicate]


def describe(value: object) -> str:
    """A short, JSON-flavoured name for a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite_number(value: object) -> bool:
    """A number JSON can carry: no NaN or infinity (and ints of any size are fine)."""
    return is_number(value) and (not isinstance(value, float) or math.isfinite(value))


def _nonempty(values: Sequence[object]) -> None:
    if not values:
        raise OperandError("needs at least one value")


def _single(values: Sequence[object]) -> object:
    if len(values) != 1:
        raise OperandError(f"needs exactly one value, got {len(values)}")
    return values[0]


def _strings(values: Sequence[object]) -> tuple[str, ...]:
    _nonempty(values)
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise OperandError(f"expected a string, got {describe(value)}", index)
    return tuple(str(v) for v in values)


# --- membership -------------------------------------------------------------------------


def _membership_sets(
    values: Sequence[object],
) -> tuple[frozenset[str], frozenset[float], frozenset[bool]]:
    _nonempty(values)
    strings: set[str] = set()
    numbers: set[float] = set()
    booleans: set[bool] = set()
    for index, value in enumerate(values):
        if isinstance(value, bool):
            booleans.add(value)
        elif isinstance(value, str):
            strings.add(value)
        elif is_finite_number(value):
            numbers.add(value)  # type: ignore[arg-type]
        else:
            raise OperandError(
                f"expected a string, number or boolean, got {describe(value)}", index
            )
    return frozenset(strings), frozenset(numbers), frozenset(booleans)


def _member(
    strings: frozenset[str], numbers: frozenset[float], booleans: frozenset[bool]
) -> Callable[[object], bool | None]:
    """value -> True/False for a scalar, None for a value that is not a scalar at all.
    Types never cross: True is not 1 and "1" is not 1."""

    def member(value: object) -> bool | None:
        if isinstance(value, str):
            return value in strings
        if isinstance(value, bool):
            return value in booleans
        if isinstance(value, int | float):
            return value in numbers
        return None

    return member


def _compile_in(values: Sequence[object]) -> Predicate:
    strings, numbers, booleans = _membership_sets(values)
    if not numbers and not booleans:
        # The common case, kept to one type check and one set lookup.
        return lambda value: isinstance(value, str) and value in strings
    member = _member(strings, numbers, booleans)
    return lambda value: member(value) is True


def _compile_not_in(values: Sequence[object]) -> Predicate:
    member = _member(*_membership_sets(values))
    return lambda value: member(value) is False


# --- strings ----------------------------------------------------------------------------


def _compile_starts_with(values: Sequence[object]) -> Predicate:
    prefixes = _strings(values)
    return lambda value: isinstance(value, str) and value.startswith(prefixes)


def _compile_ends_with(values: Sequence[object]) -> Predicate:
    suffixes = _strings(values)
    return lambda value: isinstance(value, str) and value.endswith(suffixes)


def _compile_contains(values: Sequence[object]) -> Predicate:
    needles = _strings(values)
    return lambda value: isinstance(value, str) and any(n in value for n in needles)


Search = Callable[[str], object]
"""A compiled pattern's search: a match object, or None when the pattern is not found."""


def _regex_options() -> object:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is reported by path, not on stderr
    return options


_REGEX_OPTIONS = _regex_options()


def compile_pattern(pattern: str) -> Search:
    """A `matches` pattern compiled by RE2, as its search: linear time in the text's
    length whatever the pattern. Raises OperandError for what RE2 refuses
    (backreferences, lookaround)."""
    try:
        return cast(Search, re2.compile(pattern, _REGEX_OPTIONS).search)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "backslashreplace")
        message = f"invalid regular expression {pattern!r}: RE2 refuses it: {reason}"
        raise OperandError(message) from exc
    except UnicodeEncodeError as exc:
        message = f"invalid regular expression {pattern!r}: it is not valid Unicode"
        raise OperandError(message) from exc


def _compile_matches(values: Sequence[object]) -> Predicate:
    patterns = _strings(values)
    searches: list[Search] = []
    for index, pattern in enumerate(patterns):
        try:
            searches.append(compile_pattern(pattern))
        except OperandError as exc:
            raise OperandError(exc.message, index) from exc
    # Searched one by one: joined into one alternation, patterns would share inline flags.
    # A search finds the pattern anywhere in the value; anchor it with ^ and $ to match
    # the whole value. Callers hand only valid Unicode (snapshot.clauses_match checks).
    found = tuple(searches)
    return lambda value: isinstance(value, str) and any(s(value) is not None for s in found)


# --- ordered comparisons ----------------------------------------------------------------


def _compile_number(compare: Comparison) -> Callable[[Sequence[object]], Predicate]:
    def compile_(values: Sequence[object]) -> Predicate:
        bound = _single(values)
        if not is_finite_number(bound):
            raise OperandError(f"expected a finite number, got {describe(bound)}", 0)
        return lambda value: is_number(value) and compare(value, bound)

    return compile_


@lru_cache(maxsize=4096)
def _cached_version(text: str) -> Version | None:
    return parse_version(text)


def _compile_semver(compare: Comparison) -> Callable[[Sequence[object]], Predicate]:
    def compile_(values: Sequence[object]) -> Predicate:
        bound_text = _single(values)
        bound = parse_version(bound_text) if isinstance(bound_text, str) else None
        if bound is None:
            raise OperandError(f"expected a semantic version like '1.2.3', got {bound_text!r}", 0)

        def predicate(value: object) -> bool:
            version = _cached_version(value) if isinstance(value, str) else None
            return version is not None and compare(version, bound)

        return predicate

    return compile_


@lru_cache(maxsize=4096)
def _cached_instant(text: str) -> datetime | None:
    return parse_instant(text)


def _compile_date(compare: Comparison) -> Callable[[Sequence[object]], Predicate]:
    def compile_(values: Sequence[object]) -> Predicate:
        bound_text = _single(values)
        bound = parse_instant(bound_text) if isinstance(bound_text, str) else None
        if bound is None:
            raise OperandError(
                f"expected an RFC 3339 date-time with offset like '2026-01-31T09:00:00Z', "
                f"got {bound_text!r}",
                0,
            )

        def predicate(value: object) -> bool:
            instant = _cached_instant(value) if isinstance(value, str) else parse_instant(value)
            return instant is not None and compare(instant, bound)

        return predicate

    return compile_


# --- presence ---------------------------------------------------------------------------


def _compile_exists(values: Sequence[object]) -> Predicate:
    if values:
        raise OperandError("takes no values")
    return lambda value: True


OPERATORS: Mapping[str, Operator] = {
    op.name: op
    for op in (
        Operator("in", "the value equals one of the values", _compile_in),
        Operator("not_in", "the value is present and equals none of the values", _compile_not_in),
        Operator("starts_with", "the string starts with one of the values", _compile_starts_with),
        Operator("ends_with", "the string ends with one of the values", _compile_ends_with),
        Operator("contains", "the string contains one of the values", _compile_contains),
        Operator("matches", "the string matches one of the regular expressions", _compile_matches),
        Operator("lt", "the number is less than the value", _compile_number(operator.lt)),
        Operator("lte", "the number is at most the value", _compile_number(operator.le)),
        Operator("gt", "the number is greater than the value", _compile_number(operator.gt)),
        Operator("gte", "the number is at least the value", _compile_number(operator.ge)),
        Operator("semver_lt", "the version is lower than the value", _compile_semver(operator.lt)),
        Operator("semver_lte", "the version is at most the value", _compile_semver(operator.le)),
        Operator("semver_gt", "the version is higher than the value", _compile_semver(operator.gt)),
        Operator("semver_gte", "the version is at least the value", _compile_semver(operator.ge)),
        Operator("before", "the date-time is before the value", _compile_date(operator.lt)),
        Operator("after", "the date-time is after the value", _compile_date(operator.gt)),
        Operator("exists", "the attribute is present", _compile_exists),
    )
}
