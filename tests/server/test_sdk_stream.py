"""`GET /api/v1/sdk/stream`: server-sent events in OFREP's format, one at once with the
current version and one for every new version of the token's environment, with comment
heartbeats while idle."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.server.conftest import TokenFactory
from tests.server.documents import document
from tests.support.servers import LiveServer, wait_until

ClientFactory = Callable[[str], httpx.Client]

STREAM = "/api/v1/sdk/stream"
CONFIG = "/api/v1/sdk/config"
IDENTITY = {"Accept-Encoding": "identity"}


class EventStream:
    """Reads a `text/event-stream` line by line, the way an EventSource parses it."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._items = self._parse(response.iter_lines())
        self.skipped: list[tuple[str, Any]] = []

    @staticmethod
    def _parse(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
        fields: dict[str, str] = {}
        for line in lines:
            if line == "":
                if fields:
                    yield "event", fields
                fields = {}
            elif line.startswith(":"):
                yield "comment", line[1:].strip()
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data" and "data" in fields:
                    fields["data"] += "\n" + value
                else:
                    fields[name] = value

    def _next(self, kind: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        for found, value in self._items:
            if time.monotonic() > deadline:
                break
            if found == kind:
                return value
            self.skipped.append((found, value))
        raise AssertionError(f"no {kind} within {timeout}s; got {self.skipped}")

    def next_event(self, timeout: float = 5.0) -> dict[str, str]:
        """The next event's fields, skipping heartbeats."""
        event: dict[str, str] = self._next("event", timeout)
        return event

    def next_data(self, timeout: float = 5.0) -> dict[str, Any]:
        """The JSON payload of the next event."""
        data: dict[str, Any] = json.loads(self.next_event(timeout)["data"])
        return data

    def next_comment(self, timeout: float = 5.0) -> str:
        comment: str = self._next("comment", timeout)
        return comment


@contextmanager
def open_stream(url: str, token: str) -> Iterator[EventStream]:
    # Heartbeats come every second, so a read that waits five has lost the stream.
    timeout = httpx.Timeout(10, read=5)
    with (
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        ) as client,
        client.stream("GET", STREAM) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        yield EventStream(response)


def current_config(sdk: httpx.Client) -> tuple[str, int]:
    response = sdk.get(CONFIG, headers=IDENTITY)
    assert response.status_code == 200
    return response.headers["etag"], int(response.headers["x-graylane-version"])


def put_environment(admin: httpx.Client, flag: str, environment: str, config: object) -> None:
    version = admin.get(f"/api/v1/flags/{flag}").headers["etag"]
    response = admin.put(
        f"/api/v1/flags/{flag}/environments/{environment}",
        json=config,
        headers={"If-Match": version},
    )
    assert response.status_code == 200, response.text


def set_rollout(admin: httpx.Client, percentage: float) -> None:
    config = admin.get("/api/v1/flags/new-checkout/environments/production").json()
    config["fallthrough"]["rollout"]["percentage"] = percentage
    put_environment(admin, "new-checkout", "production", config)


def stream_gauge(server: LiveServer) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(r"^graylane_sse_streams (\S+)$", text, re.MULTILINE)
    assert match, text
    return float(match.group(1))


@pytest.fixture
def token(admin: httpx.Client, make_token: TokenFactory, server: LiveServer) -> str:
    """A production SDK token, once production serves the shared document."""
    token = make_token(sdk="production")
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as sdk:
        _, version = current_config(sdk)
        assert admin.put("/api/v1/state", json=document()).status_code == 200
        wait_until(lambda: current_config(sdk)[1] > version, what="the document to be served")
    return token


@pytest.fixture
def sdk(token: str, client_for: ClientFactory) -> httpx.Client:
    return client_for(token)


def test_the_first_event_comes_at_once_with_the_current_version(
    server: LiveServer, token: str, sdk: httpx.Client
) -> None:
    etag, version = current_config(sdk)

    with open_stream(server.url, token) as stream:
        event = stream.next_event(timeout=2)
        # before the first heartbeat, which comes after a second
        assert not stream.skipped

    assert event.get("event", "message") == "message"
    assert event["id"] == str(version)
    assert json.loads(event["data"]) == {
        "type": "refetchEvaluation",
        "etag": etag,
        "environment": "production",
        "version": version,
    }


def test_a_write_sends_an_event_with_the_new_version(
    server: LiveServer, token: str, sdk: httpx.Client, admin: httpx.Client
) -> None:
    with open_stream(server.url, token) as stream:
        first = stream.next_data()

        set_rollout(admin, 25)

        event = stream.next_data()
    assert event["type"] == "refetchEvaluation"
    assert event["environment"] == "production"
    assert event["version"] > first["version"]
    assert event["etag"] != first["etag"]
    # the event names what the config now serves
    assert current_config(sdk) == (event["etag"], event["version"])
    served = sdk.get(CONFIG).json()["flags"]["new-checkout"]["environments"]["production"]
    assert served["fallthrough"]["rollout"]["percentage"] == 25


def test_a_staging_change_sends_no_production_event(
    server: LiveServer,
    token: str,
    sdk: httpx.Client,
    admin: httpx.Client,
    make_token: TokenFactory,
    client_for: ClientFactory,
) -> None:
    staging = client_for(make_token(sdk="staging"))
    _, staging_version = current_config(staging)

    with open_stream(server.url, token) as stream:
        first = stream.next_data()

        put_environment(
            admin, "button-color", "staging", {"enabled": True, "fallthrough": {"variant": "green"}}
        )
        # The server has rebuilt staging before production changes below.
        wait_until(lambda: current_config(staging)[1] > staging_version, what="staging to change")
        set_rollout(admin, 30)

        event = stream.next_data()
    # the next production event is the production change, one version on
    assert event["version"] == first["version"] + 1
    assert event["environment"] == "production"
    assert current_config(sdk) == (event["etag"], event["version"])


def test_heartbeats_keep_an_idle_stream_alive(server: LiveServer, token: str) -> None:
    with open_stream(server.url, token) as stream:
        stream.next_event()

        # the settings ask for a heartbeat every second
        first = stream.next_comment(timeout=5)
        second = stream.next_comment(timeout=5)

    assert first
    assert second
    assert not stream.skipped, "an idle stream sent events, not only heartbeats"


def test_connected_streams_are_counted_in_the_metrics(server: LiveServer, token: str) -> None:
    assert stream_gauge(server) == 0

    with open_stream(server.url, token) as stream:
        stream.next_event()
        assert stream_gauge(server) == 1
        with open_stream(server.url, token) as another:
            another.next_event()
            assert stream_gauge(server) == 2
        wait_until(lambda: stream_gauge(server) == 1, what="the closed stream to be forgotten")

    wait_until(lambda: stream_gauge(server) == 0, what="every stream to be forgotten")


def test_only_sdk_tokens_can_stream(server: LiveServer, admin: httpx.Client) -> None:
    assert httpx.get(f"{server.url}{STREAM}", timeout=10).status_code == 401
    assert admin.get(STREAM).status_code == 403
