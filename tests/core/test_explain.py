"""Specification of the explain trace: why a flag served what it served.

The trace follows evaluation step by step (rules in order, clauses in order, segments,
the rollout bucket) and its result is always exactly what `evaluate` returns."""

from __future__ import annotations

import enum
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from graylane.core import (
    ErrorCode,
    Explanation,
    Reason,
    bucket,
    compile_document,
    evaluate,
    explain,
    parse_document,
    threshold,
)
from graylane.core.snapshot import Snapshot
from tests.core.documents import boolean_flag, clause, segment_rule, staff_rule

DOCUMENT: dict[str, Any] = {
    "flags": {
        "checkout": boolean_flag(
            staff_rule(),
            {
                "name": "pro-in-eu",
                "when": [clause("plan", "in", ["pro"]), clause("country", "in", ["DE", "FR"])],
                "serve": {"variant": "on"},
            },
            segment_rule("beta-testers"),
            elsewhere={"staging": {"enabled": False}},
        ),
        "banner": {
            "salt": "banner-salt",
            "variants": {"red": "#f00", "green": "#0f0", "blue": "#00f", "none": ""},
            "off_variant": "none",
            "environments": {
                "production": {
                    "enabled": True,
                    "rules": [
                        {
                            "name": "mobile-split",
                            "when": [{"attribute": "platform", "op": "in", "values": ["ios"]}],
                            "serve": {
                                "rollout": {
                                    "percentage": 100,
                                    "bucket_by": "deviceId",
                                    "variants": {"red": 50, "green": 50},
                                },
                                "otherwise": "none",
                            },
                        },
                        {
                            "name": "launch",
                            "when": [
                                {
                                    "attribute": "now",
                                    "op": "after",
                                    "values": ["2026-01-01T00:00:00Z"],
                                }
                            ],
                            "serve": {"variant": "blue"},
                        },
                    ],
                    "fallthrough": {"variant": "none"},
                }
            },
        },
    },
    "segments": {
        "beta-testers": {
            "include": ["user-1"],
            "exclude": ["user-9"],
            "when": [{"attribute": "beta", "op": "in", "values": [True]}],
        },
        "listed-only": {"include": ["user-1"]},
    },
}

CHECKOUT_THRESHOLD = threshold(50)


@pytest.fixture(scope="module")
def production() -> Snapshot:
    return compile_document(parse_document(DOCUMENT), "production")


def unit_where(salt: str, accept: Callable[[int], bool]) -> str:
    """The first of user-100, user-101, ... whose bucket for `salt` passes `accept`."""
    for n in itertools.count(100):
        unit = f"user-{n}"
        if accept(bucket(salt, unit)):
            return unit
    raise AssertionError("unreachable")  # pragma: no cover


INSIDE = unit_where("checkout", lambda b: b < CHECKOUT_THRESHOLD)
OUTSIDE = unit_where("checkout", lambda b: b >= CHECKOUT_THRESHOLD)


# --- rules --------------------------------------------------------------------------------


def test_the_trace_stops_at_the_first_matching_rule(production: Snapshot) -> None:
    # Given a context that the first rule and the third would both match
    context = {"targetingKey": "user-1", "email": "ann@example.com"}
    # When the flag is explained
    explanation = explain(production, "checkout", context)
    # Then only the first rule was tried, and it decided
    assert [r.name for r in explanation.rules] == ["staff"]
    assert explanation.rules[0].matched is True
    assert explanation.fallthrough is False
    assert explanation.rollout is None
    assert explanation.result.reason == Reason.TARGETING_MATCH
    assert explanation.result.rule == "staff"
    assert explanation.result.variant == "on"


def test_the_trace_names_every_rule_tried_in_order(production: Snapshot) -> None:
    # Given a context that no rule matches
    explanation = explain(production, "checkout", {"targetingKey": INSIDE, "plan": "free"})
    # Then every rule is listed, in document order, as not matched, and the fallthrough decided
    assert [(r.name, r.matched) for r in explanation.rules] == [
        ("staff", False),
        ("pro-in-eu", False),
        ("beta", False),
    ]
    assert explanation.fallthrough is True


