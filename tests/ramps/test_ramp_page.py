"""The admin UI's ramp page shows what the ramp API shows: per guard, the interval of the
harm against its limit and how long the current traffic needs, and that a paused ramp is
still watched."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.ramps.conftest import (
    act_ok,
    create_ramped_flag,
    parse_time,
    post_counts,
    split_traffic,
    unique_key,
)
from tests.server.conftest import TokenFactory
from tests.support.servers import LiveServer
from tests.ui.conftest import PASSWORD, sign_in

ClientFactory = Callable[[str], httpx.Client]


@pytest.fixture
def viewer(server: LiveServer, admin: httpx.Client) -> Iterator[httpx.Client]:
    name = unique_key("viewer")
    created = admin.post(
        "/api/v1/users", json={"username": name, "password": PASSWORD, "role": "viewer"}
    )
    assert created.status_code == 201, created.text
    with httpx.Client(base_url=server.url, timeout=15) as client:
        assert sign_in(client, name).status_code == 303
        yield client


def test_the_ramp_page_shows_each_guards_interval_and_that_a_paused_ramp_is_watched(
    admin: httpx.Client,
    viewer: httpx.Client,
    make_token: TokenFactory,
    client_for: ClientFactory,
) -> None:
    key = create_ramped_flag(
        admin, guards=[{"kind": "relative", "metric": "error_rate", "max": 0.5}]
    )
    started = act_ok(admin, key, "start")
    sdk = client_for(make_token(sdk="production"))
    post_counts(
        sdk, split_traffic(key, 1, 20_000, errors=0.01), parse_time(started["stage_started_at"])
    )
    page = viewer.get(f"/ui/flags/{key}/environments/production/ramp")
    assert page.status_code == 200, page.text
    assert "Interval of the harm: exposed vs unexposed:" in page.text
    assert "limit +50%" in page.text
    assert "more at the current traffic to show it below the limit" in page.text
    assert "exposed 2 error / 200 requests" in page.text  # the chart's window totals

    act_ok(admin, key, "pause", reason="looks odd")
    paused = viewer.get(f"/ui/api/flags/{key}/environments/production/ramp")
    assert paused.status_code == 200, paused.text
    assert "its guards keep watching: a breach still rolls it back" in paused.text
