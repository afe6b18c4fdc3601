"""The window of `GET .../metrics` (`since`, `until`): out-of-range values are refused
with their path, and any window inside the limits is answered."""

from __future__ import annotations

import httpx
import pytest

from tests.server.documents import boolean_flag

METRICS = "/api/v1/flags/f/environments/production/metrics"


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", ["1e306", "1e20", "inf", "nan", "-1"])
def test_a_window_bound_out_of_range_is_refused_naming_it(
    admin: httpx.Client, name: str, value: str
) -> None:
    admin.put("/api/v1/flags/f", json=boolean_flag())
    refused = admin.get(METRICS, params={name: value})
    assert refused.status_code == 422, refused.text
    assert [p["path"] for p in refused.json()["error"]["problems"]] == [f"query.{name}"]


@pytest.mark.parametrize(
    "window",
    [{"since": "0"}, {"since": "9999999999"}, {"since": "5000", "until": "10"}, {"until": "0"}],
)
def test_any_window_within_the_limits_is_answered(
    admin: httpx.Client, window: dict[str, str]
) -> None:
    admin.put("/api/v1/flags/f", json=boolean_flag())
    answered = admin.get(METRICS, params=window)
    assert answered.status_code == 200, answered.text
    assert answered.json()["since"] <= answered.json()["until"]
