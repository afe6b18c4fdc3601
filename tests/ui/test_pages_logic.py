"""The pure parts behind the pages: impact of a change, the flag list's filters, chart
geometry, readable audit diffs, the sign-in limiter and form parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graylane.core.document import parse_ramp
from graylane.core.model import Guard
from graylane_server.errors import InvalidDocument
from graylane_server.models import FlagRow, RampRow
from graylane_server.ratelimit import MemoryLimiter
from graylane_server.ui import drafts, forms, impact
from graylane_server.ui.charts import Bin, Threshold, metric_chart, stage_chart
from graylane_server.ui.ratelimit import limiter_key
from graylane_server.ui.summaries import Filters, keep, line
from graylane_server.ui.templating import leaves, pct, rate

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def flag(percentage: float, *, enabled: bool = True) -> dict[str, Any]:
    return {
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": {
            "production": {
                "enabled": enabled,
                "fallthrough": {
                    "rollout": {"percentage": percentage, "variants": {"on": 100}},
                    "otherwise": "off",
                },
            }
        },
    }


def document(percentage: float, **kw: Any) -> dict[str, Any]:
    return {"flags": {"f": flag(percentage, **kw)}, "segments": {}}


def test_raising_a_rollout_changes_the_answer_of_about_that_share_of_the_sample() -> None:
    result = impact.compare(document(10), document(30), ["f"], ["production"])
    (row,) = result.rows
    assert row.total == impact.SAMPLE_SIZE
    assert 1700 < row.changed < 2300
    assert [(m.before, m.after) for m in row.moves] == [("off", "on")]
    assert result.sample == "10,000 synthetic targeting keys"


def test_impact_on_pasted_contexts_counts_only_those() -> None:
    contexts = [{"targetingKey": f"u{i}"} for i in range(20)] + [{"plan": "pro"}]
    result = impact.compare(document(100), document(0), ["f"], ["production"], contexts)
    # At 100% everyone is inside, even without a unit; at 0% nobody.
    assert result.rows[0].changed == 21
    assert result.sample == "21 pasted contexts"


def test_switching_a_flag_off_changes_everyone_who_had_it() -> None:
    result = impact.compare(document(50), document(50, enabled=False), ["f"], ["production"])
    assert 4500 < result.rows[0].changed < 5500


def row(definition: dict[str, Any], *, days_old: float) -> FlagRow:
    stamp = NOW - timedelta(days=days_old)
    return FlagRow(key="f", definition=definition, version=3, created_at=stamp, updated_at=stamp)


def test_a_flag_settled_at_0_or_100_percent_for_long_is_stale() -> None:
    month = timedelta(days=30)
    assert line(row(flag(100), days_old=40), "production", None, now=NOW, stale_after=month).stale
    assert line(row(flag(0), days_old=40), "production", None, now=NOW, stale_after=month).stale
    assert not line(
        row(flag(50), days_old=40), "production", None, now=NOW, stale_after=month
    ).stale
    assert not line(
        row(flag(100), days_old=3), "production", None, now=NOW, stale_after=month
    ).stale
    ramping = RampRow(flag="f", environment="production", status="running", stage=0)
    settled = flag(100)
    settled["environments"]["production"]["ramp"] = {"stages": [1, 100]}
    ramped = line(row(settled, days_old=40), "production", ramping, now=NOW, stale_after=month)
    assert ramped.ramping
    assert not ramped.stale


def test_the_flag_list_filters_by_text_tag_status_ramp_and_staleness() -> None:
    month = timedelta(days=30)
    definitions = {
        "checkout": dict(flag(10), description="New checkout", tags=["payments"]),
        "old-export": dict(flag(0, enabled=False), tags=["cleanup"]),
    }
    lines = [
        line(
            FlagRow(
                key=k, definition=d, version=1, created_at=NOW, updated_at=NOW - timedelta(days=90)
            ),
            "production",
            None,
            now=NOW,
            stale_after=month,
        )
        for k, d in definitions.items()
    ]
    assert [x.key for x in keep(lines, Filters(q="CHECKOUT"))] == ["checkout"]
    assert [x.key for x in keep(lines, Filters(tag="cleanup"))] == ["old-export"]
    assert [x.key for x in keep(lines, Filters(status="disabled"))] == ["old-export"]
    assert [x.key for x in keep(lines, Filters(status="enabled"))] == ["checkout"]
    assert [x.key for x in keep(lines, Filters(stale=True))] == ["old-export"]
    assert keep(lines, Filters(ramp=True)) == []


def test_the_stage_chart_steps_through_history_and_projects_the_rest_of_the_plan() -> None:
    start = 1_000_000.0
    chart = stage_chart(
        stages=[1, 10, 50, 100],
        history=[(start, 1), (start + 600, 10)],
        status="running",
        stage=1,
        stage_started_at=start + 600,
        min_stage_duration=600,
        now=start + 900,
    )
    assert [t.label for t in chart.y_ticks] == ["0%", "1%", "10%", "50%", "100%"]
    assert {line.css for line in chart.lines} == {"actual", "planned"}
    assert chart.current is not None
    assert chart.current.label == "10% · stage 2 of 4"
    assert [m.label for m in chart.markers] == ["50%", "100%"]
    # Stages are evenly spaced: 10% sits in the middle of 1% and 50%.
    ys = {t.label: t.at for t in chart.y_ticks}
    assert ys["10%"] - ys["50%"] == pytest.approx(ys["1%"] - ys["10%"])


def test_a_draft_ramp_charts_only_its_plan() -> None:
    chart = stage_chart(
        stages=[5, 100],
        history=[],
        status="draft",
        stage=-1,
        stage_started_at=None,
        min_stage_duration=600,
        now=1_000_000.0,
    )
    assert [line.css for line in chart.lines] == ["planned"]
    assert chart.current is None


def test_the_metric_chart_draws_both_groups_and_the_thresholds() -> None:
    bins = [
        Bin(0, exposed_requests=100, exposed_events=1, unexposed_requests=900, unexposed_events=3),
        Bin(60),
        Bin(
            120, exposed_requests=100, exposed_events=2, unexposed_requests=900, unexposed_events=4
        ),
    ]
    chart = metric_chart(
        bins, [Threshold(0.05, "limit 5%", "limit")], since=0, until=180, bin_seconds=60
    )
    assert [line.css for line in chart.lines] == ["unexposed", "exposed"]
    exposed = next(line for line in chart.lines if line.css == "exposed").path
    assert exposed.count("M") == 2  # a gap where no counts came in
    assert [t.css for t in chart.thresholds] == ["limit"]
    assert chart.empty is None
    assert metric_chart([Bin(0)], [], since=0, until=60, bin_seconds=60).empty


def test_audit_changes_spell_out_created_objects_leaf_by_leaf() -> None:
    changes = [
        {"path": "environments", "after": {"production": {"enabled": True, "rules": []}}},
        {"path": "description", "before": "a", "after": "b"},
    ]
    assert leaves(changes) == [
        {"path": "environments.production.enabled", "after": True},
        {"path": "environments.production.rules", "after": []},
        {"path": "description", "before": "a", "after": "b"},
    ]


def test_percentages_and_rates_read_as_people_write_them() -> None:
    assert pct(10) == "10%"
    assert pct(0.5) == "0.5%"
    assert pct(33.333) == "33.333%"
    assert rate(0.0012) == "0.12%"
    assert rate(None) == "n/a"


def test_the_memory_limiter_counts_failures_per_username_and_address() -> None:
    limiter = MemoryLimiter(max_events=3, window=300)
    key = limiter_key(" Ana ", "10.0.0.1")
    assert key == limiter_key("ana", "10.0.0.1")
    for _ in range(3):
        assert limiter.retry_after(key) == 0
        limiter.record(key)
    assert 0 < limiter.retry_after(key) <= 300
    assert limiter.retry_after(limiter_key("ana", "10.0.0.2")) == 0
    limiter.reset(key)
    assert limiter.retry_after(key) == 0


def test_editor_text_may_be_json_or_yaml_and_bad_text_says_where() -> None:
    assert forms.document('{"a": 1}') == {"a": 1}
    assert forms.document("a: 1\nb: [x]") == {"a": 1, "b": ["x"]}
    with pytest.raises(InvalidDocument) as caught:
        forms.document('{"a": 1,,}')
    assert caught.value.problems[0].path.startswith("line 1, column")
    with pytest.raises(InvalidDocument):
        forms.document("[1, 2]")


def test_editor_yaml_is_yaml_1_2_so_country_codes_stay_strings() -> None:
    typed = "when:\n  - {attribute: country, op: in, values: [NO, SE, DK, yes, on, off]}"
    assert forms.document(typed)["when"][0]["values"] == ["NO", "SE", "DK", "yes", "on", "off"]
    assert forms.document("a: true\nb: 2024-01-01") == {"a": True, "b": "2024-01-01"}


def test_editor_yaml_whose_aliases_expand_beyond_the_limit_is_refused() -> None:
    # 364 bytes that would expand to 10**9 strings.
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{', '.join(['*' + previous] * 10)}]")
    bomb = "\n".join(lines)
    with pytest.raises(InvalidDocument) as caught:
        forms.document(bomb)
    assert "alias" in " ".join(p.message for p in caught.value.problems).lower()


def test_next_pages_stay_inside_the_ui() -> None:
    assert forms.local_target("/ui/flags/x?env=staging") == "/ui/flags/x?env=staging"
    assert forms.local_target("https://evil.example/ui/") == "/ui/"
    assert forms.local_target("//evil.example") == "/ui/"
    assert forms.local_target("/ui//evil.example") == "/ui/"
    assert forms.local_target(None) == "/ui/"


def test_percentages_typed_in_forms_are_checked() -> None:
    assert forms.percentage("10") == 10
    assert forms.percentage("2.5%") == 2.5
    assert forms.stages("1, 10 50;100") == [1, 10, 50, 100]
    for bad in ("-1", "101", "abc", "1.23456"):
        with pytest.raises(forms.FormError):
            forms.percentage(bad)


RECOMMENDED = [
    {"kind": "relative", "metric": "error_rate", "max": 0.5},
    {"metric": "error_rate", "max": 0.2},
]


def plan_form(**fields: str) -> dict[str, str]:
    return {"stages": "1, 10, 50, 100", "auto_advance": "on", **fields}


def test_the_plan_form_shows_the_recommended_pair_as_a_multiple_and_a_cap() -> None:
    # a new plan, and one stored with the default guards, show the defaults
    assert drafts.guard_fields(None) == drafts.GuardFields(editable=True, relative="1.5", cap="20")
    assert drafts.guard_fields({"stages": [1, 100], "guards": RECOMMENDED}) == drafts.GuardFields(
        editable=True, relative="1.5", cap="20"
    )
    # the pair with other levels, in either order
    shown = drafts.guard_fields(
        {
            "guards": [
                {"metric": "error_rate", "max": 0.05},
                {"kind": "relative", "metric": "error_rate", "max": 0.3},
            ]
        }
    )
    assert shown == drafts.GuardFields(editable=True, relative="1.3", cap="5")


@pytest.mark.parametrize(
    "guards",
    [
        pytest.param([{"metric": "error_rate", "max": 0.01}], id="one-absolute-limit"),
        pytest.param([*RECOMMENDED, {"kpi": "latency"}], id="pair-and-a-kpi"),
        pytest.param([RECOMMENDED[0], RECOMMENDED[0]], id="two-relative"),
        pytest.param(
            [{**RECOMMENDED[0], "warn": 0.25}, RECOMMENDED[1]], id="pair-with-a-warn-level"
        ),
        pytest.param(
            [{"kind": "relative", "metric": "latency", "max": 0.5}, RECOMMENDED[1]],
            id="relative-latency",
        ),
    ],
)
def test_other_guards_are_kept_as_written_whatever_the_form_says(
    guards: list[dict[str, Any]],
) -> None:
    assert drafts.guard_fields({"guards": guards}) == drafts.GuardFields(editable=False)
    plan = drafts.ramp_plan(plan_form(relative_max="2", error_rate_cap="10"), {"guards": guards})
    assert plan["guards"] == guards


def test_the_plan_form_writes_the_pair_a_person_typed() -> None:
    plan = drafts.ramp_plan(plan_form(relative_max="2", error_rate_cap="10%"), None)
    assert plan["guards"] == [
        {"kind": "relative", "metric": "error_rate", "max": 1.0},
        {"metric": "error_rate", "max": 0.1},
    ]
    assert parse_ramp(plan).guards == (
        Guard(kind="relative", metric="error_rate", max=1.0),
        Guard(kind="absolute", metric="error_rate", max=0.1),
    )
    # "1.3x" reads as 1.3 times: 30% more errors than unexposed units
    assert drafts.ramp_plan(plan_form(relative_max="1.3x"), None)["guards"][0]["max"] == 0.3
    # fields left empty keep the plan's levels; a plan without guards gets the defaults
    current = {"stages": [1, 100], "guards": [RECOMMENDED[0], {**RECOMMENDED[1], "max": 0.05}]}
    kept = drafts.ramp_plan(plan_form(relative_max="", error_rate_cap=""), current)
    assert kept["guards"] == current["guards"]
    assert drafts.ramp_plan(plan_form(), {"stages": [1, 100]})["guards"] == RECOMMENDED


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("relative_max", "1", "above 1"),
        ("relative_max", "0.5", "above 1"),
        ("relative_max", "50", "at most 10"),
        ("relative_max", "lots", "enter a number"),
        ("relative_max", "nan", "enter a number"),
        ("relative_max", "1.23456", "three decimals"),
        ("error_rate_cap", "0", "above 0"),
        ("error_rate_cap", "150", "at most 100"),
        ("error_rate_cap", "-5", "above 0"),
        ("error_rate_cap", "Infinity", "enter a number"),
    ],
)
def test_guard_levels_out_of_range_are_refused_naming_the_field(
    field: str, value: str, words: str
) -> None:
    with pytest.raises(forms.FormError) as caught:
        drafts.ramp_plan(plan_form(**{field: value}), None)
    assert caught.value.field == field
    label = {"relative_max": "Error rate vs unexposed", "error_rate_cap": "Error rate cap"}[field]
    assert caught.value.message.startswith(f"{label}: ")
    assert words in caught.value.message
