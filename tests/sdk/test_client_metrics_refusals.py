"""Counts keep reaching the server whatever the app or the server does wrong: `track`
drops an event name or value the server would refuse (counted, logged once), a report
the server refuses for what it holds is dropped rather than sent forever, and no failure
stops the flush thread."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from graylane import Client
from graylane.transport import Transport
from tests.sdk.conftest import ClientFactory
from tests.sdk.scripted import Answer, ScriptedServer, config_answer
from tests.sdk.support import put_flag, rollout_flag, sdk_token, unique, usage
from tests.support.servers import LiveServer, wait_until

LogCapture = pytest.LogCaptureFixture
FLAG = "ramped"
CONTEXT = {"targetingKey": "user-1"}

BAD_NAMES = ["\x00", "a\x00b", "\ud800", "req\ud800est", "", "x" * 65, "é" * 65, 7, None]
BAD_VALUES = [True, math.nan, math.inf, -math.inf, 1e16, -(10**16), 10**400, "3", [1]]


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer(config_answer({"flags": {FLAG: rollout_flag(50, ramp=True)}}, 1)) as s:
        yield s


def events_posted(server: ScriptedServer) -> list[list[str]]:
    """The event names of each metrics report the server received, in order."""
    return [[e["event"] for e in json.loads(body)["events"]] for body in server.posted]


def test_event_names_and_values_the_server_refuses_are_dropped_and_counts_still_arrive(
    server: LiveServer, admin: httpx.Client, clients: ClientFactory, caplog: LogCapture
) -> None:
    key = unique("refusals")
    put_flag(admin, key, rollout_flag(50, ramp=True))
    client = clients(server.url, sdk_token(admin), flush_interval=3600)
    client.wait_ready(10)

    # When the app tracks events the server would refuse, twice each, among good ones
    for _ in range(2):
        for name in BAD_NAMES:
            client.track(name, CONTEXT)  # type: ignore[arg-type]
        for value in BAD_VALUES:
            client.track("latency", CONTEXT, value)  # type: ignore[arg-type]
    for _ in range(5):
        client.track("request", CONTEXT)
    client.track("latency", CONTEXT, 1e15)
    client.track("latency", CONTEXT, -7)

    # Then the report goes through, with the good events only
    assert client.flush() is True
    assert client.metrics_errors == {"retried": 0, "refused": 0, "unexpected": 0}
    assert client.dropped_events == {"name": 2 * len(BAD_NAMES), "value": 2 * len(BAD_VALUES)}
    now = time.time()
    events = usage(admin, key, since=now - 3600, until=now + 10)["events"]
    assert {event: sum(by_variant.values()) for event, by_variant in events.items()} in (
        {"exposed/request": 5, "exposed/latency": 2},
        {"unexposed/request": 5, "unexposed/latency": 2},
    )
    # And each refused name is said once, in a line any handler can write
    said = [
        r.getMessage()
        for r in caplog.records
        if r.name == "graylane" and r.levelno == logging.WARNING and "event name" in r.getMessage()
    ]
    assert len(said) == len(BAD_NAMES), said
    assert all(line.encode("utf-8") and len(line) < 300 for line in said)


@pytest.mark.parametrize("status", [400, 413, 422])
def test_a_report_the_server_refuses_for_what_it_holds_is_dropped_not_sent_again(
    scripted: ScriptedServer,
    clients: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    refusal = {"error": {"code": "invalid", "message": "events[0].event is refused"}}
    scripted.post_answers.append(Answer(status, {}, json.dumps(refusal).encode()))
    client = clients(scripted.url, "gls_test", flush_interval=3600)
    client.wait_ready(10)

    client.track("request", CONTEXT)
    assert client.flush() is False  # refused
    client.track("error", CONTEXT)
    assert client.flush() is True

    # The refused report is not in the next one: later counts are no longer held back
    assert events_posted(scripted) == [["request"], ["error"]]
    assert client.metrics_errors == {"retried": 0, "refused": 1, "unexpected": 0}
    assert any(
        "events[0].event is refused" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )


@pytest.mark.parametrize("status", [401, 403, 408, 429, 500, 503])
def test_a_report_that_failed_for_another_reason_is_sent_again(
    scripted: ScriptedServer, clients: ClientFactory, status: int
) -> None:
    scripted.post_answers.append(Answer(status, {}, b"{}"))
    client = clients(scripted.url, "gls_test", flush_interval=3600)
    client.wait_ready(10)

    client.track("request", CONTEXT)
    assert client.flush() is False
    client.track("error", CONTEXT)
    assert client.flush() is True

    assert [sorted(names) for names in events_posted(scripted)] == [
        ["request"],
        ["error", "request"],
    ]
    assert client.metrics_errors == {"retried": 1, "refused": 0, "unexpected": 0}


def test_an_unexpected_failure_while_sending_never_stops_the_flush_thread(
    scripted: ScriptedServer,
    clients: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No answer from a server makes the transport raise outside its own errors, so the
    # transport itself is made to, once.
    real = Transport.post_metrics
    calls: list[int] = []

    def post_metrics(self: Transport, payload: dict[str, Any]) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a failure nobody planned for")
        real(self, payload)

    monkeypatch.setattr(Transport, "post_metrics", post_metrics)
    client = clients(scripted.url, "gls_test", flush_interval=0.05)
    client.wait_ready(10)

    # When the background flush fails unexpectedly
    client.track("request", CONTEXT)
    wait_until(lambda: client.metrics_errors["unexpected"] == 1, what="the failed flush")

    # Then the thread goes on: the next counts are posted by it
    client.track("error", CONTEXT)
    wait_until(lambda: events_posted(scripted), what="a report after the failure")
    assert events_posted(scripted)[0] == ["error"]
    assert any("a failure nobody planned for" in r.getMessage() for r in caplog.records)


def test_flush_never_raises_into_the_app(
    scripted: ScriptedServer, clients: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client: Client = clients(scripted.url, "gls_test", flush_interval=3600)
    client.wait_ready(10)

    def broken(self: Transport, payload: dict[str, Any]) -> None:
        raise RecursionError("deep")

    monkeypatch.setattr(Transport, "post_metrics", broken)
    client.track("request", CONTEXT)

    assert client.flush() is False
    assert client.metrics_errors["unexpected"] == 1
