"""Specification of the edge limits in flag documents: a document holding text that is
not valid Unicode, NUL, non-finite or oversized numbers, excessive nesting, or a regular
expression RE2 cannot run is refused when written, each problem at its path, so nothing
stored can later break a rebuild, an export or the audit log."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.core import DocumentError, parse_document, parse_ramp
from graylane.core.limits import MAX_DEPTH
from tests.core.documents import LONE, boolean_flag, segment_rule, staff_rule

PROD = "flags.f.environments.production"


def document(
    *,
    key: str = "f",
    description: str = "",
    variants: dict[str, Any] | None = None,
    rule_value: object = "@example.com",
    op: str = "ends_with",
    attribute: str = "email",
    salt: str = "f",
    segment_key: str = "beta",
    include: tuple[str, ...] = ("user-1",),
    guard_name: str = "checkout-errors",
) -> dict[str, Any]:
    flag = boolean_flag(
        staff_rule(attribute, op, rule_value),
        segment_rule(segment_key),
        percentage=1,
        ramp={"guards": [{"kind": "webhook", "name": guard_name, "url": "https://example.com"}]},
        description=description,
        salt=salt,
        off_variant="off",
    )
    if variants:
        flag["variants"] = variants
    return {
        "flags": {key: flag},
        "segments": {segment_key: {"include": list(include), "exclude": ["user-9"]}},
    }


def problems_of(data: object) -> list[tuple[str, str]]:
    with pytest.raises(DocumentError) as refused:
        parse_document(data)
    str(refused.value).encode("utf-8")  # the refusal itself can be sent, logged and stored
    return [(p.path, p.message) for p in refused.value.problems]


def test_the_example_document_is_accepted() -> None:
    parse_document(document())


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (document(description=f"new {LONE}"), "flags.f.description"),
        (document(variants={"on": f"x{LONE}", "off": "y"}), "flags.f.variants.on"),
        (document(rule_value=LONE), f"{PROD}.rules[0].when[0].values[0]"),
        (document(attribute=f"e{LONE}"), f"{PROD}.rules[0].when[0].attribute"),
        (document(salt=LONE), "flags.f.salt"),
        (document(include=("user-1", LONE)), "segments.beta.include[1]"),
        (document(guard_name=LONE), f"{PROD}.ramp.guards[0].name"),
    ],
    ids=["description", "variant-value", "rule-value", "attribute", "salt", "include", "guard"],
)
def test_a_lone_surrogate_anywhere_is_refused_at_its_path(data: object, path: str) -> None:
    problems = problems_of(data)
    assert (path, "is not valid Unicode (it holds a lone UTF-16 surrogate)") in problems


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (document(key=f"f{LONE}"), "flags.f\\ud800"),
        (document(segment_key=f"b{LONE}"), "segments.b\\ud800"),
        (document(variants={"on": True, LONE: False}), "flags.f.variants.\\ud800"),
    ],
    ids=["flag-key", "segment-key", "variant-name"],
)
def test_a_lone_surrogate_in_a_key_is_refused_with_a_printable_path(
    data: object, path: str
) -> None:
    assert path in [p for p, _ in problems_of(data)]


def test_nul_characters_are_refused() -> None:
    assert problems_of(document(description="a\x00b")) == [
        ("flags.f.description", "holds a NUL character")
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "is not a finite number (NaN or infinity)"),
        (float("inf"), "is not a finite number (NaN or infinity)"),
        (2**63, "is an integer outside the signed 64-bit range"),
    ],
)
def test_numbers_no_database_or_sdk_can_hold_are_refused(value: object, message: str) -> None:
    data = document(variants={"on": {"limit": value}, "off": {"limit": 1}})
    assert problems_of(data) == [("flags.f.variants.on.limit", message)]


def nested(levels: int) -> object:
    value: object = True
    for _ in range(levels):
        value = {"x": value}
    return value


def test_a_variant_nested_480_levels_deep_is_refused() -> None:
    problems = problems_of(document(variants={"on": nested(480), "off": {}}))
    assert len(problems) == 1
    path, message = problems[0]
    assert path.startswith("flags.f.variants.on.x.x")
    assert message == f"nests deeper than {MAX_DEPTH - 2} levels"


def test_nesting_counts_from_the_top_of_the_document() -> None:
    # flags (2), the flag (3), variants (4), so a variant object opens level 5
    deepest = MAX_DEPTH - 4
    parse_document(document(variants={"on": nested(deepest), "off": {}}))
    problems_of(document(variants={"on": nested(deepest + 1), "off": {}}))


def test_an_incremental_parse_checks_a_changed_flag() -> None:
    previous = parse_document(document())
    with pytest.raises(DocumentError):
        parse_document(document(description=LONE), previous=previous)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [(r"(a)\1", "invalid escape sequence"), ("(?=x)", "invalid perl operator")],
    ids=["backreference", "lookahead"],
)
def test_a_pattern_re2_cannot_compile_is_refused_at_its_path(pattern: str, reason: str) -> None:
    problems = problems_of(document(op="matches", rule_value=pattern))
    assert len(problems) == 1
    path, message = problems[0]
    assert path == f"{PROD}.rules[0].when[0].values[0]"
    assert message.startswith(f"matches: invalid regular expression {pattern!r}: RE2")
    assert reason in message


def test_re2_patterns_are_accepted() -> None:
    for pattern in (r"^\d{3}-\d{4}$", "(?i)^beta", r"^\pL+$", "^(a+)+$"):
        parse_document(document(op="matches", rule_value=pattern))


def test_a_ramp_on_its_own_is_held_to_the_same_limits() -> None:
    with pytest.raises(DocumentError) as refused:
        parse_ramp({"guards": [{"kind": "webhook", "name": "x", "url": LONE}]})
    assert [p.path for p in refused.value.problems] == ["ramp.guards[0].url"]