def test_a_failing_clause_shows_the_actual_value(production: Snapshot) -> None:
    explanation = explain(production, "checkout", {"targetingKey": "u", "email": "ann@gmail.com"})
    (clause,) = explanation.rules[0].clauses
    assert clause.attribute == "email"
    assert clause.op == "ends_with"
    assert clause.values == ("@example.com",)
    assert clause.actual == "ann@gmail.com"
    assert clause.matched is False
    assert clause.note == "did not match"


def test_a_missing_attribute_is_shown_as_attribute_missing(production: Snapshot) -> None:
    explanation = explain(production, "checkout", {"targetingKey": "u"})
    (clause,) = explanation.rules[0].clauses
    assert clause.actual is None
    assert clause.matched is False
    assert clause.note == "attribute missing"


def test_clauses_are_traced_up_to_and_including_the_first_failing_one(production: Snapshot) -> None:
    # Given a pro user outside the EU
    explanation = explain(
        production, "checkout", {"targetingKey": "u", "plan": "pro", "country": "US"}
    )
    # Then rule two shows its first clause matching and its second failing on "US"
    rule = explanation.rules[1]
    assert rule.name == "pro-in-eu"
    assert [(c.attribute, c.actual, c.note) for c in rule.clauses] == [
        ("plan", "pro", "matched"),
        ("country", "US", "did not match"),
    ]
    # And a free user is stopped by the first clause; the second is not looked at
    explanation = explain(
        production, "checkout", {"targetingKey": "u", "plan": "free", "country": "DE"}
    )
    assert [(c.attribute, c.note) for c in explanation.rules[1].clauses] == [
        ("plan", "did not match")
    ]


def test_a_rule_whose_clauses_all_match_is_marked_matched(production: Snapshot) -> None:
    explanation = explain(
        production, "checkout", {"targetingKey": "u", "plan": "pro", "country": "FR"}
    )
    assert [r.name for r in explanation.rules] == ["staff", "pro-in-eu"]
    assert explanation.rules[1].matched is True
    assert all(c.matched for c in explanation.rules[1].clauses)
    assert explanation.result.rule == "pro-in-eu"


# --- segments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "matched", "why"),
    [
        ({"targetingKey": "user-1"}, True, "targeting key included"),
        ({"targetingKey": "user-1", "beta": False}, True, "targeting key included"),
        ({"targetingKey": "user-9", "beta": True}, False, "targeting key excluded"),
        ({"targetingKey": "user-5", "beta": True}, True, "all clauses matched"),
        ({"targetingKey": "user-5", "beta": False}, False, "a clause did not match"),
        ({"targetingKey": "user-5"}, False, "a clause did not match"),
        ({"beta": True}, True, "all clauses matched"),
    ],
)
def test_the_segment_trace_says_why_a_unit_is_in_or_out(
    production: Snapshot, context: dict[str, object], matched: bool, why: str
) -> None:
    explanation = explain(production, "checkout", context)
    rule = explanation.rules[2]
    assert rule.name == "beta"
    assert rule.segment is not None
    assert rule.segment.key == "beta-testers"
    assert rule.segment.matched is matched
    assert rule.segment.why == why
    assert rule.matched is matched


def test_the_segment_trace_shows_its_clauses_when_they_decide(production: Snapshot) -> None:
    explanation = explain(production, "checkout", {"targetingKey": "user-5", "beta": "yes"})
    segment = explanation.rules[2].segment
    assert segment is not None
    assert [(c.attribute, c.op, c.actual, c.note) for c in segment.clauses] == [
        ("beta", "in", "yes", "did not match")
    ]


def test_the_segment_trace_has_no_clauses_when_the_key_list_decides(production: Snapshot) -> None:
    explanation = explain(production, "checkout", {"targetingKey": "user-9", "beta": True})
    segment = explanation.rules[2].segment
    assert segment is not None
    assert segment.clauses == ()


def test_a_segment_with_no_clauses_says_so_for_unlisted_units() -> None:
    document = parse_document(
        {
            "flags": {
                "f": {
                    "environments": {
                        "production": {
                            "enabled": True,
                            "rules": [{"name": "r", "segment": "s", "serve": {"variant": "on"}}],
                        }
                    }
                }
            },
            "segments": {"s": {"include": ["user-1"]}},
        }
    )
    explanation = explain(compile_document(document, "production"), "f", {"targetingKey": "x"})
    segment = explanation.rules[0].segment
    assert segment is not None
    assert segment.matched is False
    assert segment.why == "not listed, and no clauses"


