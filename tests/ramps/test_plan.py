"""The ramp plan as written: the default guard set, guards on continuous metrics, the
`kpi` shorthand, how long a completed ramp stays watched, and what a plan may not say
when it is written (`guards: []`, `min_samples: 0`), each refused with its path."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.core import DocumentError, dump_document, parse_document, parse_ramp
from graylane.core.document import ramp_write_problems
from graylane.core.model import KPI_MAX, KPI_WARN, Guard, RampPlan


def problems_of(ramp: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(DocumentError) as caught:
        parse_ramp(ramp)
    return {p.path: p.message for p in caught.value.problems}


def document_with(ramp: dict[str, Any]) -> dict[str, Any]:
    return {
        "flags": {
            "checkout": {
                "environments": {
                    "production": {
                        "enabled": True,
                        "fallthrough": {"rollout": {"percentage": 0, "variants": {"on": 100}}},
                        "ramp": ramp,
                    }
                }
            }
        }
    }


def test_the_default_guards_compare_with_the_unexposed_group_under_a_disaster_cap() -> None:
    plan = parse_ramp({})
    relative = [g for g in plan.guards if g.kind == "relative"]
    absolute = [g for g in plan.guards if g.kind == "absolute"]
    assert relative == [Guard(kind="relative", metric="error_rate", max=0.5)]
    assert len(absolute) == 1
    # a cap that only catches disasters: far above any baseline a service runs at
    assert absolute[0].max is not None
    assert absolute[0].max >= 0.1
    # no default level that a healthy service's own error rate could cross
    assert all(g.max is None or g.max > 0.001 for g in plan.guards)


def test_a_continuous_metric_guard_reads_the_mean_value_per_request() -> None:
    plan = parse_ramp(
        {
            "guards": [
                {"kind": "relative", "metric": "latency", "max": 0.3},
                {"metric": "latency", "max": 250},
            ]
        }
    )
    relative, absolute = plan.guards
    assert relative == Guard(kind="relative", metric="latency", max=0.3)
    assert (relative.event, relative.continuous) == ("latency", True)
    # an absolute cap on a continuous metric is in its own unit, not a rate up to 1
    assert absolute.max == 250
    assert (Guard(metric="error_rate").event, Guard(metric="error_rate").continuous) == (
        "error",
        False,
    )


def test_the_kpi_shorthand_warns_at_15_percent_and_rolls_back_at_30() -> None:
    plan = parse_ramp({"guards": [{"kpi": "latency"}, {"kpi": "error_rate", "name": "errors"}]})
    assert (KPI_WARN, KPI_MAX) == (0.15, 0.30)
    assert plan.guards == (
        Guard(kind="relative", metric="latency", max=0.30, warn=0.15),
        Guard(kind="relative", metric="error_rate", max=0.30, warn=0.15, name="errors"),
    )


def test_the_kpi_shorthand_is_written_out_in_full_and_reads_back_the_same() -> None:
    document = parse_document(document_with({"guards": [{"kpi": "latency"}]}))
    dumped = dump_document(document)
    assert parse_document(dumped) == document
    ramp = dumped["flags"]["checkout"]["environments"]["production"]["ramp"]  # type: ignore[call-overload,index]
    assert ramp["guards"] == [{"kind": "relative", "metric": "latency", "max": 0.3, "warn": 0.15}]


@pytest.mark.parametrize(
    ("guard", "path", "words"),
    [
        ({"kpi": "latency", "max": 0.5}, "ramp.guards[0].max", "unknown field"),
        ({"kpi": "request"}, "ramp.guards[0].kpi", "every request is a `request`"),
        ({"kpi": 3}, "ramp.guards[0].kpi", "expected"),
        ({"metric": "lat ency", "max": 1}, "ramp.guards[0].metric", "<event>_rate"),
        ({"metric": "x" * 65, "max": 1}, "ramp.guards[0].metric", "at most 64"),
        ({"metric": "request_rate", "max": 0.1}, "ramp.guards[0].metric", "`request`"),
        ({"metric": "error_rate", "max": 2}, "ramp.guards[0].max", "a rate is at most 1"),
    ],
)
def test_a_guard_that_cannot_be_read_is_refused_with_its_path(
    guard: dict[str, Any], path: str, words: str
) -> None:
    problems = problems_of({"guards": [guard]})
    assert path in problems, problems
    assert words in problems[path]


def test_a_completed_ramp_is_watched_for_an_hour_unless_the_plan_says_otherwise() -> None:
    assert parse_ramp({}).watch_completed == 3600
    assert parse_ramp({"watch_completed": "2h"}).watch_completed == 7200
    assert parse_ramp({"watch_completed": 0}).watch_completed == 0
    assert "ramp.watch_completed" in problems_of({"watch_completed": "soon"})


def test_the_watch_period_is_written_only_when_it_differs_from_the_default() -> None:
    # SDKs from before the field parse the whole configuration they are served
    default = dump_document(parse_document(document_with({})))
    longer = dump_document(parse_document(document_with({"watch_completed": "3h"})))
    env = "flags", "checkout", "environments", "production", "ramp"

    def ramp_of(dumped: Any) -> dict[str, Any]:
        for key in env:
            dumped = dumped[key]
        return dict(dumped)

    assert "watch_completed" not in ramp_of(default)
    assert ramp_of(longer)["watch_completed"] == "3h"
    assert parse_document(longer).flags["checkout"].environments["production"].ramp == RampPlan(
        watch_completed=10800
    )


def test_a_plan_refuses_empty_guards_when_written() -> None:
    problems = ramp_write_problems(document_with({"guards": []}))
    assert [p.path for p in problems] == ["flags.checkout.environments.production.ramp.guards"]
    assert "at least one guard" in problems[0].message


def test_a_plan_refuses_zero_min_samples_when_written() -> None:
    problems = ramp_write_problems(document_with({"min_samples": 0}))
    assert [p.path for p in problems] == ["flags.checkout.environments.production.ramp.min_samples"]
    assert "at least 1" in problems[0].message


def test_a_stored_plan_from_before_the_rule_still_parses() -> None:
    # a rebuild, an export or an SDK must never fail on a plan an earlier version accepted
    plan = parse_ramp({"guards": [], "min_samples": 0})
    assert (plan.guards, plan.min_samples) == ((), 0)
    assert ramp_write_problems(document_with({"guards": [{"kpi": "latency"}]})) == []
