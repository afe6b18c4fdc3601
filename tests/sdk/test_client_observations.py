"""What guards read after real SDK traffic: every event under the rollout percentage the
SDK served when it counted it (a window that spans a stage change included), in the
unit's cluster, filed by the SDK's window even when the report arrives late; measured
values as count, sum and sum of squares; memory bounded by keys, not by threads."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

import graylane.metrics
from graylane import Client
from graylane_server.ramps import signals
from graylane_server.ramps.observations import CLUSTERS, Observations
from graylane_server.usage.store import BUCKET_SECONDS, bucket_of
from tests.sdk.conftest import ClientFactory
from tests.sdk.support import PRODUCTION, bucket, exposed, put_flag, rollout_flag, unique
from tests.support.servers import LiveServer, wait_until

PERCENTAGES = (10, 50)


def cluster(key: str, unit: str) -> int:
    """The unit's cluster, from the contract written out (not from the SDK)."""
    return bucket(key + ":cluster", unit) % CLUSTERS


def read(server: LiveServer, key: str, since: float) -> Observations:
    return signals.observations(
        server.runtime.usage, PRODUCTION, key, since, time.time() + BUCKET_SECONDS
    )


def by_cluster(seen: Observations, percentage: int, group: str, event: str) -> list[int]:
    totals = [0] * CLUSTERS
    for piece in seen.at(Decimal(percentage)):
        for c, n in enumerate(getattr(piece, group).get(event).count):
            totals[c] += n
    return totals


Ramped = Callable[[str, dict[str, Any]], tuple[str, Client]]


@pytest.fixture
def ramped(server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory) -> Ramped:
    """`ramped(prefix, definition)`: a new flag stored as `definition`, and a ready client
    that flushes only when told to."""

    def make(prefix: str, definition: dict[str, Any]) -> tuple[str, Client]:
        key = unique(prefix)
        put_flag(admin, key, definition)
        client = clients(server.url, sdk_key, flush_interval=3600)
        client.wait_ready(10)
        return key, client

    return make


def serving(client: Any, key: str, percentage: int) -> bool:
    """True once the client serves the rollout at `percentage`."""
    rollout = client._state.ramped.get(key)
    return rollout is not None and rollout.threshold == percentage * 1000


def test_guards_read_each_event_under_the_percentage_served_and_the_units_cluster(
    server: LiveServer, admin: httpx.Client, ramped: Ramped
) -> None:
    # Given a flag under a ramp at 10%, and an SDK that flushes only when told to
    key, client = ramped("observed", rollout_flag(10, ramp=True))
    started = time.time()
    want: dict[tuple[int, str, str], list[int]] = {}

    def traffic(percentage: int, users: range) -> None:
        for i in users:
            unit = f"user-{i}"
            group = "exposed" if exposed(key, unit, percentage) else "unexposed"
            for event in ("request",) * (1 + i % 3) + ("error",) * (i % 7 == 0):
                client.track(event, {"targetingKey": unit})
                counts = want.setdefault((percentage, group, event), [0] * CLUSTERS)
                counts[cluster(key, unit)] += 1

    traffic(10, range(0, 600))
    assert client.flush() is True
    # When one window spans the change to 50%: it begins at 10% and ends at 50%
    traffic(10, range(600, 900))
    put_flag(admin, key, rollout_flag(50, ramp=True))
    wait_until(lambda: serving(client, key, 50), timeout=10, what="the client at 50%")
    changed = time.time()
    traffic(50, range(900, 1500))
    assert client.flush() is True
    flushed = time.time()

    # Then guards read every event under the percentage that produced it, per cluster
    seen = read(server, key, started)
    for (percentage, group, event), counts in want.items():
        assert by_cluster(seen, percentage, group, event) == counts, (percentage, group, event)
    assert {s.percentage for s in seen.slices} == {Decimal(10), Decimal(50)}
    # and the new stage, read from the bucket it began in, holds only what 50% produced
    stage = list(seen.at(Decimal(50), since=bucket_of(changed)))
    assert sum(s.exposed.requests + s.unexposed.requests for s in stage) == sum(
        1 + i % 3 for i in range(900, 1500)
    )
    assert seen.reported_until is not None
    assert changed <= seen.reported_until <= flushed
    assert seen.unattributed == 0


