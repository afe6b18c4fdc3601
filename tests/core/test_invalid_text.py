"""Specification of evaluation with text that is not valid Unicode, or an integer beyond
64 bits, in the context.

JSON allows a lone UTF-16 surrogate ("\\ud800"); Python decodes it to a str with no UTF-8
form, which mmh3 cannot hash (it crashes the process) and RE2 cannot match. JSON allows
integers of any length too; the server refuses one outside the signed 64-bit range.
Evaluation reading such a value answers an INVALID_CONTEXT error naming the attribute, in
the server's words, and never raises."""

from __future__ import annotations

import json

import pytest

from graylane.core import (
    ErrorCode,
    Evaluation,
    Reason,
    bucket,
    compile_document,
    evaluate,
    explain,
    parse_document,
    resolve,
)
from graylane.core.limits import MAX_INT, MIN_INT, context_problems
from graylane.core.snapshot import Snapshot
from tests.core.documents import LONE, boolean_flag, clause, segment_rule, staff_rule

SNAPSHOT: Snapshot = compile_document(
    parse_document(
        {
            "flags": {
                "rollout": boolean_flag(),
                "by-account": boolean_flag(bucket_by="account"),
                "staff": boolean_flag(staff_rule()),
                "pattern": boolean_flag(
                    {
                        "name": "digits",
                        "when": [clause("code", "matches", [r"^\d+$"])],
                        "serve": {"variant": "on"},
                    }
                ),
                "beta": boolean_flag(segment_rule("beta")),
                "static": {
                    "variants": {"on": True, "off": False},
                    "environments": {
                        "production": {"enabled": True, "fallthrough": {"variant": "on"}}
                    },
                },
            },
            "segments": {"beta": {"include": ["user-1"]}},
        }
    ),
    "production",
)


def both(key: str, context: dict[str, object]) -> list[Evaluation]:
    return [evaluate(SNAPSHOT, key, context), resolve(SNAPSHOT, key, context)]


@pytest.mark.parametrize(
    ("key", "context", "attribute"),
    [
        ("rollout", {"targetingKey": f"user-{LONE}"}, "targetingKey"),
        ("by-account", {"targetingKey": "u", "account": LONE}, "account"),
        ("staff", {"targetingKey": "u", "email": f"{LONE}@example.com"}, "email"),
        ("pattern", {"targetingKey": "u", "code": f"12{LONE}"}, "code"),
        ("beta", {"targetingKey": LONE}, "targetingKey"),
    ],
    ids=["unit", "bucket-by-attribute", "clause-attribute", "matches-attribute", "segment-key"],
)
def test_invalid_text_read_by_evaluation_answers_invalid_context_naming_the_attribute(
    key: str, context: dict[str, object], attribute: str
) -> None:
    for result in both(key, context):
        assert result.reason is Reason.ERROR
        assert result.error_code is ErrorCode.INVALID_CONTEXT
        assert result.value is None
        assert result.error_message is not None
        assert result.error_message.startswith(f"context.{attribute} is not valid Unicode")
        result.error_message.encode("utf-8")  # the message itself can be sent and logged


def test_invalid_text_in_an_attribute_no_clause_reads_does_not_matter() -> None:
    context = {"targetingKey": "user-1", "nickname": LONE}
    assert [r.reason for r in both("rollout", context)] == [Reason.SPLIT, Reason.SPLIT]
    assert [r.reason for r in both("static", {"targetingKey": LONE})] == [Reason.STATIC] * 2


def test_valid_non_ascii_text_evaluates_as_before() -> None:
    # Given a unit with accents, CJK and an emoji (a surrogate pair in UTF-16, valid here)
    unit = "usér-ユーザー-😀"
    result = evaluate(SNAPSHOT, "rollout", {"targetingKey": unit})
    # Then it is bucketed by contract 2, over its UTF-8 bytes
    assert result.error_code is None
    assert result.bucket == bucket("rollout", unit)
    assert evaluate(SNAPSHOT, "pattern", {"code": "٣"}).rule is None  # RE2's \d is ASCII


def test_explain_reports_invalid_context_instead_of_tracing() -> None:
    explanation = explain(SNAPSHOT, "rollout", {"targetingKey": LONE})
    assert explanation.result.error_code is ErrorCode.INVALID_CONTEXT
    assert explanation.notes == (explanation.result.error_message,)
    json.dumps(explanation.to_dict()).encode("utf-8")


def test_bucket_refuses_text_that_has_no_utf8_form() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        bucket("salt", LONE)


@pytest.mark.parametrize(
    ("key", "context", "attribute"),
    [
        ("rollout", {"targetingKey": 2**63}, "targetingKey"),
        ("rollout", {"targetingKey": -(2**63) - 1}, "targetingKey"),
        ("rollout", {"targetingKey": 10**5000}, "targetingKey"),
        ("by-account", {"targetingKey": "u", "account": 2**64}, "account"),
        ("staff", {"targetingKey": "u", "email": 2**63}, "email"),
        ("beta", {"targetingKey": 2**100}, "targetingKey"),
    ],
    ids=["unit", "unit-below", "unit-5000-digits", "bucket-by-attribute", "clause", "segment-key"],
)
def test_an_integer_beyond_64_bits_read_by_evaluation_answers_as_the_server_does(
    key: str, context: dict[str, object], attribute: str
) -> None:
    # The server refuses such a context at its edge: evaluation answers in its words
    (problem,) = context_problems(context)
    assert problem.path == f"context.{attribute}"
    for result in both(key, context):
        assert (result.value, result.variant) == (None, None)
        assert (result.reason, result.error_code) == (Reason.ERROR, ErrorCode.INVALID_CONTEXT)
        assert result.error_message == f"{problem.path} {problem.message}"
    assert explain(SNAPSHOT, key, context).notes == (f"{problem.path} {problem.message}",)


@pytest.mark.parametrize("unit", [MIN_INT, MAX_INT, -1, 0])
def test_integers_at_the_64_bit_bounds_are_units_as_their_decimal_text(unit: int) -> None:
    for result in both("rollout", {"targetingKey": unit}):
        assert result.error_code is None
        assert result.reason is Reason.SPLIT
    assert evaluate(SNAPSHOT, "rollout", {"targetingKey": unit}).bucket == bucket(
        "rollout", str(unit)
    )
    assert not both("beta", {"targetingKey": unit})[0].error_code


def test_an_integer_beyond_64_bits_in_an_attribute_no_clause_reads_does_not_matter() -> None:
    context = {"targetingKey": "user-1", "visits": 2**80}
    assert [r.reason for r in both("rollout", context)] == [Reason.SPLIT, Reason.SPLIT]
