"""Specification of the edge limits: what no stored or evaluated JSON value may hold,
each refusal pinned to its path."""

from __future__ import annotations

import json
from enum import StrEnum

from graylane.core.limits import (
    MAX_CONTEXT_NODES,
    MAX_DEPTH,
    MAX_INT,
    MAX_STRING,
    MIN_INT,
    context_problems,
    json_problems,
)
from graylane.core.problems import Problem


def paths(problems: list[Problem]) -> list[str]:
    return [p.path for p in problems]


def nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_ordinary_json_has_no_problems() -> None:
    value = json.loads('{"a": [1, 2.5, true, null, "é ✓ 😀"], "b": {"c": -9223372036854775808}}')
    assert json_problems(value) == []


def test_lone_surrogate_in_a_string_is_refused_with_its_path() -> None:
    value = json.loads('{"flags": {"x": {"variants": {"on": "\\ud800"}}}}')
    problems = json_problems(value)
    assert paths(problems) == ["flags.x.variants.on"]
    assert "not valid Unicode" in problems[0].message


def test_lone_surrogate_in_a_key_is_refused_and_the_path_stays_printable() -> None:
    problems = json_problems(json.loads('{"a\\udc00b": 1}'), "segments")
    assert len(problems) == 1
    assert "not valid Unicode" in problems[0].message
    str(problems[0]).encode("utf-8")  # the report itself can be logged and stored
    assert problems[0].path == "segments.a\\udc00b"


def test_nul_in_strings_and_keys_is_refused() -> None:
    problems = json_problems({"k\x00": ["ok", "a\x00b"]})
    assert paths(problems) == ["k\\x00", "k\\x00[1]"]
    assert all("NUL" in p.message for p in problems)


def test_non_finite_floats_are_refused() -> None:
    problems = json_problems(json.loads("[NaN, Infinity, -Infinity, 1e400, 1.5]"), "values")
    assert paths(problems) == ["values[0]", "values[1]", "values[2]", "values[3]"]


def test_integers_beyond_signed_64_bits_are_refused() -> None:
    assert json_problems([MIN_INT, MAX_INT]) == []
    assert paths(json_problems([MIN_INT - 1, MAX_INT + 1, 10**400], "n")) == [
        "n[0]",
        "n[1]",
        "n[2]",
    ]


def test_strings_and_keys_longer_than_the_limit_are_refused() -> None:
    assert json_problems("x" * MAX_STRING) == []
    problems = json_problems({"k": "x" * (MAX_STRING + 1), "y" * (MAX_STRING + 1): 1}, "d")
    assert len(problems) == 2
    assert all("longer than" in p.message for p in problems)


def test_nesting_at_the_limit_is_accepted_and_beyond_it_refused() -> None:
    assert json_problems(nested(MAX_DEPTH)) == []
    problems = json_problems(nested(MAX_DEPTH + 1))
    assert len(problems) == 1
    assert problems[0].path == "[0]" * MAX_DEPTH
    assert "deeper" in problems[0].message


def test_100000_levels_are_refused_without_recursion() -> None:
    problems = json_problems(nested(100_000))
    assert len(problems) == 1
    assert "deeper" in problems[0].message


def test_a_lower_depth_can_be_asked_for() -> None:
    assert json_problems(nested(3), max_depth=3) == []
    assert len(json_problems(nested(4), max_depth=3)) == 1


def test_too_many_values_are_refused_once() -> None:
    problems = json_problems(list(range(20)), "body", max_nodes=10)
    assert problems == [Problem("body", "holds more than 10 values")]


def test_values_that_are_not_json_are_refused() -> None:
    problems = json_problems({"when": {1, 2}, 3: "x"})
    assert sorted(paths(problems)) == ["3", "when"]


def test_string_and_int_subclasses_are_checked_as_their_values() -> None:
    class Plan(StrEnum):
        PRO = "pro"
        BAD = "\ud800"

    assert json_problems([Plan.PRO]) == []
    assert paths(json_problems([Plan.BAD])) == ["[0]"]


def test_the_number_of_problems_reported_is_bounded() -> None:
    problems = json_problems([float("nan")] * 10_000)
    assert 0 < len(problems) <= 100


def test_context_problems_name_the_context_attribute() -> None:
    context = json.loads('{"targetingKey": "\\ud800", "groups": ["a", "\\udfff"], "n": NaN}')
    assert sorted(paths(context_problems(context))) == [
        "context.groups[1]",
        "context.n",
        "context.targetingKey",
    ]


def test_a_context_that_is_not_an_object_is_refused() -> None:
    assert context_problems(["targetingKey"]) == [Problem("context", "must be an object")]


def test_a_context_is_held_to_a_smaller_size() -> None:
    assert context_problems({"ids": list(range(MAX_CONTEXT_NODES - 10))}) == []
    problems = context_problems({"ids": list(range(MAX_CONTEXT_NODES))})
    assert problems == [Problem("context", f"holds more than {MAX_CONTEXT_NODES} values")]