def test_a_report_that_arrives_late_is_read_in_the_window_the_sdk_counted_it(
    server: LiveServer, sdk_key: str, ramped: Ramped
) -> None:
    key, client = ramped("late", rollout_flag(50, ramp=True))
    for i in range(200):
        client.track("request", {"targetingKey": f"u{i}"})
    # The SDK's report, held back on its way to the server (a slow network, a proxy)
    wait_until(lambda: 1 < time.time() % BUCKET_SECONDS < 8, timeout=10, what="mid-bucket")
    pending = client._recorder.pending()
    counted = time.time()
    body = graylane.metrics.payload(pending, version=client.version, window=(counted - 5, counted))
    wait_until(
        lambda: bucket_of(time.time()) > bucket_of(counted),
        timeout=2 * BUCKET_SECONDS,
        what="the next bucket",
    )
    response = httpx.post(
        f"{server.url}/api/v1/sdk/metrics",
        json=body,
        headers={"Authorization": f"Bearer {sdk_key}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text

    seen = read(server, key, counted - 60)
    assert [s.start for s in seen.slices] == [bucket_of(counted)]
    assert seen.slices[0].exposed.requests + seen.slices[0].unexposed.requests == 200
    assert seen.reported_until == pytest.approx(counted)


def test_measured_values_reach_guards_as_count_sum_and_squares(
    server: LiveServer, ramped: Ramped
) -> None:
    key, client = ramped("latency", rollout_flag(100, ramp=True))  # everyone exposed
    sums: Counter[int] = Counter()
    squares: Counter[int] = Counter()
    counts: Counter[int] = Counter()
    for i in range(300):
        unit, value = f"u{i}", (i % 17) * 0.125
        client.track("latency", {"targetingKey": unit}, value)
        client.track("latency", {"targetingKey": unit})  # a plain event records the value 1
        c = cluster(key, unit)
        counts[c] += 2
        sums[c] += value + 1
        squares[c] += value * value + 1
    client.track("latency", {"targetingKey": "u0"}, float("nan"))  # refused, not counted
    client.track("latency", {"targetingKey": "u0"}, True)  # type: ignore[arg-type]
    assert client.flush() is True

    (series,) = [s.exposed.get("latency") for s in read(server, key, time.time() - 60).slices]
    assert list(series.count) == [counts[c] for c in range(CLUSTERS)]
    assert list(series.total) == pytest.approx([sums[c] for c in range(CLUSTERS)])
    assert list(series.squares) == pytest.approx([squares[c] for c in range(CLUSTERS)])


def test_events_without_a_unit_are_spread_over_clusters_and_a_disabled_flag_counts_at_0(
    server: LiveServer, ramped: Ramped
) -> None:
    key, client = ramped("no-unit", rollout_flag(50, ramp=True, enabled=False))
    for _ in range(640):
        client.track("request", {})
    assert client.flush() is True

    seen = read(server, key, time.time() - 60)
    assert {s.percentage for s in seen.slices} == {Decimal(0)}
    spread = by_cluster(seen, 0, "unexposed", "request")
    assert sum(spread) == 640
    assert sum(1 for n in spread if n) > CLUSTERS // 2  # not one cluster for all of them


def test_memory_follows_keys_not_the_threads_that_came_and_went(
    server: LiveServer, ramped: Ramped
) -> None:
    key, client = ramped("threads", rollout_flag(50, ramp=True))
    for round_ in range(3):
        # an app that starts a thread per request
        for i in range(100):
            worker = threading.Thread(
                target=client.track, args=("request", {"targetingKey": f"{round_}-{i}"})
            )
            worker.start()
            worker.join(10)
        assert client.flush() is True
        assert len(client._recorder._threads) <= 2  # this thread and the flusher at most

    seen = read(server, key, time.time() - 60)
    assert sum(s.exposed.requests + s.unexposed.requests for s in seen.slices) == 300


def test_the_sdk_files_units_in_the_clusters_the_server_reads() -> None:
    assert graylane.metrics.CLUSTERS == CLUSTERS
    for i in range(200):
        assert graylane.metrics.cluster_of("checkout", f"user-{i}") == cluster(
            "checkout", f"user-{i}"
        )
    assert graylane.metrics.percentage_text(100) == "0.1"
    assert graylane.metrics.percentage_text(12_345) == "12.345"
    assert graylane.metrics.percentage_text(100_000) == "100"
