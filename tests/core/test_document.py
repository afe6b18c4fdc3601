"""Specification of the flag document (contract 1): what parses, what is refused and
where, and how a parsed document is written back.

A document is refused whole, with every problem listed by its path, so a person fixing
a document sees all of their mistakes at once."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from graylane.core import DocumentError, Problem, dump_document, parse_document
from graylane.core.model import Clause, Guard, RampPlan, Rollout, Rule, Segment, Serve
from graylane.core.operators import OPERATORS

# The example of contract 1 in DESIGN.md, as Python data.
EXAMPLE: dict[str, Any] = {
    "flags": {
        "new-checkout": {
            "description": "New checkout flow",
            "salt": "new-checkout",
            "variants": {"on": True, "off": False},
            "off_variant": "off",
            "environments": {
                "production": {
                    "enabled": True,
                    "rules": [
                        {
                            "name": "staff",
                            "when": [
                                {
                                    "attribute": "email",
                                    "op": "ends_with",
                                    "values": ["@example.com"],
                                }
                            ],
                            "serve": {"variant": "on"},
                        },
                        {"name": "beta", "segment": "beta-testers", "serve": {"variant": "on"}},
                    ],
                    "fallthrough": {
                        "rollout": {
                            "percentage": 10,
                            "bucket_by": "targetingKey",
                            "variants": {"on": 100},
                        },
                        "otherwise": "off",
                    },
                    "ramp": {
                        "stages": [1, 10, 50, 100],
                        "min_stage_duration": "10m",
                        "min_samples": 1000,
                        "guards": [{"metric": "error_rate", "max": 0.001}],
                        "auto_advance": True,
                    },
                }
            },
        }
    },
    "segments": {
        "beta-testers": {
            "include": ["user-1", "user-2"],
            "exclude": ["user-9"],
            "when": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
        }
    },
}

# --- helpers ------------------------------------------------------------------------------

F = "flags.f"
E = "flags.f.environments.production"
R = f"{E}.rules[0]"
C = f"{R}.when[0]"
FR = f"{E}.fallthrough.rollout"
RAMP = f"{E}.ramp"
G = f"{RAMP}.guards[0]"
S = "segments.s"

PLAN_PRO = {"attribute": "plan", "op": "in", "values": ["pro"]}
ROLLOUT = {"percentage": 10, "variants": {"on": 100}}


def flag_doc(**flag: Any) -> dict[str, Any]:
    """A document with one flag `f` (default variants on/off)."""
    return {"flags": {"f": flag}}


def env_doc(**env: Any) -> dict[str, Any]:
    """Flag `f` configured, enabled, for `production`."""
    return flag_doc(environments={"production": {"enabled": True, **env}})


def rule_doc(**rule: Any) -> dict[str, Any]:
    """One rule `r` on plan=pro serving `on`, with fields replaced (None removes one)."""
    body = {"name": "r", "when": [PLAN_PRO], "serve": {"variant": "on"}, **rule}
    return env_doc(rules=[{k: v for k, v in body.items() if v is not None}])


def clause_doc(clause: Any) -> dict[str, Any]:
    return rule_doc(when=[clause])


def rollout_doc(rollout: Any, **serve: Any) -> dict[str, Any]:
    """The fallthrough serves `rollout`."""
    return env_doc(fallthrough={"rollout": rollout, **serve})


def ramp_doc(ramp: Any) -> dict[str, Any]:
    """A ramp over a fallthrough rollout."""
    return env_doc(fallthrough={"rollout": ROLLOUT}, ramp=ramp)


def guard_doc(guard: Any) -> dict[str, Any]:
    return ramp_doc({"guards": [guard]})


def segment_doc(segment: Any) -> dict[str, Any]:
    return {"flags": {}, "segments": {"s": segment}}


def problems_of(document: object) -> list[tuple[str, str]]:
    """(path, message) of every problem, in the order they were found."""
    with pytest.raises(DocumentError) as info:
        parse_document(document)
    assert info.value.problems, "a DocumentError always carries its problems"
    return [(p.path, p.message) for p in info.value.problems]


def assert_problems(document: object, expected: list[tuple[str, str]]) -> None:
    """Exactly the expected problems: each path equal, each message containing the text."""
    found = problems_of(document)
    unmatched = list(found)
    for path, fragment in expected:
        hit = next((p for p in unmatched if p[0] == path and fragment in p[1]), None)
        assert hit is not None, f"no problem at {path!r} containing {fragment!r}; got {found}"
        unmatched.remove(hit)
    assert not unmatched, f"unexpected problems: {unmatched}"


def round_trip(document: object) -> dict[str, Any]:
    return dump_document(parse_document(document))


# --- valid documents ----------------------------------------------------------------------


def test_the_contract_example_parses() -> None:
    document = parse_document(EXAMPLE)

    flag = document.flags["new-checkout"]
    assert flag.key == "new-checkout"
    assert flag.description == "New checkout flow"
    assert flag.bucket_salt == "new-checkout"
    assert flag.variants == (("on", True), ("off", False))
    assert flag.off_variant == "off"

    production = flag.environments["production"]
    assert production.enabled is True
    assert production.rules == (
        Rule(
            name="staff",
            serve=Serve(variant="on"),
            when=(Clause("email", "ends_with", ("@example.com",)),),
        ),
        Rule(name="beta", serve=Serve(variant="on"), segment="beta-testers"),
    )
    assert production.fallthrough == Serve(
        rollout=Rollout(
            percentage=Decimal(10), variants=(("on", Decimal(100)),), bucket_by="targetingKey"
        ),
        otherwise="off",
    )
    assert production.ramp == RampPlan(
        stages=(Decimal(1), Decimal(10), Decimal(50), Decimal(100)),
        min_stage_duration=600.0,
        min_samples=1000,
        guards=(Guard(metric="error_rate", max=0.001),),
        auto_advance=True,
    )
    assert document.segments == {
        "beta-testers": Segment(
            key="beta-testers",
            include=("user-1", "user-2"),
            exclude=("user-9",),
            when=(Clause("plan", "in", ("pro",)),),
        )
    }
    assert document.environments == ("production",)


def test_parsing_does_not_modify_the_input() -> None:
    data = copy.deepcopy(EXAMPLE)
    parse_document(data)
    assert data == EXAMPLE


def test_an_empty_document_is_valid() -> None:
    document = parse_document({})
    assert dict(document.flags) == {}
    assert dict(document.segments) == {}


def test_defaults_for_a_flag_that_only_names_an_environment() -> None:
    # Given a flag that spells out nothing but an environment
    document = parse_document({"flags": {"f": {"environments": {"production": {}}}}})
    # Then it is a boolean on/off flag, disabled, serving `off` to everyone
    flag = document.flags["f"]
    assert flag.variants == (("on", True), ("off", False))
    assert flag.off_variant == "off"
    assert flag.salt is None
    assert flag.bucket_salt == "f"
    assert flag.description == ""
    assert flag.tags == ()
    production = flag.environments["production"]
    assert production.enabled is False
    assert production.rules == ()
    assert production.fallthrough == Serve(variant="off")
    assert production.ramp is None


def test_off_variant_defaults_to_a_variant_named_off() -> None:
    document = parse_document(flag_doc(variants={"red": "#f00", "off": "", "blue": "#00f"}))
    assert document.flags["f"].off_variant == "off"


def test_rollout_defaults_bucket_by_and_otherwise() -> None:
    document = parse_document(rollout_doc({"percentage": 25, "variants": {"on": 100}}))
    serve = document.flags["f"].environments["production"].fallthrough
    assert serve.rollout is not None
    assert serve.rollout.bucket_by == "targetingKey"
    assert serve.otherwise == "off"  # the flag's off variant


def test_a_rule_rollout_without_otherwise_serves_the_off_variant_outside() -> None:
    document = parse_document(rule_doc(serve={"rollout": ROLLOUT}))
    assert document.flags["f"].environments["production"].rules[0].serve.otherwise == "off"


def test_an_empty_ramp_uses_the_default_plan() -> None:
    document = parse_document(ramp_doc({}))
    assert document.flags["f"].environments["production"].ramp == RampPlan()
    assert RampPlan() == RampPlan(
        stages=(Decimal(1), Decimal(10), Decimal(50), Decimal(100)),
        min_stage_duration=600.0,
        min_samples=1000,
        guards=(
            Guard(kind="relative", metric="error_rate", max=0.5),
            Guard(metric="error_rate", max=0.2),
        ),
        auto_advance=True,
        on_breach="rollback",
        watch_completed=3600.0,
    )


def test_a_null_ramp_is_no_ramp() -> None:
    document = parse_document(env_doc(ramp=None))
    assert document.flags["f"].environments["production"].ramp is None


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("30s", 30.0), ("10m", 600.0), ("2h", 7200.0), ("1h30m", 5400.0), (90, 90.0), (0.5, 0.5)],
)
def test_min_stage_duration_takes_a_duration_or_seconds(written: object, seconds: float) -> None:
    document = parse_document(ramp_doc({"min_stage_duration": written}))
    ramp = document.flags["f"].environments["production"].ramp
    assert ramp is not None
    assert ramp.min_stage_duration == seconds


def test_a_guard_may_have_only_a_warn_level() -> None:
    document = parse_document(guard_doc({"metric": "timeout_rate", "warn": 0.5}))
    ramp = document.flags["f"].environments["production"].ramp
    assert ramp is not None
    assert ramp.guards == (Guard(metric="timeout_rate", warn=0.5),)


def test_no_guards_is_allowed() -> None:
    document = parse_document(ramp_doc({"guards": []}))
    ramp = document.flags["f"].environments["production"].ramp
    assert ramp is not None
    assert ramp.guards == ()


@pytest.mark.parametrize("percentage", [0, 0.001, 0.5, 12.345, 99.999, 100, 100.0])
def test_percentages_from_0_to_100_with_up_to_3_decimals_are_exact(percentage: float) -> None:
    document = parse_document(rollout_doc({"percentage": percentage, "variants": {"on": 100}}))
    rollout = document.flags["f"].environments["production"].fallthrough.rollout
    assert rollout is not None
    assert rollout.percentage == Decimal(str(percentage))


def test_weights_keep_document_order_and_may_be_zero_or_fractional() -> None:
    variants = {"a": "A", "b": "B", "c": "C", "d": "D", "off": ""}
    weights = {"c": 33.333, "a": 33.333, "d": 0, "b": 33.334}
    document = parse_document(
        flag_doc(
            variants=variants,
            environments={
                "production": {"fallthrough": {"rollout": {"percentage": 50, "variants": weights}}}
            },
        )
    )
    rollout = document.flags["f"].environments["production"].fallthrough.rollout
    assert rollout is not None
    assert rollout.variants == (
        ("c", Decimal("33.333")),
        ("a", Decimal("33.333")),
        ("d", Decimal(0)),
        ("b", Decimal("33.334")),
    )


@pytest.mark.parametrize(
    "variants",
    [
        {"on": True, "off": False},
        {"on": 1, "off": 0.5},  # integers and fractions are one JSON type: number
        {"on": "green", "off": ""},
        {"on": {"limit": 10}, "off": {}},
        {"on": [1, 2], "off": []},
    ],
)
def test_variants_of_one_json_type_are_accepted(variants: dict[str, Any]) -> None:
    document = parse_document(flag_doc(variants=variants))
    assert document.flags["f"].variants == tuple(variants.items())


@pytest.mark.parametrize(
    "key", ["a", "A9", "9a", "new-checkout", "new_checkout", "checkout.v2", "x" * 128]
)
def test_valid_keys(key: str) -> None:
    document = parse_document(
        {
            "flags": {key: {"variants": {key: 1, "off": 0}, "environments": {key: {}}}},
            "segments": {key: {}},
        }
    )
    assert key in document.flags
    assert key in document.segments
    assert key in document.flags[key].environments


def test_a_rule_may_combine_clauses_and_a_segment() -> None:
    document = parse_document(
        {
            **rule_doc(segment="s", when=[PLAN_PRO]),
            "segments": {"s": {"include": ["user-1"]}},
        }
    )
    rule = document.flags["f"].environments["production"].rules[0]
    assert rule.segment == "s"
    assert rule.when == (Clause("plan", "in", ("pro",)),)


@pytest.mark.parametrize("op", sorted(OPERATORS))
def test_every_operator_is_accepted_in_a_clause(op: str) -> None:
    values: dict[str, list[Any]] = {
        "lt": [1],
        "lte": [1],
        "gt": [1],
        "gte": [1],
        "semver_lt": ["1.0.0"],
        "semver_lte": ["1.0.0"],
        "semver_gt": ["1.0.0"],
        "semver_gte": ["1.0.0"],
        "before": ["2026-01-31T09:00:00Z"],
        "after": ["2026-01-31T09:00:00+01:00"],
        "exists": [],
    }
    clause = {"attribute": "x", "op": op, "values": values.get(op, ["a"])}
    document = parse_document(clause_doc(clause))
    assert document.flags["f"].environments["production"].rules[0].when[0].op == op


# --- round trip ---------------------------------------------------------------------------

RICH: dict[str, Any] = {
    "flags": {
        "banner": {
            "description": "Banner colour",
            "tags": ["ui", "experiment"],
            "salt": "banner-2025",
            "variants": {"red": "#f00", "green": "#0f0", "none": ""},
            "off_variant": "none",
            "environments": {
                "production": {
                    "enabled": True,
                    "rules": [
                        {
                            "name": "all-ops",
                            "when": [
                                {"attribute": "plan", "op": "in", "values": ["pro", 1, True]},
                                {"attribute": "plan", "op": "not_in", "values": ["free"]},
                                {"attribute": "email", "op": "starts_with", "values": ["a"]},
                                {"attribute": "email", "op": "ends_with", "values": [".com"]},
                                {"attribute": "email", "op": "contains", "values": ["@"]},
                                {"attribute": "email", "op": "matches", "values": ["^a.*$", "b"]},
                                {"attribute": "age", "op": "lt", "values": [99.5]},
                                {"attribute": "age", "op": "lte", "values": [99]},
                                {"attribute": "age", "op": "gt", "values": [0]},
                                {"attribute": "age", "op": "gte", "values": [-1]},
                                {"attribute": "v", "op": "semver_lt", "values": ["9.0.0"]},
                                {"attribute": "v", "op": "semver_lte", "values": ["9.0.0-rc.1"]},
                                {"attribute": "v", "op": "semver_gt", "values": ["1.0.0+b"]},
                                {"attribute": "v", "op": "semver_gte", "values": ["1.0.0"]},
                                {
                                    "attribute": "t",
                                    "op": "before",
                                    "values": ["2030-01-01T00:00:00Z"],
                                },
                                {
                                    "attribute": "t",
                                    "op": "after",
                                    "values": ["2020-01-01T00:00:00+02:00"],
                                },
                                {"attribute": "t", "op": "exists"},
                            ],
                            "serve": {"variant": "green"},
                        },
                        {
                            "name": "beta-split",
                            "segment": "beta",
                            "serve": {
                                "rollout": {
                                    "percentage": 12.345,
                                    "bucket_by": "accountId",
                                    "variants": {"red": 33.333, "green": 66.667},
                                },
                                "otherwise": "red",
                            },
                        },
                    ],
                    "fallthrough": {
                        "rollout": {"percentage": 0.001, "variants": {"green": 0, "red": 100}}
                    },
                    "ramp": {
                        "stages": [0.5, 2.5, 25, 100],
                        "min_stage_duration": 5400,
                        "min_samples": 0,
                        "guards": [
                            {"metric": "error_rate", "max": 0.01, "warn": 0.005},
                            {"metric": "timeout_rate", "warn": 2},
                        ],
                        "auto_advance": False,
                        "on_breach": "step_back",
                    },
                },
                "staging": {"enabled": False},
            },
        },
        "plain": {"environments": {"production": {"enabled": True}}},
        "nowhere": {},
    },
    "segments": {
        "beta": {"description": "Beta", "include": ["u1"], "exclude": ["u2"], "when": [PLAN_PRO]},
        "empty": {},
    },
}


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(EXAMPLE, id="contract-example"),
        pytest.param(RICH, id="rich"),
        pytest.param({}, id="empty"),
        pytest.param({"flags": {"f": {}}}, id="bare-flag"),
        pytest.param(env_doc(), id="defaults-everywhere"),
        pytest.param(rollout_doc(ROLLOUT), id="rollout-without-otherwise"),
        pytest.param(ramp_doc({}), id="default-ramp"),
    ],
)
def test_dump_then_parse_gives_the_same_document_and_dumping_again_the_same_data(
    document: dict[str, Any],
) -> None:
    # Given a valid document, parsed and dumped
    parsed = parse_document(document)
    dumped = dump_document(parsed)
    # When the dumped data is parsed again
    reparsed = parse_document(dumped)
    # Then it is the same document, and it dumps to identical data
    assert reparsed == parsed
    assert dump_document(reparsed) == dumped
    # And the dumped data is plain JSON
    assert json.loads(json.dumps(dumped)) == dumped


def test_dump_is_explicit_about_every_default() -> None:
    # Given a flag that relies on every default
    document = {
        "flags": {
            "f": {
                "environments": {
                    "production": {},
                    "canary": {"fallthrough": {"rollout": ROLLOUT}, "ramp": {}},
                }
            }
        }
    }
    # Then the dump spells the defaults out
    assert round_trip(document) == {
        "flags": {
            "f": {
                "variants": {"on": True, "off": False},
                "off_variant": "off",
                "environments": {
                    "production": {
                        "enabled": False,
                        "rules": [],
                        "fallthrough": {"variant": "off"},
                    },
                    "canary": {
                        "enabled": False,
                        "rules": [],
                        "fallthrough": {
                            "rollout": {
                                "percentage": 10,
                                "bucket_by": "targetingKey",
                                "variants": {"on": 100},
                            },
                            "otherwise": "off",
                        },
                        "ramp": {
                            "stages": [1, 10, 50, 100],
                            "min_stage_duration": "10m",
                            "min_samples": 1000,
                            "guards": [
                                {"kind": "relative", "metric": "error_rate", "max": 0.5},
                                {"metric": "error_rate", "max": 0.2},
                            ],
                            "auto_advance": True,
                            "on_breach": "rollback",
                        },
                    },
                },
            }
        }
    }


def test_dump_writes_whole_numbers_as_integers_and_keeps_decimals() -> None:
    dumped = round_trip(rollout_doc({"percentage": 10.0, "variants": {"on": 33.5, "off": 66.5}}))
    rollout = dumped["flags"]["f"]["environments"]["production"]["fallthrough"]["rollout"]
    assert rollout["percentage"] == 10
    assert type(rollout["percentage"]) is int
    assert rollout["variants"] == {"on": 33.5, "off": 66.5}


def test_dump_keeps_the_order_of_flags_rules_variants_and_weights() -> None:
    dumped = round_trip(RICH)
    assert list(dumped["flags"]) == ["banner", "plain", "nowhere"]
    banner = dumped["flags"]["banner"]
    assert list(banner["variants"]) == ["red", "green", "none"]
    production = banner["environments"]["production"]
    assert [r["name"] for r in production["rules"]] == ["all-ops", "beta-split"]
    assert list(production["fallthrough"]["rollout"]["variants"]) == ["green", "red"]


@pytest.mark.parametrize(
    "seconds",
    [
        0.0015,
        1.5,
        100000.5,
        1234567.5,
        2.0000001,
    ],
)
def test_dump_keeps_a_fractional_stage_duration_exactly(seconds: float) -> None:
    document = ramp_doc({"min_stage_duration": seconds})
    assert parse_document(round_trip(document)) == parse_document(document)


# --- many mistakes at once ----------------------------------------------------------------

PROD = "flags.new-checkout.environments.production"
ON = {"variant": "on"}
EMAIL = [{"attribute": "email", "op": "ends_with", "values": ["@example.com"]}]

BROKEN: dict[str, Any] = {
    "flags": {
        "new-checkout": {
            "description": "New checkout flow",
            "variants": {"on": True, "off": False},
            "off_variant": "of",
            "enviroments": {},
            "environments": {
                "production": {
                    "enabled": True,
                    "rules": [
                        {
                            "name": "staff",
                            "when": [{"attribute": "email", "op": "eqq", "values": ["a@b.c"]}],
                            "serve": ON,
                        },
                        {
                            "name": "staff",
                            "when": [{"attribute": "age", "op": "gt", "values": ["18"]}],
                            "serve": {"variant": "onn"},
                        },
                        {
                            "name": "regex",
                            "when": [{"attribute": "email", "op": "matches", "values": ["(x"]}],
                            "serve": ON,
                        },
                        {
                            "name": "version",
                            "when": [{"attribute": "app", "op": "semver_gte", "values": ["1.2"]}],
                            "serve": ON,
                        },
                        {
                            "name": "launch",
                            "when": [
                                {
                                    "attribute": "signup",
                                    "op": "after",
                                    "values": ["2026-13-01T00:00:00Z"],
                                }
                            ],
                            "serve": ON,
                        },
                        {"name": "beta", "segment": "beta-tester", "serve": ON},
                        {"name": "nothing", "serve": ON},
                        {
                            "name": "both",
                            "when": EMAIL,
                            "serve": {"variant": "on", "rollout": ROLLOUT},
                        },
                        {"name": "neither", "when": EMAIL, "serve": {}},
                        {"name": "typo", "when": EMAIL, "segmnt": "beta-testers", "serve": ON},
                        {
                            "name": "split",
                            "when": EMAIL,
                            "serve": {
                                "rollout": {
                                    "percentage": 12.3456,
                                    "variants": {"on": 50, "off": 40},
                                },
                                "otherwise": "off",
                            },
                        },
                        {
                            "name": "clause-typo",
                            "when": [{"attribute": "email", "op": "exists", "valeus": []}],
                            "serve": {"variant": "on", "otherwize": "off"},
                        },
                    ],
                    "fallthrough": {
                        "rollout": {
                            "percentage": 150,
                            "bucketby": "userId",
                            "variants": {"on": 60, "of": 40},
                        },
                        "otherwise": "offf",
                    },
                    "rulez": [],
                },
                "staging": {
                    "enabled": True,
                    "fallthrough": {"rollout": {"percentage": 1, "variants": {"on": 100}}},
                    "ramp": {
                        "stages": [1, 1, 100],
                        "min_stage_duration": "10 minutes",
                        "guards": [{"metric": "error_rate", "max": 0.01, "warn": 0.02}],
                        "auto_advanse": True,
                    },
                },
                "canary": {
                    "enabled": True,
                    "fallthrough": {"rollout": {"percentage": 10, "variants": {"on": 100}}},
                    "ramp": {"stages": [10, 50, 100]},
                },
                "eu-west": {
                    "enabled": True,
                    "fallthrough": {"variant": "on"},
                    "ramp": {"stages": [1, 10, 50]},
                },
            },
        },
        "new checkout": {"environments": {}},
        "mixed": {"variants": {"a": 1, "b": "two", "c": True}, "off_variant": "a"},
        "fine": {"environments": {"production": {"enabled": True}}},
    },
    "segments": {"beta-testers": {"include": ["user-1"], "whn": []}},
    "segmets": {},
}

BROKEN_PROBLEMS = [
    ("segmets", "unknown field; expected one of: flags, segments"),
    ("segments.beta-testers.whn", "unknown field"),
    ("flags.new-checkout.enviroments", "unknown field"),
    ("flags.new-checkout.off_variant", "unknown variant 'of'; variants are: off, on"),
    (f"{PROD}.rulez", "unknown field"),
    (f"{PROD}.rules[0].when[0].op", "unknown operator 'eqq'"),
    (f"{PROD}.rules[1].name", "duplicate rule name 'staff' (also used by rules[0])"),
    (f"{PROD}.rules[1].when[0].values[0]", "gt: expected a finite number, got a string"),
    (f"{PROD}.rules[1].serve.variant", "unknown variant 'onn'"),
    (f"{PROD}.rules[2].when[0].values[0]", "matches: invalid regular expression '(x'"),
    (f"{PROD}.rules[3].when[0].values[0]", "semver_gte: expected a semantic version"),
    (f"{PROD}.rules[4].when[0].values[0]", "after: expected an RFC 3339 date-time"),
    (f"{PROD}.rules[5].segment", "unknown segment 'beta-tester'"),
    (f"{PROD}.rules[6]", "a rule needs `when` clauses or a `segment`"),
    (f"{PROD}.rules[7].serve", "serve either `variant: NAME` or `rollout: {...}`"),
    (f"{PROD}.rules[8].serve", "serve either `variant: NAME` or `rollout: {...}`"),
    (f"{PROD}.rules[9].segmnt", "unknown field"),
    (f"{PROD}.rules[10].serve.rollout.percentage", "more than 3 decimals"),
    (f"{PROD}.rules[10].serve.rollout.variants", "weights must sum to 100, got 90"),
    (f"{PROD}.rules[11].when[0].valeus", "unknown field"),
    (f"{PROD}.rules[11].serve.otherwize", "unknown field"),
    (f"{PROD}.fallthrough.rollout.bucketby", "unknown field"),
    (f"{PROD}.fallthrough.rollout.percentage", "percentage 150 is out of range"),
    (f"{PROD}.fallthrough.rollout.variants.of", "unknown variant 'of'"),
    (f"{PROD}.fallthrough.otherwise", "unknown variant 'offf'"),
    ("flags.new-checkout.environments.staging.ramp.auto_advanse", "unknown field"),
    ("flags.new-checkout.environments.staging.ramp.stages[1]", "stages must rise"),
    ("flags.new-checkout.environments.staging.ramp.min_stage_duration", "'10 minutes'"),
    ("flags.new-checkout.environments.staging.ramp.guards[0].warn", "must be below `max`"),
    (
        "flags.new-checkout.environments.canary.ramp.stages[0]",
        "first stage must be from 0.001 to 5",
    ),
    ("flags.new-checkout.environments.eu-west.ramp.stages", "the last stage must be 100"),
    ("flags.new-checkout.environments.eu-west.ramp", "the fallthrough must serve a rollout"),
    ("flags.new checkout", "invalid flag key 'new checkout'"),
    ("flags.mixed.variants", "all be of one JSON type, got number: a; string: b; boolean: c"),
]


def test_a_document_with_many_mistakes_reports_every_one_with_its_path() -> None:
    assert_problems(BROKEN, BROKEN_PROBLEMS)


def test_problems_are_reported_in_a_stable_reading_order() -> None:
    # Given the broken document, whose mistakes are listed above in reading order:
    # top-level fields first, then segments (rules refer to them), then each flag as
    # written, and within a flag its own fields before its environments and rules
    paths = [path for path, _ in problems_of(BROKEN)]
    # Then the report follows that order
    assert paths == [path for path, _ in BROKEN_PROBLEMS]


def test_a_problem_reads_as_path_colon_message() -> None:
    problems = problems_of(BROKEN)
    op = next(p for p in problems if p[0].endswith("rules[0].when[0].op"))
    assert str(Problem(*op)) == (
        "flags.new-checkout.environments.production.rules[0].when[0].op: "
        "unknown operator 'eqq'; operators are: in, not_in, starts_with, ends_with, contains, "
        "matches, lt, lte, gt, gte, semver_lt, semver_lte, semver_gt, semver_gte, before, "
        "after, exists"
    )


def test_a_problem_without_a_path_reads_as_its_message() -> None:
    assert str(Problem("", "expected an object, got an array")) == (
        "expected an object, got an array"
    )


def test_document_error_lists_the_count_and_every_problem() -> None:
    with pytest.raises(DocumentError) as info:
        parse_document(BROKEN)
    error = info.value
    lines = str(error).splitlines()
    assert lines[0] == f"{len(BROKEN_PROBLEMS)} problems in the document:"
    assert lines[1:] == [f"  {problem}" for problem in error.problems]
    assert isinstance(error, ValueError)


def test_document_error_with_one_problem_says_problem_in_the_singular() -> None:
    with pytest.raises(DocumentError) as info:
        parse_document({"flags": []})
    assert (
        str(info.value) == "1 problem in the document:\n  flags: expected an object, got an array"
    )
    assert info.value.problems == (Problem("flags", "expected an object, got an array"),)


def test_a_document_is_refused_whole_even_when_most_of_it_is_valid() -> None:
    document = copy.deepcopy(EXAMPLE)
    document["flags"]["broken"] = {"off_variant": "nope"}
    assert_problems(document, [("flags.broken.off_variant", "unknown variant 'nope'")])


# --- one mistake at a time: every check ---------------------------------------------------


def case(document: object, path: str, fragment: str, name: str) -> Any:
    return pytest.param(document, path, fragment, id=name)


SINGLE_PROBLEMS = [
    # the document
    case([], "", "expected an object, got an array", "document-is-array"),
    case("flags: {}", "", "expected an object, got a string", "document-is-text"),
    case(None, "", "expected an object, got null", "document-is-null"),
    case({"flags": []}, "flags", "expected an object, got an array", "flags-not-object"),
    case({"flags": None}, "flags", "expected an object, got null", "flags-null"),
    case({"segments": ["s"]}, "segments", "expected an object, got an array", "segments-array"),
    # keys
    case({"flags": {"new checkout": {}}}, "flags.new checkout", "invalid flag key", "key-space"),
    case({"flags": {"-x": {}}}, "flags.-x", "invalid flag key '-x'", "key-leading-dash"),
    case({"flags": {"": {}}}, "flags.", "invalid flag key ''", "key-empty"),
    case({"flags": {"a/b": {}}}, "flags.a/b", "invalid flag key", "key-slash"),
    case({"flags": {"café": {}}}, "flags.café", "invalid flag key", "key-non-ascii"),
    case({"flags": {"x" * 129: {}}}, f"flags.{'x' * 129}", "at most 128", "key-too-long"),
    case(
        {"segments": {"beta testers": {}}},
        "segments.beta testers",
        "invalid segment key",
        "segment-key",
    ),
    case(
        flag_doc(environments={"prod eu": {}}),
        f"{F}.environments.prod eu",
        "invalid environment name 'prod eu'",
        "environment-name",
    ),
    case(
        flag_doc(variants={"on": True, "off": False, "o n": True}),
        f"{F}.variants.o n",
        "invalid variant name 'o n'",
        "variant-name",
    ),
    # a flag
    case({"flags": {"f": True}}, F, "expected an object, got a boolean", "flag-not-object"),
    case(flag_doc(varaints={}), f"{F}.varaints", "unknown field", "flag-unknown-field"),
    case(
        flag_doc(description=5),
        f"{F}.description",
        "expected a string, got a number",
        "description",
    ),
    case(flag_doc(salt=5), f"{F}.salt", "expected a string, got a number", "salt-not-string"),
    case(flag_doc(salt=" "), f"{F}.salt", "must not be empty", "salt-empty"),
    case(flag_doc(tags="ui"), f"{F}.tags", "expected an array, got a string", "tags-not-array"),
    case(flag_doc(tags=["ui", 1]), f"{F}.tags[1]", "expected a string, got a number", "tag"),
    case(flag_doc(environments=[]), f"{F}.environments", "expected an object", "environments"),
    # variants
    case(flag_doc(variants=[True, False]), f"{F}.variants", "expected an object", "variants-array"),
    case(flag_doc(variants={}), f"{F}.variants", "at least one variant", "variants-empty"),
    case(
        flag_doc(variants={"on": True, "off": False, "maybe": None}),
        f"{F}.variants.maybe",
        "must be JSON data, got null",
        "variant-null",
    ),
    case(
        flag_doc(variants={"on": 1, "off": 0, "big": float("inf")}),
        f"{F}.variants.big",
        "is not a finite number",
        "variant-infinite",
    ),
    case(
        flag_doc(variants={"on": 1, "off": 0, "odd": {1, 2}}),
        f"{F}.variants.odd",
        "is not a JSON value",
        "variant-not-json",
    ),
    case(
        flag_doc(variants={"on": True, "off": 0}),
        f"{F}.variants",
        "one JSON type, got boolean: on; number: off",
        "variants-bool-and-number",
    ),
    case(
        flag_doc(variants={"on": {"a": 1}, "off": []}),
        f"{F}.variants",
        "one JSON type, got object: on; array: off",
        "variants-object-and-array",
    ),
    case(
        flag_doc(variants={"on": "1", "off": 0}),
        f"{F}.variants",
        "one JSON type",
        "variants-string-and-number",
    ),
    # off_variant
    case(
        flag_doc(variants={"a": 1, "b": 2}),
        f"{F}.off_variant",
        "required",
        "off-variant-missing-without-off",
    ),
    case(
        flag_doc(off_variant="none"),
        f"{F}.off_variant",
        "unknown variant 'none'",
        "off-variant-unknown",
    ),
    case(
        flag_doc(off_variant=0),
        f"{F}.off_variant",
        "expected a string, got a number",
        "off-variant-type",
    ),
    # an environment
    case(
        flag_doc(environments={"production": []}),
        E,
        "expected an object, got an array",
        "env-not-object",
    ),
    case(
        env_doc(rulez=[]),
        f"{E}.rulez",
        "unknown field; expected one of: enabled, rules",
        "env-typo",
    ),
    case(env_doc(enabled="yes"), f"{E}.enabled", "expected true or false, got a string", "enabled"),
    case(env_doc(enabled=1), f"{E}.enabled", "expected true or false, got a number", "enabled-1"),
    case(env_doc(rules={}), f"{E}.rules", "expected an array, got an object", "rules-not-array"),
    case(env_doc(fallthrough="on"), f"{E}.fallthrough", "expected an object", "fallthrough-type"),
    case(
        env_doc(fallthrough={"variant": "onn"}),
        f"{E}.fallthrough.variant",
        "unknown variant 'onn'",
        "fallthrough-unknown-variant",
    ),
    # rules
    case(env_doc(rules=["staff"]), R, "expected an object, got a string", "rule-not-object"),
    case(
        rule_doc(nmae="x"), f"{R}.nmae", "unknown field; expected one of: name, when", "rule-typo"
    ),
    case(rule_doc(name=None), f"{R}.name", "expected a string, got null", "rule-name-missing"),
    case(rule_doc(name=""), f"{R}.name", "must not be empty", "rule-name-empty"),
    case(
        env_doc(rules=[{"name": "r", "when": [PLAN_PRO], "serve": ON}] * 2),
        f"{E}.rules[1].name",
        "duplicate rule name 'r' (also used by rules[0])",
        "rule-name-duplicate",
    ),
    case(
        rule_doc(segment="beta"),
        f"{R}.segment",
        "unknown segment 'beta' (none are defined)",
        "segment-unknown",
    ),
    case(rule_doc(segment=5), f"{R}.segment", "expected a string, got a number", "segment-type"),
    case(rule_doc(when=None), R, "a rule needs `when` clauses or a `segment`", "rule-no-when"),
    case(rule_doc(when=[]), R, "a rule needs `when` clauses or a `segment`", "rule-empty-when"),
    case(rule_doc(serve=None), f"{R}.serve", "required", "rule-no-serve"),
    case(
        rule_doc(when=PLAN_PRO), f"{R}.when", "expected an array, got an object", "when-not-array"
    ),
    # clauses
    case(clause_doc("plan"), C, "expected an object, got a string", "clause-not-object"),
    case(
        clause_doc({**PLAN_PRO, "vales": ["x"]}),
        f"{C}.vales",
        "unknown field; expected one of: attribute, op, values",
        "clause-typo",
    ),
    case(
        clause_doc({"op": "exists"}),
        f"{C}.attribute",
        "expected a string, got null",
        "attribute-missing",
    ),
    case(
        clause_doc({"attribute": "", "op": "exists"}),
        f"{C}.attribute",
        "must not be empty",
        "attribute-empty",
    ),
    case(
        clause_doc({**PLAN_PRO, "op": "eq"}),
        f"{C}.op",
        "unknown operator 'eq'; operators are: in",
        "op-unknown",
    ),
    case(
        clause_doc({"attribute": "plan", "values": ["pro"]}),
        f"{C}.op",
        "unknown operator null",
        "op-missing",
    ),
    case(
        clause_doc({**PLAN_PRO, "op": 5}), f"{C}.op", "unknown operator a number", "op-not-string"
    ),
    case(
        clause_doc({**PLAN_PRO, "values": "pro"}),
        f"{C}.values",
        "expected an array, got a string",
        "values-type",
    ),
    case(
        clause_doc({**PLAN_PRO, "values": []}),
        f"{C}.values",
        "in: needs at least one value",
        "in-empty",
    ),
    case(
        clause_doc({**PLAN_PRO, "values": ["pro", ["team"]]}),
        f"{C}.values[1]",
        "in: expected a string, number or boolean, got an array",
        "in-array-value",
    ),
    case(
        clause_doc({"attribute": "age", "op": "gte", "values": ["18"]}),
        f"{C}.values[0]",
        "gte: expected a finite number, got a string",
        "number-op-string-value",
    ),
    case(
        clause_doc({"attribute": "age", "op": "lt", "values": [1, 2]}),
        f"{C}.values",
        "lt: needs exactly one value, got 2",
        "number-op-two-values",
    ),
    case(
        clause_doc({"attribute": "email", "op": "ends_with", "values": [1]}),
        f"{C}.values[0]",
        "ends_with: expected a string, got a number",
        "string-op-number-value",
    ),
    case(
        clause_doc({"attribute": "email", "op": "matches", "values": ["ok", "[a-"]}),
        f"{C}.values[1]",
        "matches: invalid regular expression '[a-'",
        "regex-does-not-compile",
    ),
    case(
        clause_doc({"attribute": "v", "op": "semver_lt", "values": ["1.2"]}),
        f"{C}.values[0]",
        "semver_lt: expected a semantic version like '1.2.3', got '1.2'",
        "semver-invalid",
    ),
    case(
        clause_doc({"attribute": "t", "op": "before", "values": ["2026-01-31"]}),
        f"{C}.values[0]",
        "before: expected an RFC 3339 date-time with offset",
        "date-invalid",
    ),
    case(
        clause_doc({"attribute": "t", "op": "after", "values": ["2026-01-31T09:00:00"]}),
        f"{C}.values[0]",
        "after: expected an RFC 3339 date-time with offset",
        "date-naive",
    ),
    case(
        clause_doc({"attribute": "t", "op": "exists", "values": [True]}),
        f"{C}.values",
        "exists: takes no values",
        "exists-with-values",
    ),
    # serve
    case(
        rule_doc(serve="on"), f"{R}.serve", "expected an object, got a string", "serve-not-object"
    ),
    case(
        rule_doc(serve={"variant": "on", "rollout": ROLLOUT}),
        f"{R}.serve",
        "serve either `variant: NAME` or `rollout: {...}`",
        "serve-both",
    ),
    case(rule_doc(serve={}), f"{R}.serve", "serve either", "serve-neither"),
    case(
        rule_doc(serve={"variant": "on", "otherwise": "off"}),
        f"{R}.serve.otherwise",
        "only a rollout has units outside it",
        "variant-with-otherwise",
    ),
    case(
        rule_doc(serve={"variant": "onn"}),
        f"{R}.serve.variant",
        "unknown variant 'onn'; variants are: off, on",
        "serve-unknown-variant",
    ),
    case(
        rule_doc(serve={"variant": True}),
        f"{R}.serve.variant",
        "expected a string",
        "serve-variant-type",
    ),
    case(
        rollout_doc(ROLLOUT, otherwise="of"),
        f"{E}.fallthrough.otherwise",
        "unknown variant 'of'",
        "otherwise-unknown",
    ),
    # rollouts
    case(rollout_doc(10), FR, "expected an object, got a number", "rollout-not-object"),
    case(rollout_doc({**ROLLOUT, "percent": 5}), f"{FR}.percent", "unknown field", "rollout-typo"),
    case(
        rollout_doc({"variants": {"on": 100}}), f"{FR}.percentage", "required", "percentage-missing"
    ),
    case(
        rollout_doc({**ROLLOUT, "percentage": "10"}),
        f"{FR}.percentage",
        "expected a number, got a string",
        "percentage-string",
    ),
    case(
        rollout_doc({**ROLLOUT, "percentage": True}),
        f"{FR}.percentage",
        "expected a number, got a boolean",
        "percentage-bool",
    ),
    case(
        rollout_doc({**ROLLOUT, "percentage": float("nan")}),
        f"{FR}.percentage",
        "is not a finite number",
        "percentage-nan",
    ),
    case(
        rollout_doc({**ROLLOUT, "percentage": -1}),
        f"{FR}.percentage",
        "percentage -1 is out of range: must be from 0 to 100",
        "percentage-negative",
    ),
    case(
        rollout_doc({**ROLLOUT, "percentage": 100.001}),
        f"{FR}.percentage",
        "out of range",
        "percentage-over-100",
    ),
    case(
        rollout_doc({**ROLLOUT, "percentage": 12.3456}),
        f"{FR}.percentage",
        "percentage 12.3456 has more than 3 decimals",
        "percentage-4-decimals",
    ),
    case(
        rollout_doc({**ROLLOUT, "percentage": 0.0001}),
        f"{FR}.percentage",
        "more than 3 decimals",
        "percentage-tiny",
    ),
    case(
        rollout_doc({**ROLLOUT, "bucket_by": 7}),
        f"{FR}.bucket_by",
        "expected a string",
        "bucket-by-type",
    ),
    case(
        rollout_doc({**ROLLOUT, "bucket_by": ""}),
        f"{FR}.bucket_by",
        "must not be empty",
        "bucket-by-empty",
    ),
    case(
        rollout_doc({"percentage": 10}),
        f"{FR}.variants",
        "required: how units inside",
        "weights-missing",
    ),
    case(
        rollout_doc({"percentage": 10, "variants": ["on"]}),
        f"{FR}.variants",
        "expected an object",
        "weights-type",
    ),
    case(
        rollout_doc({"percentage": 10, "variants": {"on": 50, "of": 50}}),
        f"{FR}.variants.of",
        "unknown variant 'of'",
        "weight-unknown-variant",
    ),
    case(
        rollout_doc({"percentage": 10, "variants": {"on": 110, "off": 0}}),
        f"{FR}.variants.on",
        "weight 110 is out of range",
        "weight-out-of-range",
    ),
    case(
        rollout_doc({"percentage": 10, "variants": {"on": 50, "off": "50"}}),
        f"{FR}.variants.off",
        "expected a number, got a string",
        "weight-string",
    ),
    case(
        rollout_doc({"percentage": 10, "variants": {"on": 33.3335, "off": 66}}),
        f"{FR}.variants.on",
        "more than 3 decimals",
        "weight-decimals",
    ),
    case(
        rollout_doc({"percentage": 10, "variants": {"on": 50, "off": 40}}),
        f"{FR}.variants",
        "weights must sum to 100, got 90",
        "weights-under-100",
    ),
    case(
        rollout_doc({"percentage": 10, "variants": {"on": 50.5, "off": 50}}),
        f"{FR}.variants",
        "weights must sum to 100, got 100.5",
        "weights-over-100",
    ),
    case(
        rollout_doc({"percentage": 10, "variants": {}}),
        f"{FR}.variants",
        "weights must sum to 100, got 0",
        "weights-empty",
    ),
    # ramps
    case(ramp_doc([1, 10, 100]), RAMP, "expected an object, got an array", "ramp-not-object"),
    case(ramp_doc({"stage": [1, 100]}), f"{RAMP}.stage", "unknown field", "ramp-typo"),
    case(
        env_doc(fallthrough={"variant": "on"}, ramp={}),
        RAMP,
        "a ramp drives the fallthrough rollout: the fallthrough must serve a rollout",
        "ramp-fixed-fallthrough",
    ),
    case(
        env_doc(ramp={}), RAMP, "the fallthrough must serve a rollout", "ramp-default-fallthrough"
    ),
    case(ramp_doc({"stages": "1,10,100"}), f"{RAMP}.stages", "expected an array", "stages-type"),
    case(ramp_doc({"stages": []}), f"{RAMP}.stages", "at least one stage", "stages-empty"),
    case(
        ramp_doc({"stages": [0, 10, 100]}),
        f"{RAMP}.stages[0]",
        "stage 0 is out of range: must be from 0.001 to 100",
        "stage-zero",
    ),
    case(ramp_doc({"stages": [1, 10, 101]}), f"{RAMP}.stages[2]", "out of range", "stage-over-100"),
    case(
        ramp_doc({"stages": [1, "10", 100]}), f"{RAMP}.stages[1]", "expected a number", "stage-type"
    ),
    case(
        ramp_doc({"stages": [1.2345, 100]}),
        f"{RAMP}.stages[0]",
        "more than 3 decimals",
        "stage-decimals",
    ),
    case(
        ramp_doc({"stages": [1, 10, 10, 100]}),
        f"{RAMP}.stages[2]",
        "stages must rise: each above the one before",
        "stages-repeat",
    ),
    case(
        ramp_doc({"stages": [1, 50, 10, 100]}),
        f"{RAMP}.stages[2]",
        "stages must rise",
        "stages-fall",
    ),
    case(
        ramp_doc({"stages": [10, 50, 100]}),
        f"{RAMP}.stages[0]",
        "the first stage must be from 0.001 to 5 percent",
        "first-stage-over-5",
    ),
    case(
        ramp_doc({"stages": [1, 10, 50]}),
        f"{RAMP}.stages",
        "the last stage must be 100",
        "last-stage-not-100",
    ),
    case(
        ramp_doc({"min_stage_duration": "10 minutes"}),
        f"{RAMP}.min_stage_duration",
        "expected a duration like '30s', '10m' or '2h', got '10 minutes'",
        "duration-text",
    ),
    case(
        ramp_doc({"min_stage_duration": "-5m"}),
        f"{RAMP}.min_stage_duration",
        "expected a duration",
        "duration-negative-text",
    ),
    case(
        ramp_doc({"min_stage_duration": -5}),
        f"{RAMP}.min_stage_duration",
        "expected a duration",
        "duration-negative",
    ),
    case(
        ramp_doc({"min_stage_duration": True}),
        f"{RAMP}.min_stage_duration",
        "expected a duration",
        "duration-bool",
    ),
    case(
        ramp_doc({"min_stage_duration": ""}),
        f"{RAMP}.min_stage_duration",
        "expected a duration",
        "duration-empty",
    ),
    case(
        ramp_doc({"min_samples": -1}),
        f"{RAMP}.min_samples",
        "expected a whole number, at least 0",
        "samples-negative",
    ),
    case(
        ramp_doc({"min_samples": 1.5}),
        f"{RAMP}.min_samples",
        "expected a whole number",
        "samples-fraction",
    ),
    case(
        ramp_doc({"min_samples": True}),
        f"{RAMP}.min_samples",
        "expected a whole number",
        "samples-bool",
    ),
    case(
        ramp_doc({"min_samples": "1000"}),
        f"{RAMP}.min_samples",
        "expected a whole number",
        "samples-string",
    ),
    case(
        ramp_doc({"auto_advance": "yes"}),
        f"{RAMP}.auto_advance",
        "expected true or false",
        "auto-advance",
    ),
    case(
        ramp_doc({"on_breach": "panic"}),
        f"{RAMP}.on_breach",
        "expected one of: rollback, step_back",
        "on-breach",
    ),
    # guards
    case(
        ramp_doc({"guards": {"metric": "error_rate"}}),
        f"{RAMP}.guards",
        "expected an array",
        "guards-type",
    ),
    case(guard_doc("error_rate"), G, "expected an object, got a string", "guard-not-object"),
    case(
        guard_doc({"metric": "error_rate", "max": 0.01, "limit": 1}),
        f"{G}.limit",
        "unknown field; expected one of: kind, metric, max, warn, name, query, url",
        "guard-typo",
    ),
    case(
        guard_doc({"max": 0.01}),
        f"{G}.metric",
        "required by a guard of kind 'absolute'",
        "guard-metric-missing",
    ),
    case(
        guard_doc({"metric": "error_rate", "max": -0.1, "warn": 0.05}),
        f"{G}.max",
        "expected a number, at least 0",
        "guard-max-negative",
    ),
    case(
        guard_doc({"metric": "error_rate", "max": "1%", "warn": 0.05}),
        f"{G}.max",
        "expected a number",
        "guard-max-string",
    ),
    case(
        guard_doc({"metric": "error_rate", "max": 0.1, "warn": True}),
        f"{G}.warn",
        "expected a number",
        "guard-warn-bool",
    ),
    case(
        guard_doc({"metric": "error_rate"}),
        G,
        "a guard needs a `max` (roll back) or `warn`",
        "guard-no-level",
    ),
    case(
        guard_doc({"metric": "error_rate", "max": 0.01, "warn": 0.02}),
        f"{G}.warn",
        "must be below `max`",
        "guard-warn-above-max",
    ),
    case(
        guard_doc({"metric": "error_rate", "max": 0.01, "warn": 0.01}),
        f"{G}.warn",
        "must be below `max`",
        "guard-warn-equal-max",
    ),
    # segments
    case(segment_doc(["user-1"]), S, "expected an object, got an array", "segment-not-object"),
    case(
        segment_doc({"includes": []}),
        f"{S}.includes",
        "unknown field; expected one of: description",
        "segment-typo",
    ),
    case(segment_doc({"include": "user-1"}), f"{S}.include", "expected an array", "include-type"),
    case(
        segment_doc({"include": ["user-1", 2]}),
        f"{S}.include[1]",
        "expected a string, got a number",
        "include-item",
    ),
    case(
        segment_doc({"exclude": [""]}), f"{S}.exclude[0]", "must not be empty", "exclude-item-empty"
    ),
    case(
        segment_doc({"description": []}),
        f"{S}.description",
        "expected a string",
        "segment-description",
    ),
    case(
        segment_doc({"when": [{**PLAN_PRO, "op": "is"}]}),
        f"{S}.when[0].op",
        "unknown operator 'is'",
        "segment-clause",
    ),
]


@pytest.mark.parametrize(("document", "path", "fragment"), SINGLE_PROBLEMS)
def test_each_mistake_is_reported_once_at_its_path(
    document: object, path: str, fragment: str
) -> None:
    assert_problems(document, [(path, fragment)])


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"flagz": {}}, "flagz"),
        (flag_doc(envs={}), f"{F}.envs"),
        (env_doc(enable=True), f"{E}.enable"),
        (rule_doc(segmnt="s"), f"{R}.segmnt"),
        (clause_doc({**PLAN_PRO, "operator": "in"}), f"{C}.operator"),
        (rule_doc(serve={"variant": "on", "variants": "on"}), f"{R}.serve.variants"),
        (rollout_doc({**ROLLOUT, "bucketBy": "userId"}), f"{FR}.bucketBy"),
        (ramp_doc({"min_stage_duraton": "1m"}), f"{RAMP}.min_stage_duraton"),
        (guard_doc({"metric": "error_rate", "max": 0.1, "wran": 0.05}), f"{G}.wran"),
        (segment_doc({"exlude": []}), f"{S}.exlude"),
    ],
    ids=[
        "top",
        "flag",
        "environment",
        "rule",
        "clause",
        "serve",
        "rollout",
        "ramp",
        "guard",
        "segment",
    ],
)
def test_unknown_fields_are_reported_at_every_level(document: object, path: str) -> None:
    assert_problems(document, [(path, "unknown field; expected one of: ")])


def test_non_string_keys_are_reported() -> None:
    assert_problems(
        {"flags": {1: {}}},
        [("flags", "keys must be strings, got a number 1"), ("flags.1", "invalid flag key 1")],
    )


def test_a_rule_that_fails_several_ways_reports_each() -> None:
    # Given one rule with a duplicate name, a broken clause and an unknown variant
    rules = [
        {"name": "r", "when": [PLAN_PRO], "serve": ON},
        {"name": "r", "when": [{"attribute": "age", "op": "gt"}], "serve": {"variant": "x"}},
    ]
    # Then all three are reported, each at its own path
    assert_problems(
        env_doc(rules=rules),
        [
            (f"{E}.rules[1].name", "duplicate rule name"),
            (f"{E}.rules[1].when[0].values", "gt: needs exactly one value, got 0"),
            (f"{E}.rules[1].serve.variant", "unknown variant 'x'"),
        ],
    )


def test_a_typo_in_the_only_serve_field_reports_the_typo_and_the_missing_choice() -> None:
    assert_problems(
        rule_doc(serve={"varient": "on"}),
        [(f"{R}.serve.varient", "unknown field"), (f"{R}.serve", "serve either")],
    )


def test_an_invalid_guard_level_is_reported_at_the_level_only() -> None:
    # The guard does name a level; the one problem is that level's value.
    assert_problems(
        guard_doc({"metric": "error_rate", "max": -1}),
        [(f"{G}.max", "expected a number, at least 0")],
    )


def test_a_clause_with_an_unknown_operator_and_no_attribute_reports_both() -> None:
    assert_problems(
        clause_doc({"op": "eqq", "values": ["x"]}),
        [(f"{C}.attribute", "expected a string, got null"), (f"{C}.op", "unknown operator 'eqq'")],
    )


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"flags": {"new-checkout\n": {}}}, "flags.new-checkout\n"),
        ({"segments": {"beta\n": {}}}, "segments.beta\n"),
        (flag_doc(environments={"production\n": {}}), f"{F}.environments.production\n"),
    ],
    ids=["flag", "segment", "environment"],
)
def test_a_key_with_a_trailing_newline_is_invalid(document: object, path: str) -> None:
    assert_problems(document, [(path, "invalid")])


def test_a_huge_integer_percentage_is_reported_not_raised() -> None:
    # json.loads turns 400 digits into a Python int, so an API body can carry one
    assert_problems(
        rollout_doc({**ROLLOUT, "percentage": 10**400}),
        [(f"{FR}.percentage", "outside the signed 64-bit range")],
    )


@pytest.mark.parametrize(
    ("document", "path"),
    [
        pytest.param(
            clause_doc({"attribute": "age", "op": "gt", "values": [10**400]}),
            f"{C}.values[0]",
            id="gt-operand",
        ),
        pytest.param(
            clause_doc({"attribute": "n", "op": "in", "values": [10**400]}),
            f"{C}.values[0]",
            id="in-operand",
        ),
        pytest.param(
            ramp_doc({"min_stage_duration": 10**400}),
            f"{RAMP}.min_stage_duration",
            id="duration",
        ),
        pytest.param(
            guard_doc({"metric": "error_rate", "max": 10**400}),
            f"{G}.max",
            id="guard-max",
        ),
    ],
)
def test_a_huge_integer_elsewhere_is_accepted_or_reported_never_raised(
    document: object, path: str
) -> None:
    reported: list[str] = []
    try:
        parse_document(document)
    except DocumentError as error:
        reported = [p.path for p in error.problems]
    assert reported in ([], [path])
