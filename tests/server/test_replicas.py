"""Replicas share only PostgreSQL and Redis: a change written through one reaches the
others' SDKs through Redis at once, through the periodic database check when Redis is
gone, and a replica that dies takes nothing down with it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import ADMIN_TOKEN, reset_database
from tests.server.documents import boolean_flag, document
from tests.support.servers import ServerProcess, free_port, server_env, wait_until

CONFIG = "/api/v1/sdk/config"
IDENTITY = {"Accept-Encoding": "identity"}
SLOW_CHECK = "30"
"""Seconds between database checks on replicas with Redis: three times longer than any
test here waits for a change, so only Redis can explain one arriving in time."""

Start = Callable[..., ServerProcess]


@pytest.fixture
def start_replica(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Start]:
    """Start `graylane-server serve` processes on the run's database; stops them after."""
    reset_database(database_url)
    started: list[ServerProcess] = []

    def start(name: str, *, redis: str | None = None, reconcile: str = SLOW_CHECK) -> ServerProcess:
        env = server_env(
            database_url,
            redis or redis_url,
            ADMIN_TOKEN,
            reconcile_interval=reconcile,
            stream_heartbeat=1,
            data_dir=tmp_path / name,
            log_level="info",
        )
        replica = ServerProcess(env, tmp_path / f"{name}.log")
        started.append(replica)
        return replica.start(timeout=60)

    yield start
    for replica in started:
        replica.stop()


@contextmanager
def client(replica: ServerProcess, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=replica.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as http:
        yield http


def config(sdk: httpx.Client) -> tuple[str, int, dict[str, Any]]:
    response = sdk.get(CONFIG, headers=IDENTITY)
    assert response.status_code == 200, response.text
    return response.headers["etag"], int(response.headers["x-graylane-version"]), response.json()


def sdk_token(admin: httpx.Client) -> str:
    response = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": "production"})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


@contextmanager
def stream_events(
    replica: ServerProcess, token: str
) -> Iterator[Callable[[float], dict[str, Any]]]:
    """The replica's SDK stream, as a function that returns the next event's data."""
    with (
        client(replica, token) as http,
        http.stream("GET", "/api/v1/sdk/stream", timeout=httpx.Timeout(10, read=5)) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()

        def next_event(timeout: float) -> dict[str, Any]:
            deadline = time.monotonic() + timeout
            for line in lines:
                assert time.monotonic() < deadline, f"no event within {timeout}s"
                if line.startswith("data:"):
                    data: dict[str, Any] = json.loads(line.removeprefix("data:"))
                    return data
            raise AssertionError("the stream ended")

        yield next_event


def test_a_change_through_one_replica_reaches_the_other_through_redis(
    start_replica: Start,
) -> None:
    a = start_replica("a")
    b = start_replica("b")
    with client(a, ADMIN_TOKEN) as admin_a:
        token = sdk_token(admin_a)
        with client(b, token) as sdk_b, stream_events(b, token) as next_event:
            etag, version, _ = config(sdk_b)
            assert next_event(10)["version"] == version

            applied = admin_a.put("/api/v1/state", json=document())
            assert applied.status_code == 200

            event = next_event(10)
            assert event["type"] == "refetchEvaluation"
            assert event["environment"] == "production"
            assert event["version"] == version + 1
            new_etag, new_version, body = config(sdk_b)
    assert new_etag != etag
    assert (new_etag, new_version) == (event["etag"], event["version"])
    assert sorted(body["flags"]) == sorted(document()["flags"])


def test_a_replica_without_redis_catches_up_from_the_database(start_replica: Start) -> None:
    a = start_replica("a")
    closed = f"redis://127.0.0.1:{free_port()}/0"
    c = start_replica("c", redis=closed, reconcile="1")
    with client(a, ADMIN_TOKEN) as admin_a:
        token = sdk_token(admin_a)
        with client(c, token) as sdk_c:
            assert c.ready()  # Redis is not needed to be ready
            etag, version, _ = config(sdk_c)

            response = admin_a.put("/api/v1/flags/late", json=boolean_flag(100))
            assert response.status_code == 201

            wait_until(
                lambda: config(sdk_c)[0] != etag,
                timeout=10,
                what="the replica without Redis to serve the change",
            )
            _, new_version, body = config(sdk_c)
            assert new_version == version + 1
            assert body["flags"]["late"]["environments"]["production"]["enabled"] is True
            evaluated = sdk_c.post(
                "/ofrep/v1/evaluate/flags/late", json={"context": {"targetingKey": "u"}}
            )
            assert evaluated.status_code == 200
            assert evaluated.json()["value"] is True


def test_when_one_replica_is_killed_the_other_keeps_serving(start_replica: Start) -> None:
    a = start_replica("a")
    b = start_replica("b")
    with client(a, ADMIN_TOKEN) as admin_a:
        token = sdk_token(admin_a)
        assert admin_a.put("/api/v1/state", json=document()).status_code == 200
    with client(b, ADMIN_TOKEN) as admin_b, client(b, token) as sdk_b:
        wait_until(lambda: "new-checkout" in config(sdk_b)[2]["flags"], what="b to be current")
        etag, version, _ = config(sdk_b)
        with stream_events(b, token) as next_event:
            assert next_event(10)["version"] == version

            a.kill()

            assert b.ready()
            assert config(sdk_b)[0] == etag
            evaluated = sdk_b.post(
                "/ofrep/v1/evaluate/flags/button-color", json={"context": {"targetingKey": "u"}}
            )
            assert evaluated.status_code == 200
            assert evaluated.json()["value"] == "#2da44e"
            # it still takes writes, and tells its SDKs
            disabled = admin_b.put(
                "/api/v1/flags/button-color/environments/production/enabled",
                json={"enabled": False},
            )
            assert disabled.status_code == 200
            event = next_event(10)
        assert event["version"] == version + 1
        new_etag, new_version, body = config(sdk_b)
        assert (new_etag, new_version) == (event["etag"], event["version"])
        assert body["flags"]["button-color"]["environments"]["production"]["enabled"] is False