# --- rollouts -----------------------------------------------------------------------------


@pytest.mark.parametrize(("unit", "inside"), [(INSIDE, True), (OUTSIDE, False)])
def test_the_rollout_trace_shows_bucket_threshold_and_inside(
    production: Snapshot, unit: str, inside: bool
) -> None:
    explanation = explain(production, "checkout", {"targetingKey": unit})
    assert explanation.fallthrough is True
    rollout = explanation.rollout
    assert rollout is not None
    assert rollout.bucket_by == "targetingKey"
    assert rollout.unit == unit
    assert rollout.bucket == bucket("checkout", unit)
    assert rollout.threshold == CHECKOUT_THRESHOLD == 50_000
    assert rollout.inside is inside
    assert rollout.variant_bucket is None  # a single variant inside: no second draw
    assert explanation.result.reason == Reason.SPLIT
    assert explanation.result.bucket == rollout.bucket
    assert explanation.result.variant == ("on" if inside else "off")


def test_the_rollout_trace_without_a_unit_says_outside(production: Snapshot) -> None:
    explanation = explain(production, "checkout", {"plan": "free"})
    rollout = explanation.rollout
    assert rollout is not None
    assert rollout.unit is None
    assert rollout.bucket is None
    assert rollout.inside is False
    assert explanation.result.variant == "off"
    assert explanation.result.reason == Reason.SPLIT
    assert explanation.result.error_code is None
    assert "no unit in the context" in "\n".join(explanation.lines())


def test_a_rule_rollout_shows_its_bucket_by_and_variant_bucket(production: Snapshot) -> None:
    # Given a rule that splits iOS devices 50/50 between red and green, bucketed by deviceId
    explanation = explain(
        production, "banner", {"targetingKey": "u", "platform": "ios", "deviceId": "dev-42"}
    )
    # Then the trace shows the device's two draws
    rollout = explanation.rollout
    assert rollout is not None
    assert rollout.bucket_by == "deviceId"
    assert rollout.unit == "dev-42"
    assert rollout.bucket == bucket("banner-salt", "dev-42")
    assert rollout.threshold == 100_000
    assert rollout.inside is True
    assert rollout.variant_bucket == bucket("banner-salt:variant", "dev-42")
    expected = "red" if rollout.variant_bucket < 50_000 else "green"
    assert explanation.result.variant == expected
    assert explanation.result.rule == "mobile-split"
    assert explanation.fallthrough is False


def test_a_fixed_fallthrough_has_no_rollout_trace(production: Snapshot) -> None:
    explanation = explain(production, "banner", {"targetingKey": "u", "platform": "web"})
    assert explanation.fallthrough is True
    assert explanation.rollout is None
    assert explanation.result.reason == Reason.STATIC
    assert explanation.result.variant == "none"


# --- disabled, unconfigured and unknown flags ---------------------------------------------


def test_a_disabled_flag_gets_a_note_and_no_rules() -> None:
    staging = compile_document(parse_document(DOCUMENT), "staging")
    explanation = explain(staging, "checkout", {"targetingKey": "user-1", "email": "a@example.com"})
    assert explanation.found is True
    assert explanation.enabled is False
    assert explanation.rules == ()
    assert explanation.rollout is None
    assert explanation.notes == ("disabled: the off variant is served",)
    assert explanation.result.reason == Reason.DISABLED
    assert explanation.result.variant == "off"


def test_a_flag_not_configured_in_the_environment_gets_a_note() -> None:
    development = compile_document(parse_document(DOCUMENT), "development")
    explanation = explain(development, "banner", {"targetingKey": "u"})
    assert explanation.found is True
    assert explanation.enabled is False
    assert explanation.notes == ("not configured for development: the off variant is served",)
    assert explanation.result.variant == "none"
    assert explanation.result.reason == Reason.DISABLED


