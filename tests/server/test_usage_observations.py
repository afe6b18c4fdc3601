"""What guards read after SDK reports reach a live server (Redis and the embedded SQLite
store alike): counts filed by the SDK's window and the rollout percentage that produced
them, split by unit cluster, with sums and squares of measured values; reports from older
SDKs charted but not read by guards."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from graylane.core.limits import MAX_EVENT_NAME, event_name_problem
from graylane_server.ramps import signals
from graylane_server.ramps.observations import CLUSTERS, Observations
from graylane_server.settings import Settings
from graylane_server.usage.store import BUCKET_SECONDS, RedisUsageStore, SqlUsageStore, bucket_of
from tests.server.conftest import ADMIN_TOKEN
from tests.support.servers import LiveServer

PATH = "/api/v1/sdk/metrics"
ENV = "production"


class Store:
    """A live server, its SDK token, and what its guards would read."""

    def __init__(self, server: LiveServer, token: str) -> None:
        self.server = server
        self.token = token

    def post(self, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{self.server.url}{PATH}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )

    def observations(self, flag: str, since: float, until: float) -> Observations:
        return signals.observations(self.server.runtime.usage, ENV, flag, since, until)

    def usage(self, flag: str, since: float, until: float) -> dict[str, Any]:
        response = httpx.get(
            f"{self.server.url}/api/v1/flags/{flag}/environments/{ENV}/metrics",
            params={"since": since, "until": until},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def mint(url: str) -> str:
    response = httpx.post(
        f"{url}/api/v1/tokens",
        json={"kind": "sdk", "environment": ENV},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture(params=["redis", "embedded"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "redis":
        settings: Settings = request.getfixturevalue("settings")
    else:
        settings = Settings(
            data_dir=tmp_path / "data", bootstrap_admin_token=SecretStr(ADMIN_TOKEN)
        )
    live = LiveServer(settings).start()
    try:
        yield Store(live, mint(live.url))
    finally:
        live.stop()


def unique() -> str:
    return f"observed-{uuid.uuid4().hex[:10]}"


def event(
    flag: str,
    group: str,
    name: str,
    percentage: float | None,
    clusters: dict[int, int],
    values: dict[int, list[float]] | None = None,
) -> dict[str, Any]:
    """An event entry as the SDK sends it; `values`: cluster -> the values recorded there
    (every other count in that cluster a plain event, value 1)."""
    body: dict[str, Any] = {
        "flag": flag,
        "variant": "on" if group == "exposed" else "off",
        "group": group,
        "event": name,
        "count": sum(clusters.values()),
    }
    if percentage is not None:
        body["percentage"] = percentage
        body["clusters"] = [clusters.get(c, 0) for c in range(CLUSTERS)]
    if values is not None:
        sums, squares = [0.0] * CLUSTERS, [0.0] * CLUSTERS
        for c in range(CLUSTERS):
            recorded = values.get(c, [])
            plain = clusters.get(c, 0) - len(recorded)
            sums[c] = plain + sum(recorded)
            squares[c] = plain + sum(v * v for v in recorded)
        body["sums"], body["squares"] = sums, squares
    return body


def report(start: float, end: float, *events: dict[str, Any]) -> dict[str, Any]:
    return {
        "config_version": 3,
        "window": {"start": start, "end": end},
        "evaluations": [],
        "events": list(events),
        "dropped": 0,
    }


def a_bucket_ago(buckets: int) -> float:
    """The middle of a bucket `buckets` buckets before the current one."""
    return bucket_of(time.time()) - buckets * BUCKET_SECONDS + BUCKET_SECONDS / 2


def test_a_late_report_is_filed_by_its_window_not_by_its_arrival(store: Store) -> None:
    flag = unique()
    end = a_bucket_ago(30)  # five minutes ago
    late = report(end - 10, end, event(flag, "exposed", "request", 50, {3: 7, 9: 2}))
    assert store.post(late).status_code == 202

    now = time.time()
    seen = store.observations(flag, now - 600, now + BUCKET_SECONDS)
    assert [(s.start, s.percentage) for s in seen.slices] == [(bucket_of(end), Decimal(50))]
    requests = seen.slices[0].exposed.get("request")
    assert requests.n == 9
    assert (requests.count[3], requests.count[9]) == (7, 2)
    assert seen.reported_until == pytest.approx(end)
    # the charts file it there too
    chart = store.usage(flag, now - 600, now + BUCKET_SECONDS)["series"]["exposed/request"]
    assert chart == [{"at": bucket_of(end), "count": 9}]


def test_reported_until_is_the_end_of_the_newest_window_and_a_late_report_keeps_it(
    store: Store,
) -> None:
    flag = unique()
    newest, older = a_bucket_ago(2), a_bucket_ago(20)
    for end, count in ((newest, 1), (older, 4)):
        body = report(end - 10, end, event(flag, "unexposed", "request", 10, {1: count}))
        assert store.post(body).status_code == 202
    now = time.time()
    seen = store.observations(flag, now - 600, now + BUCKET_SECONDS)
    assert seen.reported_until == pytest.approx(newest)
    assert sum(s.unexposed.requests for s in seen.slices) == 5


def test_a_window_that_began_before_a_stage_change_files_each_count_under_its_percentage(
    store: Store,
) -> None:
    # Given a stage change from 10% to 50% inside one SDK window
    flag = unique()
    change = a_bucket_ago(3)
    end = change + 4
    mixed = report(
        change - 8,
        end,
        event(flag, "exposed", "request", 10, {1: 10}),
        event(flag, "unexposed", "request", 10, {2: 90}),
        event(flag, "exposed", "request", 50, {1: 40}),
        event(flag, "exposed", "error", 50, {1: 4}),
        event(flag, "unexposed", "request", 50, {2: 60}),
    )
    assert store.post(mixed).status_code == 202

    # Then the new stage, read from its start, holds only what 50% produced
    seen = store.observations(flag, change, time.time() + BUCKET_SECONDS)
    at_50 = list(seen.at(Decimal(50), since=bucket_of(change)))
    assert [(s.exposed.requests, s.unexposed.requests) for s in at_50] == [(40, 60)]
    assert at_50[0].exposed.get("error").n == 4
    # and the 10% counts stay with the stage that produced them
    at_10 = list(seen.at(Decimal("10.000")))
    assert [(s.exposed.requests, s.unexposed.requests) for s in at_10] == [(10, 90)]


def test_measured_values_read_back_as_count_sum_and_squares_per_cluster(store: Store) -> None:
    flag = unique()
    end = a_bucket_ago(1)
    # cluster 5: values 0.25 and 3.5; cluster 6: one plain event and the value 2
    latency = event(flag, "exposed", "latency", 1.5, {5: 2, 6: 2}, {5: [0.25, 3.5], 6: [2.0]})
    plain = event(flag, "exposed", "request", 1.5, {5: 3})
    for _ in range(2):
        assert store.post(report(end - 10, end, latency, plain)).status_code == 202

    now = time.time()
    (only,) = store.observations(flag, now - 120, now + BUCKET_SECONDS).slices
    assert only.percentage == Decimal("1.5")
    series = only.exposed.get("latency")
    assert (series.count[5], series.count[6]) == (4, 4)
    assert (series.total[5], series.total[6]) == (pytest.approx(7.5), pytest.approx(6.0))
    assert series.squares[5] == pytest.approx(2 * (0.0625 + 12.25))
    assert series.squares[6] == pytest.approx(2 * (1 + 4.0))
    # a plain event records the value 1: its sum and squares are its count
    requests = only.exposed.get("request")
    assert requests.count[5] == requests.total[5] == requests.squares[5] == 6


def test_reports_from_older_sdks_are_charted_but_not_read_by_guards(store: Store) -> None:
    flag = unique()
    end = a_bucket_ago(1)
    legacy = report(
        end - 10,
        end,
        event(flag, "exposed", "request", None, {0: 30}),
        event(flag, "unexposed", "request", None, {0: 70}),
        event(flag, "unexposed", "error", None, {0: 2}),
    )
    assert store.post(legacy).status_code == 202
    now = time.time()
    seen = store.observations(flag, now - 120, now + BUCKET_SECONDS)
    assert seen == Observations(slices=(), reported_until=None, unattributed=100)
    usage = store.usage(flag, now - 120, now + BUCKET_SECONDS)
    assert usage["events"]["exposed/request"] == {"on": 30}
    assert usage["unattributed"] == {
        "exposed/request": 30,
        "unexposed/request": 70,
        "unexposed/error": 2,
    }


def test_a_window_ending_in_the_future_is_filed_at_arrival(store: Store) -> None:
    flag = unique()
    ahead = time.time() + 3600  # an SDK whose clock runs an hour ahead
    before = time.time()
    body = report(ahead - 10, ahead, event(flag, "exposed", "request", 5, {0: 1}))
    assert store.post(body).status_code == 202
    after = time.time()
    seen = store.observations(flag, before - 60, after + 2 * BUCKET_SECONDS)
    assert seen.reported_until is not None
    assert before <= seen.reported_until <= after


def test_a_report_refuses_clusters_that_do_not_add_up_or_lack_a_percentage(store: Store) -> None:
    flag = unique()
    good = event(flag, "exposed", "request", 50, {0: 2})
    cases = [
        ({**good, "count": 3}, "events[0]", "the clusters add up to 2, not to count 3"),
        ({**good, "clusters": [1]}, "events[0].clusters", "List should have at least 32 items"),
        ({**good, "percentage": None}, "events[0]", "percentage and clusters come together"),
        ({**good, "percentage": 100.5}, "events[0].percentage", "less than or equal to 100"),
        ({**good, "sums": [1.0] * CLUSTERS}, "events[0]", "sums and squares come together"),
    ]
    for body, path, message in cases:
        response = store.post(report(time.time() - 10, time.time(), body))
        assert response.status_code == 422, response.text
        problems = [(p["path"], p["message"]) for p in response.json()["error"]["problems"]]
        assert len(problems) == 1
        assert problems[0][0] == path
        assert message in problems[0][1]


def test_the_sql_store_on_postgresql_adds_vectors_and_keeps_the_newest_window(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    sessions = sessionmaker(engine)
    store = SqlUsageStore(sessions, sessions)
    flag, at = unique(), a_bucket_ago(1)
    counts, sums = "o|50|exposed|latency", "s|50|exposed|latency"
    vectors = {flag: {counts: [2] + [0] * (CLUSTERS - 2) + [5], sums: [0.5] * CLUSTERS}}
    try:
        for until in (at, at - 3):
            asyncio.run(store.record(ENV, at, {flag: {"v|on": 1}}, vectors, {flag: until}))
        fields = store.read_all(ENV, flag, at - 10, at + 10)
        assert fields == {
            bucket_of(at): {
                "v|on": 2,
                counts: [4.0] + [0.0] * (CLUSTERS - 2) + [10.0],
                sums: [1.0] * CLUSTERS,
                "u": at,
            }
        }
        assert store.read(ENV, flag, at - 10, at + 10) == {bucket_of(at): {"v|on": 2}}
    finally:
        engine.dispose()


def test_the_redis_store_adds_vectors_exactly_in_one_script_call(redis_url: str) -> None:
    store = RedisUsageStore(redis_url)
    flag, at = unique(), a_bucket_ago(1)
    big = 2**52 + 1  # exact in a double, as every per-cluster number must be
    name = "o|0.1|unexposed|request"
    for _ in range(2):
        asyncio.run(store.record(ENV, at, {}, {flag: {name: [big, 1] + [0] * (CLUSTERS - 2)}}))
    asyncio.run(store.record(ENV, at, {}, {flag: {"s|0.1|unexposed|request": [0.1] * CLUSTERS}}))
    asyncio.run(store.record(ENV, at, {}, {flag: {"s|0.1|unexposed|request": [0.2] * CLUSTERS}}))
    fields = store.read_all(ENV, flag, at - 10, at + 10)[bucket_of(at)]
    assert fields[name][:3] == [2 * big, 2, 0]
    assert fields["s|0.1|unexposed|request"] == [0.1 + 0.2] * CLUSTERS


@pytest.mark.parametrize(
    "name",
    ["request", "x" * MAX_EVENT_NAME, "é" * MAX_EVENT_NAME, "", "x" * 65, "\x00", "a\ud800"],
    ids=["plain", "longest", "longest-accented", "empty", "too-long", "nul", "surrogate"],
)
def test_the_server_takes_exactly_the_event_names_the_sdk_lets_through(
    store: Store, name: str
) -> None:
    body = report(time.time() - 10, time.time(), event(unique(), "exposed", name, 50, {0: 1}))
    response = httpx.post(
        f"{store.server.url}{PATH}",
        content=json.dumps(body),  # ASCII: a lone surrogate travels as \ud800
        headers={"Authorization": f"Bearer {store.token}", "Content-Type": "application/json"},
        timeout=10,
    )
    if event_name_problem(name) is None:
        assert response.status_code == 202, response.text
    else:
        assert response.status_code == 422, response.text
        paths = [p["path"] for p in response.json()["error"]["problems"]]
        assert paths == ["events[0].event"]
