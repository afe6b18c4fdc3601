"""SDK counts reach the server and add up: evaluations per variant, events per ramp group;
counts survive a server that is away; no user data leaves the process; memory is bounded."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import graylane.metrics
from graylane import Client
from graylane_server.settings import Settings
from tests.sdk.conftest import ClientFactory, restart_in_process
from tests.sdk.support import (
    exposed,
    prometheus_value,
    put_flag,
    rollout_flag,
    unique,
    usage,
)
from tests.support.http import send_json
from tests.support.servers import LiveServer, wait_until

N = 1_500


def ramped(admin: httpx.Client, prefix: str = "ramped") -> str:
    """A boolean flag under a ramp, at the 50% stage; a fresh key (counts live in Redis)."""
    key = unique(prefix)
    put_flag(admin, key, rollout_flag(50, ramp=True))
    return key


def totals(admin: httpx.Client, key: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Evaluations per variant and events per `group/event` and variant, in the last hour.

    The window ends a bucket ahead of now, so the read never depends on the second within
    the current bucket (that is tested on its own below)."""
    now = time.time()
    body = usage(admin, key, since=now - 3600, until=now + 10)
    return body["evaluations"], body["events"]


def test_evaluations_and_events_add_up_to_what_the_app_did(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    key = ramped(admin)
    client = clients(server.url, sdk_key, flush_interval=0.05)
    client.wait_ready(10)

    # When the app evaluates N contexts and reports requests and errors for them
    evaluations: Counter[str] = Counter()
    events: Counter[tuple[str, str]] = Counter()  # (group/event, variant)

    def expect(unit: str, event: str) -> None:
        inside = exposed(key, unit, 50)
        group, variant = ("exposed", "on") if inside else ("unexposed", "off")
        events[(f"{group}/{event}", variant)] += 1

    for i in range(N):
        unit = f"user-{i}"
        context = {"targetingKey": unit}
        evaluations["on" if client.is_enabled(key, context) else "off"] += 1
        client.track("request", context)
        expect(unit, "request")
        if i % 7 == 0:
            client.track("error", context)
            expect(unit, "error")
    # observe(): a request, and an error when the block raises
    for i in range(N, N + 40):
        unit = f"user-{i}"
        with client.observe({"targetingKey": unit}):
            pass
        expect(unit, "request")
        with pytest.raises(ValueError, match="boom"), client.observe({"targetingKey": unit}):
            raise ValueError("boom")
        expect(unit, "request")
        expect(unit, "error")

    # ... and as a decorator
    @client.observe({"targetingKey": "decorated"})
    def handler(fail: bool) -> str:
        if fail:
            raise KeyError("missing")
        return "done"

    assert handler(False) == "done"
    with pytest.raises(KeyError):
        handler(True)
    expect("decorated", "request")
    expect("decorated", "request")
    expect("decorated", "error")

    # the split is the one contract 2 gives (counted independently above)
    assert evaluations["on"] == sum(exposed(key, f"user-{i}", 50) for i in range(N))
    want_events: dict[str, dict[str, int]] = {}
    for (name, variant), count in events.items():
        want_events.setdefault(name, {})[variant] = count
    want = (dict(evaluations), want_events)

    # Then the server's counts add up, exactly
    wait_until(lambda: totals(admin, key) == want, timeout=10, what=f"the counts {want}")
    assert client.flush() is True
    assert totals(admin, key) == want
    assert sum(totals(admin, key)[0].values()) == N
    assert set(want_events) == {
        "exposed/request",
        "exposed/error",
        "unexposed/request",
        "unexposed/error",
    }


def test_only_flags_under_a_ramp_count_events(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    key = ramped(admin)
    plain = unique("plain")
    put_flag(admin, plain, rollout_flag(50))
    client = clients(server.url, sdk_key, flush_interval=3600)
    client.wait_ready(10)
    for i in range(100):
        client.is_enabled(plain, {"targetingKey": f"u{i}"})
        client.track("request", {"targetingKey": f"u{i}"})

    assert client.flush() is True

    plain_evaluations, plain_events = totals(admin, plain)
    assert plain_events == {}
    assert sum(plain_evaluations.values()) == 100
    # the ramped flag counts every request, though the app never evaluated it
    inside = sum(exposed(key, f"u{i}", 50) for i in range(100))
    assert totals(admin, key) == (
        {},
        {"exposed/request": {"on": inside}, "unexposed/request": {"off": 100 - inside}},
    )


def test_counts_made_while_the_server_is_down_arrive_once_it_is_back(
    server: LiveServer,
    admin: httpx.Client,
    sdk_key: str,
    settings: Settings,
    clients: ClientFactory,
) -> None:
    key = ramped(admin)
    # no background flushes: the test decides when counts are sent (and no stream, which
    # would hold up the server's graceful stop)
    client = clients(
        server.url, sdk_key, flush_interval=3600, timeout=1, stream=False, poll_interval=3600
    )
    client.wait_ready(10)
    for i in range(300):
        client.is_enabled(key, {"targetingKey": f"before-{i}"})
    assert client.flush() is True

    server.stop()
    down_on = 0
    for i in range(700):
        down_on += client.is_enabled(key, {"targetingKey": f"during-{i}"})
        client.track("error", {"targetingKey": f"during-{i}"})
    assert client.flush() is False
    assert client.flush() is False  # still kept, still not sent

    again = restart_in_process(server, settings)
    try:
        assert client.flush() is True
        assert client.flush() is True  # nothing left to send twice
        evaluations, events = totals(admin, key)
    finally:
        again.stop()
    before_on = sum(exposed(key, f"before-{i}", 50) for i in range(300))
    assert evaluations == {"on": before_on + down_on, "off": 1000 - before_on - down_on}
    assert down_on == sum(exposed(key, f"during-{i}", 50) for i in range(700))
    assert events == {"exposed/error": {"on": down_on}, "unexposed/error": {"off": 700 - down_on}}


def test_concurrent_flushes_never_send_a_count_twice(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    # An app may call flush() (at shutdown, in a request hook) while the background
    # thread flushes too: each count must still arrive exactly once.
    key = ramped(admin)
    client = clients(server.url, sdk_key, flush_interval=3600)
    client.wait_ready(10)
    for i in range(500):
        client.is_enabled(key, {"targetingKey": f"u{i}"})
    start = threading.Barrier(8)
    results: list[bool] = []

    def flush() -> None:
        start.wait(5)
        results.append(client.flush())

    threads = [threading.Thread(target=flush) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert results == [True] * 8
    assert sum(totals(admin, key)[0].values()) == 500


def test_counts_are_readable_in_the_first_second_of_their_bucket(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    # The read covers the buckets that start in [since, until): a read at 12:00:00.5
    # (the default `until` is now) must include the bucket that began at 12:00:00.
    key = ramped(admin)
    client = clients(server.url, sdk_key, flush_interval=3600)
    client.wait_ready(10)
    for i in range(10):
        client.is_enabled(key, {"targetingKey": f"u{i}"})
    # stay clear of a bucket boundary while sending (a condition on the clock, no sleep)
    wait_until(lambda: 1 < time.time() % 10 < 8, timeout=10, what="the middle of a bucket")
    sent_at = time.time()
    assert client.flush() is True
    bucket = int(sent_at // 10) * 10
    assert time.time() < bucket + 10

    wide = usage(admin, key, since=bucket, until=bucket + 5)
    first_second = usage(admin, key, since=bucket, until=bucket + 0.5)

    assert sum(wide["evaluations"].values()) == 10
    assert sum(first_second["evaluations"].values()) == 10


# --- nothing identifying leaves the process --------------------------------------------

SECRETS = {
    "targetingKey": "alice-7f3c9e21",
    "email": "alice.liddell@wonderland.example",
    "plan": "enterprise-gold-secret",
    "ip": "203.0.113.77",
    "user_id": 918273645,
}


@contextmanager
def recording_server(upstream: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny HTTP server that proxies the SDK config from the real server and records
    every metrics body the SDK posts (answering 202)."""
    posted: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/api/v1/sdk/config":
                self.send_error(404)
                return
            real = httpx.get(
                f"{upstream}/api/v1/sdk/config",
                headers={"Authorization": self.headers["Authorization"]},
                timeout=5,
            )
            names = ("ETag", "X-Graylane-Version", "X-Graylane-Environment")
            headers = {name: real.headers[name] for name in names if name in real.headers}
            send_json(self, real.status_code, real.content, headers)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            posted.append(
                {
                    "path": self.path,
                    "authorization": self.headers["Authorization"],
                    "raw": raw.decode("utf-8"),
                }
            )
            send_json(self, 202, b'{"accepted": 1}')

        def log_message(self, *_: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}", posted
    finally:
        http.shutdown()
        http.server_close()
        thread.join(5)


def test_only_flag_variant_and_event_names_leave_the_process(
    server: LiveServer, admin: httpx.Client, sdk_key: str
) -> None:
    key = ramped(admin)
    staff = unique("staff")
    put_flag(
        admin,
        staff,
        {
            "variants": {"on": True, "off": False},
            "off_variant": "off",
            "environments": {
                "production": {
                    "enabled": True,
                    "rules": [
                        {
                            "name": "wonderland",
                            "when": [
                                {"attribute": "email", "op": "ends_with", "values": [".example"]}
                            ],
                            "serve": {"variant": "on"},
                        }
                    ],
                    "fallthrough": {"variant": "off"},
                }
            },
        },
    )
    with (
        recording_server(server.url) as (url, posted),
        Client(url, sdk_key, stream=False, poll_interval=3600, flush_interval=3600) as client,
    ):
        client.wait_ready(10)
        for _ in range(5):
            assert client.is_enabled(staff, SECRETS) is True
            client.is_enabled(key, SECRETS)
            client.evaluate(key, SECRETS)
            client.all_flags(SECRETS)
            client.track("request", SECRETS)
            client.track("checkout-error", SECRETS, value=3)
            with client.observe(SECRETS):
                pass
        in_memory = json.dumps(
            graylane.metrics.payload(client._recorder.pending(), version=1, window=(0.0, 1.0))
        )

        assert client.flush() is True

    assert len(posted) == 1
    assert posted[0]["path"] == "/api/v1/sdk/metrics"
    assert posted[0]["authorization"] == f"Bearer {sdk_key}"
    raw = posted[0]["raw"]
    for secret in [*map(str, SECRETS.values()), "alice", "wonderland.example", "203.0.113"]:
        assert secret not in raw, f"{secret!r} left the process"
        assert secret not in in_memory
    sent = json.loads(raw)
    assert set(sent) == {"config_version", "window", "evaluations", "events", "dropped"}
    # and the body is not empty: what it does carry are counts by name
    assert {(e["flag"], e["variant"]) for e in sent["evaluations"]} >= {(staff, "on")}
    assert sum(e["count"] for e in sent["evaluations"] if e["flag"] == key) == 15
    assert {e["event"] for e in sent["events"]} == {"request", "checkout-error"}
    # a value is one measurement, not a count
    valued = [e for e in sent["events"] if e["event"] == "checkout-error"]
    assert sum(e["count"] for e in valued) == 5
    assert sum(sum(e["sums"]) for e in valued) == 15
    assert sum(sum(e["squares"]) for e in valued) == 45
    plain = {"clusters", "count", "event", "flag", "group", "percentage", "variant"}
    assert {tuple(sorted(e)) for e in sent["events"]} == {
        tuple(sorted(plain)),
        tuple(sorted(plain | {"sums", "squares"})),
    }
    assert {e["percentage"] for e in sent["events"]} == {50}


def test_the_recorder_is_bounded_and_reports_what_it_dropped(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    key = ramped(admin)
    client = clients(server.url, sdk_key, flush_interval=3600)
    client.wait_ready(10)
    limit = graylane.metrics.MAX_KEYS_PER_THREAD
    extra = 37

    def record_many() -> None:  # a thread of its own: the limit is per thread
        for i in range(limit + extra):
            client.track(f"event-{i}")
        client.track("event-0")  # a key the full table already holds still counts

    worker = threading.Thread(target=record_many)
    worker.start()
    worker.join(60)

    def count(pending: graylane.metrics.Pending, event: str) -> int:
        return sum(pending.events[(key, "off", "unexposed", event, "50")][0])

    pending = client._recorder.pending()
    assert len(pending.events) == limit
    assert pending.dropped == extra
    assert count(pending, "event-0") == 2
    body = graylane.metrics.payload(pending, version=client.version, window=(0.0, 1.0))
    assert body["dropped"] == extra
    assert len(body["events"]) == limit

    # another thread has room of its own
    client.track("event-0")
    client.track("fresh-event")
    pending = client._recorder.pending()
    assert count(pending, "event-0") == 3
    assert count(pending, "fresh-event") == 1
    assert pending.dropped == extra

    assert client.flush() is True
    dropped = 'graylane_sdk_dropped_counts_total{environment="production"}'
    assert prometheus_value(server.url, dropped) == extra
    events = totals(admin, key)[1]
    assert len(events) == limit + 1
    assert events["unexposed/event-0"] == {"off": 3}
    assert events["unexposed/fresh-event"] == {"off": 1}
    assert f"unexposed/event-{limit + extra - 1}" not in events