def test_an_unknown_flag_is_not_found(production: Snapshot) -> None:
    explanation = explain(production, "no-such-flag", {"targetingKey": "u"})
    assert explanation.found is False
    assert explanation.flag_key == "no-such-flag"
    assert explanation.environment == "production"
    assert explanation.rules == ()
    assert explanation.result.error_code == ErrorCode.FLAG_NOT_FOUND
    assert explanation.result.reason == Reason.ERROR
    assert explanation.lines() == ["flag 'no-such-flag' does not exist in production"]


# --- explain agrees with evaluate ---------------------------------------------------------


class Plan(enum.StrEnum):
    PRO = "pro"


CONTEXTS: list[dict[str, object]] = [
    {},
    {"targetingKey": "user-1"},
    {"targetingKey": "user-9", "beta": True},
    {"targetingKey": "user-5", "beta": True},
    {"targetingKey": INSIDE},
    {"targetingKey": OUTSIDE},
    {"targetingKey": 12345},
    {"targetingKey": 1.5},
    {"targetingKey": True},
    {"targetingKey": None, "email": "a@example.com"},
    {"targetingKey": "u", "email": ["a@example.com"]},
    {"targetingKey": "u", "email": {"address": "a@example.com"}, "beta": {True}},
    {"targetingKey": "u", "plan": Plan.PRO, "country": "DE"},
    {"targetingKey": "u", "plan": "pro", "country": "US"},
    {"platform": "ios"},
    {"platform": "ios", "deviceId": "dev-1"},
    {"platform": "ios", "deviceId": 7},
    {"now": "2026-06-01T00:00:00Z"},
    {"now": datetime(2026, 6, 1, tzinfo=UTC)},
    {"now": "2025-06-01T00:00:00+02:00"},
]
MANY_UNITS: list[dict[str, object]] = [
    {"targetingKey": f"user-{n}", "deviceId": f"d-{n}", "platform": "ios"} for n in range(40)
]


@pytest.mark.parametrize("environment", ["production", "staging", "development"])
@pytest.mark.parametrize("flag_key", ["checkout", "banner", "missing"])
def test_the_explained_result_is_always_what_evaluate_returns(
    environment: str, flag_key: str
) -> None:
    snapshot = compile_document(parse_document(DOCUMENT), environment)
    for context in CONTEXTS + MANY_UNITS:
        assert explain(snapshot, flag_key, context).result == evaluate(snapshot, flag_key, context)


@pytest.mark.parametrize("context", CONTEXTS)
def test_the_trace_agrees_with_the_result(production: Snapshot, context: dict[str, object]) -> None:
    for flag_key in ("checkout", "banner"):
        explanation = explain(production, flag_key, context)
        matched = [r.name for r in explanation.rules if r.matched]
        # At most one rule matches, it is the last one tried, and it is the result's rule
        assert len(matched) <= 1
        if matched:
            assert explanation.rules[-1].matched
            assert explanation.result.rule == matched[0]
            assert not explanation.fallthrough
        else:
            assert explanation.result.rule is None
            assert explanation.fallthrough
        if explanation.rollout is not None and explanation.rollout.bucket is not None:
            assert explanation.result.bucket == explanation.rollout.bucket


# --- output -------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["production", "staging", "development"])
@pytest.mark.parametrize("flag_key", ["checkout", "banner", "missing"])
def test_to_dict_is_json_serialisable(environment: str, flag_key: str) -> None:
    snapshot = compile_document(parse_document(DOCUMENT), environment)
    for context in CONTEXTS + MANY_UNITS:
        data = explain(snapshot, flag_key, context).to_dict()
        assert json.loads(json.dumps(data)) == data


def test_to_dict_turns_non_json_attribute_values_into_text(production: Snapshot) -> None:
    # Given a context value that JSON has no type for (an aware datetime)
    when = datetime(2026, 6, 1, tzinfo=UTC)
    data = explain(production, "banner", {"platform": "web", "now": when}).to_dict()
    # Then it is written as text, and the whole trace serialises
    (clause,) = data["rules"][1]["clauses"]
    assert clause == {
        "attribute": "now",
        "op": "after",
        "values": ["2026-01-01T00:00:00Z"],
        "actual": str(when),
        "matched": True,
        "note": "matched",
    }
    json.dumps(data)


