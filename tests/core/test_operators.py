"""Specification of the clause operators (contract 1).

Each operator compiles a clause's `values` once and returns a predicate. Predicates are
only called with a present attribute value (a missing attribute fails its clause before
the predicate runs). A value of the wrong type never matches.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from graylane.core.operators import OPERATORS, OperandError, Predicate


def compiled(op: str, values: Sequence[object]) -> Predicate:
    return OPERATORS[op].compile(values)


@dataclass(frozen=True)
class Case:
    values: tuple[object, ...]
    matching: tuple[object, ...]
    not_matching: tuple[object, ...]
    wrong_types: tuple[object, ...]
    """Present values of a type the operator does not take: they never match."""


NOT_STRINGS = (1, 1.5, True, False, ["a"], {"a": 1})
NOT_NUMBERS = ("5", "abc", True, False, [5], {"n": 5})
NOT_TEXT = (1, 1.0, True, [], {}, ["1.2.3"])

# One row per operator: the table must name every operator there is.
CASES: dict[str, Case] = {
    "in": Case(
        values=("pro", "team"),
        matching=("pro", "team"),
        not_matching=("free", "Pro", "pro ", ""),
        wrong_types=(1, True, ["pro"], {"pro": 1}),
    ),
    "not_in": Case(
        values=("free", "trial"),
        matching=("pro", "", "Free", 1, True),  # any present scalar not in the list
        not_matching=("free", "trial"),
        wrong_types=(["pro"], {"plan": "pro"}, [], {}),
    ),
    "starts_with": Case(
        values=("https://", "http://"),
        matching=("https://example.com", "http://x", "https://"),
        not_matching=("ftp://example.com", "HTTPS://example.com", "", "see https://x"),
        wrong_types=NOT_STRINGS,
    ),
    "ends_with": Case(
        values=("@example.com", "@example.org"),
        matching=("ann@example.com", "bob@example.org", "@example.com"),
        not_matching=("ann@example.com.evil", "ann@EXAMPLE.com", "", "example.com"),
        wrong_types=NOT_STRINGS,
    ),
    "contains": Case(
        values=("beta", "canary"),
        matching=("beta", "my-beta-build", "canary-1", "xcanaryx"),
        not_matching=("Beta", "release", "", "bet a"),
        wrong_types=NOT_STRINGS,
    ),
    "matches": Case(
        values=(r"^user-\d+$", r"@example\.(com|org)"),
        matching=("user-1", "user-12345", "ann@example.com", "x@example.org.uk"),
        not_matching=("user-", "user-1a", "ann@exampleXcom", "USER-1", ""),
        wrong_types=NOT_STRINGS,
    ),
    "lt": Case(
        values=(18,),
        matching=(17, 17.999, -1, 0),
        not_matching=(18, 18.0, 19, 1e9),
        wrong_types=NOT_NUMBERS,
    ),
    "lte": Case(
        values=(18,),
        matching=(17, 18, 18.0, -3.5),
        not_matching=(18.001, 19, 1e9),
        wrong_types=NOT_NUMBERS,
    ),
    "gt": Case(
        values=(2.5,),
        matching=(2.51, 3, 1e9),
        not_matching=(2.5, 2, -10, 0),
        wrong_types=NOT_NUMBERS,
    ),
    "gte": Case(
        values=(2.5,),
        matching=(2.5, 3, 1e9),
        not_matching=(2.499, 2, -10),
        wrong_types=NOT_NUMBERS,
    ),
    "semver_lt": Case(
        values=("2.0.0",),
        matching=("1.9.9", "2.0.0-rc.1", "1.10.0", "v1.0.0"),
        not_matching=("2.0.0", "2.0.0+build.5", "2.0.1", "10.0.0"),
        wrong_types=(*NOT_TEXT, "not-a-version", "2.0"),
    ),
    "semver_lte": Case(
        values=("2.0.0",),
        matching=("2.0.0", "2.0.0+build.5", "1.9.9", "2.0.0-rc.1"),
        not_matching=("2.0.1", "2.0.1-alpha", "10.0.0"),
        wrong_types=(*NOT_TEXT, "not-a-version", "2.0"),
    ),
    "semver_gt": Case(
        values=("1.2.3",),
        matching=("1.2.4", "1.10.0", "2.0.0-alpha", "1.2.4-rc.1"),
        not_matching=("1.2.3", "1.2.3-rc.1", "1.2.2", "1.2.3+build"),
        wrong_types=(*NOT_TEXT, "not-a-version", "1.2"),
    ),
    "semver_gte": Case(
        values=("1.2.3",),
        matching=("1.2.3", "1.2.3+build", "1.2.4", "2.0.0"),
        not_matching=("1.2.3-rc.1", "1.2.2", "0.99.99"),
        wrong_types=(*NOT_TEXT, "not-a-version", "1.2"),
    ),
    "before": Case(
        values=("2026-01-31T09:00:00Z",),
        matching=(
            "2026-01-31T08:59:59Z",
            "2026-01-31T09:30:00+01:00",  # 08:30 UTC
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
        not_matching=(
            "2026-01-31T09:00:00Z",
            "2026-01-31T09:00:00+00:00",  # the same instant is not before itself
            "2026-01-31T04:30:00-05:00",  # 09:30 UTC
            datetime(2026, 2, 1, tzinfo=UTC),
        ),
        wrong_types=(
            *NOT_TEXT,
            1769850000,
            "2026-01-01",
            "2026-01-01T00:00:00",  # naive
            datetime(2026, 1, 1),
        ),
    ),
    "after": Case(
        values=("2026-01-31T09:00:00+00:00",),
        matching=(
            "2026-01-31T09:00:01Z",
            "2026-01-31T04:30:00-05:00",  # 09:30 UTC
            datetime(2026, 1, 31, 10, 1, tzinfo=timezone(timedelta(hours=1))),
        ),
        not_matching=(
            "2026-01-31T09:00:00Z",
            "2026-01-31T09:30:00+01:00",  # 08:30 UTC
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
        wrong_types=(
            *NOT_TEXT,
            1769850000,
            "2027-01-01",
            "2027-01-01T00:00:00",  # naive
            datetime(2027, 1, 1),
        ),
    ),
    "exists": Case(
        values=(),
        matching=("", "x", 0, 0.0, False, True, [], {}, [1], {"a": 1}),
        not_matching=(),
        wrong_types=(),
    ),
}


def test_the_table_covers_every_operator() -> None:
    assert set(CASES) == set(OPERATORS)


def test_the_operators_are_the_ones_contract_1_names() -> None:
    assert set(OPERATORS) == {
        "in",
        "not_in",
        "starts_with",
        "ends_with",
        "contains",
        "matches",
        "lt",
        "lte",
        "gt",
        "gte",
        "semver_lt",
        "semver_lte",
        "semver_gt",
        "semver_gte",
        "before",
        "after",
        "exists",
    }


@pytest.mark.parametrize("op", sorted(OPERATORS))
def test_every_operator_has_a_name_summary_and_compile_function(op: str) -> None:
    operator = OPERATORS[op]
    assert operator.name == op
    assert operator.summary
    assert callable(operator.compile)
    assert callable(operator.compile(CASES[op].values))


@pytest.mark.parametrize("op", sorted(CASES))
def test_matching_values_match(op: str) -> None:
    case = CASES[op]
    predicate = compiled(op, case.values)
    assert case.matching, "every operator has values it matches"
    for value in case.matching:
        assert predicate(value) is True, f"{op} {list(case.values)} should match {value!r}"


@pytest.mark.parametrize("op", sorted(CASES))
def test_non_matching_values_do_not_match(op: str) -> None:
    case = CASES[op]
    predicate = compiled(op, case.values)
    for value in case.not_matching:
        assert predicate(value) is False, f"{op} {list(case.values)} should not match {value!r}"


@pytest.mark.parametrize("op", sorted(CASES))
def test_values_of_the_wrong_type_never_match(op: str) -> None:
    case = CASES[op]
    predicate = compiled(op, case.values)
    for value in case.wrong_types:
        assert predicate(value) is False, f"{op} {list(case.values)} must not match {value!r}"


@pytest.mark.parametrize("op", sorted(CASES))
def test_compiling_accepts_a_tuple_or_a_list(op: str) -> None:
    case = CASES[op]
    as_list, as_tuple = compiled(op, list(case.values)), compiled(op, tuple(case.values))
    for value in (*case.matching, *case.not_matching, *case.wrong_types):
        assert as_list(value) == as_tuple(value)


# --- membership: types never cross ------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "value"),
    [
        ([1], True),  # a boolean is not the number 1
        ([0], False),
        ([True], 1),
        ([False], 0),
        ([1], "1"),  # a string is not the number it spells
        (["1"], 1),
        (["true"], True),
        ([True], "true"),
        ([1.5], "1.5"),
    ],
)
def test_in_does_not_match_across_types(values: list[object], value: object) -> None:
    assert compiled("in", values)(value) is False


@pytest.mark.parametrize(
    ("values", "value"),
    [([1], 1), ([1], 1.0), ([1.0], 1), ([2.5], 2.5), ([True], True), ([False], False)],
)
def test_in_matches_numbers_by_value_and_booleans_exactly(
    values: list[object], value: object
) -> None:
    assert compiled("in", values)(value) is True


def test_in_with_mixed_strings_numbers_and_booleans_matches_each_by_its_own_type() -> None:
    # Given a list that mixes the three scalar types
    predicate = compiled("in", ["pro", 42, True])
    # Then each member matches as itself
    assert predicate("pro") is True
    assert predicate(42) is True
    assert predicate(42.0) is True
    assert predicate(True) is True
    # And nothing matches a member of another type
    assert predicate("42") is False
    assert predicate("True") is False
    assert predicate(1) is False  # True is in the list, the number 1 is not
    assert predicate(False) is False
    assert predicate(43) is False
    assert predicate(["pro"]) is False
    assert predicate({"pro": True}) is False


def test_not_in_matches_a_present_scalar_that_is_not_in_the_list() -> None:
    predicate = compiled("not_in", ["blocked", 0, False])
    assert predicate("allowed") is True
    assert predicate(1) is True
    assert predicate(True) is True
    assert predicate("0") is True  # the string "0" is not the number 0
    assert predicate(1.5) is True


def test_not_in_does_not_match_a_listed_value() -> None:
    predicate = compiled("not_in", ["blocked", 0, False])
    assert predicate("blocked") is False
    assert predicate(0) is False
    assert predicate(0.0) is False
    assert predicate(False) is False


@pytest.mark.parametrize("value", [[], ["allowed"], ["blocked"], {}, {"a": 1}, (1,), {1, 2}])
def test_not_in_never_matches_a_list_or_object(value: object) -> None:
    assert compiled("not_in", ["blocked"])(value) is False


# --- matches: several patterns, search semantics -----------------------------------------


def test_matches_searches_anywhere_in_the_string_unless_anchored() -> None:
    unanchored = compiled("matches", ["beta"])
    assert unanchored("beta") is True
    assert unanchored("pre-beta-2") is True  # search, not match or fullmatch
    anchored = compiled("matches", ["^beta$"])
    assert anchored("beta") is True
    assert anchored("pre-beta-2") is False


def test_matches_with_several_patterns_matches_when_any_one_does() -> None:
    predicate = compiled("matches", [r"^a\d$", r"^b\d$", "zz"])
    assert predicate("a1") is True
    assert predicate("b2") is True
    assert predicate("xzzx") is True
    assert predicate("c3") is False
    # Each pattern keeps its own anchors: "^a\d$|^b\d$" must not let "a1b" through
    assert predicate("a1b") is False


def test_matches_patterns_with_alternations_do_not_leak_into_each_other() -> None:
    # Given two patterns that each contain an alternation
    predicate = compiled("matches", ["^(?:x|y)$", "^foo|bar$"])
    # Then each is applied as written
    assert predicate("x") is True
    assert predicate("xy") is False
    assert predicate("food") is True  # ^foo
    assert predicate("crowbar") is True  # bar$
    assert predicate("barn") is False


def test_matches_patterns_are_independent_of_each_other() -> None:
    # Group names, group numbers and inline flags belong to each pattern alone
    same_group_name = compiled("matches", ["(?P<x>a)$", "(?P<x>b)$"])
    assert same_group_name("b") is True
    numbered_groups = compiled("matches", [r"^(a)(x)$", r"^(b)$"])
    assert numbered_groups("b") is True
    assert numbered_groups("ax") is True
    inline_flag = compiled("matches", ["^x", "(?i)^beta"])
    assert inline_flag("BETA") is True
    assert inline_flag("X") is False


def test_matches_is_case_sensitive_unless_the_pattern_says_otherwise() -> None:
    assert compiled("matches", ["^beta"])("Beta") is False
    assert compiled("matches", ["(?i)^beta"])("Beta") is True


# --- matches: the RE2 dialect ------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "what"),
    [
        (r"(a)\1", "backreference"),
        (r"(?P<x>a)(?P=x)", "named backreference"),
        ("(?=x)", "lookahead"),
        ("(?!x)", "negative lookahead"),
        ("(?<=x)y", "lookbehind"),
        ("(?<!x)y", "negative lookbehind"),
        ("a++", "possessive quantifier"),
        ("(?>a)", "atomic group"),
    ],
)
def test_matches_refuses_what_re2_cannot_run_in_linear_time(pattern: str, what: str) -> None:
    with pytest.raises(OperandError) as refused:
        compiled("matches", ["ok", pattern])
    assert refused.value.index == 1
    assert refused.value.message.startswith(f"invalid regular expression {pattern!r}: RE2")


def test_matches_digit_class_is_ascii_only_as_re2_defines_it() -> None:
    digits = compiled("matches", [r"^\d+$"])
    assert digits("0123456789") is True
    assert digits("٣") is False  # ARABIC-INDIC DIGIT THREE: a digit to Python's re, not to RE2
    assert compiled("matches", [r"^\w+$"])("é") is False  # \w is [0-9A-Za-z_]
    assert compiled("matches", [r"^\pL+$"])("é") is True  # Unicode classes are explicit


def test_matches_dollar_is_the_end_of_the_text_not_before_a_final_newline() -> None:
    # Python's re lets `$` match before a trailing newline; RE2 (without (?m)) does not
    assert compiled("matches", ["^beta$"])("beta\n") is False
    assert compiled("matches", ["(?m)^beta$"])("beta\n") is True


def test_matches_case_insensitive_flag_folds_unicode_case() -> None:
    predicate = compiled("matches", ["(?i)^straße$"])
    assert predicate("STRAßE") is True
    assert predicate("Straße") is True
    assert compiled("matches", ["(?i)^é"])("É") is True


def test_matches_runs_a_catastrophic_pattern_in_linear_time() -> None:
    # `^(a+)+$` backtracks exponentially in Python's re; RE2 answers at once. (The time is
    # measured in bench/core_bench.py; here, that it answers at all on a long input.)
    predicate = compiled("matches", ["^(a+)+$"])
    assert predicate("a" * 100_000 + "!") is False
    assert predicate("a" * 100_000) is True


def test_matches_does_not_write_refused_patterns_to_stderr(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(OperandError):
        compiled("matches", [r"(a)\1"])
    assert capfd.readouterr().err == ""


# --- str subclasses are strings ----------------------------------------------------------


class Plan(enum.StrEnum):
    PRO = "pro"
    FREE = "free"


class Release(enum.StrEnum):
    CURRENT = "1.4.0"


class Launch(enum.StrEnum):
    DAY = "2026-01-31T09:00:00Z"


class Text(str):
    """A plain str subclass."""


@pytest.mark.parametrize(
    ("op", "values", "value"),
    [
        ("in", ["pro"], Plan.PRO),
        ("in", ["pro", 1, True], Plan.PRO),  # the mixed-type path too
        ("not_in", ["free"], Plan.PRO),
        ("starts_with", ["pr"], Plan.PRO),
        ("ends_with", ["ro"], Plan.PRO),
        ("contains", ["r"], Plan.PRO),
        ("matches", ["^pro$"], Plan.PRO),
        ("semver_gt", ["1.0.0"], Release.CURRENT),
        ("semver_gte", ["1.4.0"], Release.CURRENT),
        ("semver_lt", ["2.0.0"], Release.CURRENT),
        ("semver_lte", ["1.4.0"], Release.CURRENT),
        ("exists", [], Plan.FREE),
        ("in", ["pro"], Text("pro")),
        ("matches", ["^pro$"], Text("pro")),
        ("semver_gt", ["1.0.0"], Text("1.4.0")),
    ],
)
def test_str_subclasses_are_treated_as_strings(op: str, values: list[object], value: str) -> None:
    assert compiled(op, values)(value) is True


def test_a_str_enum_member_listed_as_a_value_compares_as_its_text() -> None:
    assert compiled("in", [Plan.PRO])("pro") is True
    assert compiled("not_in", [Plan.PRO])("pro") is False


@pytest.mark.parametrize(
    ("op", "bound", "value"),
    [
        ("before", "2027-01-01T00:00:00Z", Launch.DAY),
        ("after", "2025-01-01T00:00:00Z", Launch.DAY),
        ("after", "2025-01-01T00:00:00Z", Text("2026-01-31T09:00:00Z")),
    ],
)
def test_str_subclasses_are_treated_as_strings_by_date_operators(
    op: str, bound: str, value: str
) -> None:
    assert compiled(op, [bound])(value) is True


# --- compile errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "values", "index", "fragment"),
    [
        # membership: at least one scalar value
        ("in", [], None, "at least one value"),
        ("in", [None], 0, "string, number or boolean"),
        ("in", ["a", ["b"]], 1, "got an array"),
        ("in", ["a", 1, {"b": 1}], 2, "got an object"),
        ("in", [float("nan")], 0, "string, number or boolean"),
        ("in", [float("inf")], 0, "string, number or boolean"),
        ("not_in", [], None, "at least one value"),
        ("not_in", [True, None], 1, "got null"),
        # string operators: at least one string
        ("starts_with", [], None, "at least one value"),
        ("starts_with", [1], 0, "expected a string, got a number"),
        ("ends_with", ["@x.com", True], 1, "expected a string, got a boolean"),
        ("contains", ["a", "b", None], 2, "expected a string, got null"),
        ("matches", [], None, "at least one value"),
        ("matches", [1], 0, "expected a string"),
        # matches: every pattern must compile
        ("matches", ["(unclosed"], 0, "invalid regular expression '(unclosed'"),
        ("matches", ["ok", "[a-"], 1, "invalid regular expression"),
        ("matches", ["ok", "fine", "*oops"], 2, "invalid regular expression"),
        # numbers: exactly one finite number
        ("lt", [], None, "exactly one value, got 0"),
        ("lte", [1, 2], None, "exactly one value, got 2"),
        ("gt", ["18"], 0, "expected a finite number, got a string"),
        ("gte", [True], 0, "expected a finite number, got a boolean"),
        ("lt", [float("nan")], 0, "finite number"),
        ("gt", [float("inf")], 0, "finite number"),
        ("lte", [None], 0, "got null"),
        ("gte", [Decimal(1)], 0, "got Decimal"),  # only JSON numbers
        # versions: exactly one semantic version
        ("semver_lt", [], None, "exactly one value"),
        ("semver_lte", ["1.0.0", "2.0.0"], None, "exactly one value, got 2"),
        ("semver_gt", ["1.2"], 0, "semantic version"),
        ("semver_gte", [123], 0, "semantic version"),
        ("semver_gt", ["01.2.3"], 0, "semantic version"),
        # dates: exactly one RFC 3339 date-time with an offset
        ("before", [], None, "exactly one value"),
        ("after", ["2026-01-31T09:00:00Z", "2026-02-01T09:00:00Z"], None, "exactly one value"),
        ("before", ["2026-01-31"], 0, "RFC 3339"),
        ("after", ["2026-01-31T09:00:00"], 0, "RFC 3339"),  # naive
        ("before", [1769850000], 0, "RFC 3339"),
        ("after", ["tomorrow"], 0, "RFC 3339"),
        # exists takes nothing
        ("exists", [True], None, "takes no values"),
        ("exists", ["email"], None, "takes no values"),
    ],
)
def test_compile_errors_point_at_the_bad_value(
    op: str, values: list[object], index: int | None, fragment: str
) -> None:
    with pytest.raises(OperandError) as info:
        compiled(op, values)
    assert info.value.index == index
    assert fragment in info.value.message
    assert str(info.value) == info.value.message


def test_operand_error_is_a_value_error() -> None:
    assert issubclass(OperandError, ValueError)


@pytest.mark.parametrize("op", ["in", "not_in", "lt", "gt"])
def test_a_huge_integer_operand_does_not_crash_compilation(op: str) -> None:
    huge = 10**400  # json.loads gives an int for 400 digits
    try:
        predicate = compiled(op, [huge])
    except OperandError:
        return  # refusing it is fine
    assert predicate(1) is (op in ("not_in", "lt"))