def test_to_dict_keeps_lists_and_objects_as_json(production: Snapshot) -> None:
    context = {"email": {"address": "a@example.com", "tags": ("x", 1)}, "plan": ["pro"]}
    data = explain(production, "checkout", context).to_dict()
    assert data["rules"][0]["clauses"][0]["actual"] == {
        "address": "a@example.com",
        "tags": ["x", 1],
    }
    assert data["rules"][1]["clauses"][0]["actual"] == ["pro"]
    json.dumps(data)


def test_to_dict_contents(production: Snapshot) -> None:
    data = explain(production, "checkout", {"targetingKey": OUTSIDE}).to_dict()
    assert data["flag"] == "checkout"
    assert data["environment"] == "production"
    assert data["found"] is True
    assert data["enabled"] is True
    assert data["fallthrough"] is True
    assert [r["name"] for r in data["rules"]] == ["staff", "pro-in-eu", "beta"]
    assert data["rules"][0]["clauses"][0]["note"] == "attribute missing"
    assert data["rules"][2]["segment"]["why"] == "a clause did not match"
    assert data["rollout"] == {
        "bucket_by": "targetingKey",
        "unit": OUTSIDE,
        "bucket": bucket("checkout", OUTSIDE),
        "threshold": 50_000,
        "inside": False,
        "variant_bucket": None,
    }
    assert data["result"] == {
        "key": "checkout",
        "value": False,
        "variant": "off",
        "reason": "SPLIT",
        "bucket": bucket("checkout", OUTSIDE),
    }
    assert data["notes"] == []


def test_lines_give_a_readable_account(production: Snapshot) -> None:
    # Given a pro user outside the EU, outside the rollout
    context = {"targetingKey": OUTSIDE, "plan": "pro", "country": "US"}
    # When the explanation is rendered as text
    lines = explain(production, "checkout", context).lines()
    # Then it reads top to bottom like the evaluation
    assert all(isinstance(line, str) for line in lines)
    assert lines[0] == "flag 'checkout' in production: enabled"
    text = "\n".join(lines)
    for expected in (
        "  rule 'staff': no match",
        "    email ends_with ['@example.com']: actual None -> attribute missing",
        "  rule 'pro-in-eu': no match",
        "    plan in ['pro']: actual 'pro' -> matched",
        "    country in ['DE', 'FR']: actual 'US' -> did not match",
        "  rule 'beta': no match",
        "    segment 'beta-testers': not in (a clause did not match)",
        "      beta in [True]: actual None -> attribute missing",
        "  no rule matched: fallthrough",
        f"  rollout by targetingKey={OUTSIDE!r}: bucket {bucket('checkout', OUTSIDE)} "
        ">= threshold 50000 -> outside",
    ):
        assert expected in lines, f"{expected!r} not in:\n{text}"
    assert lines[-1] == "  => 'off' = False (SPLIT)"


def test_lines_for_a_match_and_for_a_disabled_flag(production: Snapshot) -> None:
    lines = explain(production, "checkout", {"email": "ann@example.com"}).lines()
    assert "  rule 'staff': MATCHED" in lines
    assert lines[-1] == "  => 'on' = True (TARGETING_MATCH)"

    staging = compile_document(parse_document(DOCUMENT), "staging")
    lines = explain(staging, "checkout", {}).lines()
    assert lines == [
        "flag 'checkout' in staging: disabled",
        "  note: disabled: the off variant is served",
        "  => 'off' = False (DISABLED)",
    ]


def test_lines_show_the_variant_bucket_of_a_split(production: Snapshot) -> None:
    explanation = explain(production, "banner", {"platform": "ios", "deviceId": "dev-42"})
    variant_bucket = bucket("banner-salt:variant", "dev-42")
    assert any(
        line.startswith("  rollout by deviceId='dev-42': bucket ")
        and line.endswith(f"-> inside, variant bucket {variant_bucket}")
        for line in explanation.lines()
    )


def test_an_explanation_is_an_immutable_value(production: Snapshot) -> None:
    explanation = explain(production, "checkout", {"targetingKey": "u"})
    assert isinstance(explanation, Explanation)
    with pytest.raises(AttributeError):
        explanation.found = False  # type: ignore[misc]
