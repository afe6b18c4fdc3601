"""`prometheus` guards may only name Prometheus servers the operator allows: others are
refused when a plan is written (422, with the path) and never queried."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import sessionmaker

from graylane.core import parse_ramp
from graylane_server import prometheus_urls
from graylane_server.ramps import signals
from graylane_server.settings import Settings
from tests.server.conftest import ADMIN_TOKEN
from tests.support.http import send_json
from tests.support.servers import LiveServer

DEFAULT = "http://127.0.0.1:9/default-prometheus"
LISTED = "http://127.0.0.1:9/listed-prometheus"
INTERNAL = "http://10.0.0.7:8500/v1/agent/self"


def flag(url: str | None) -> dict[str, Any]:
    guard: dict[str, Any] = {"kind": "prometheus", "query": "up", "max": 1}
    if url is not None:
        guard["url"] = url
    return {
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": {
            "production": {
                "enabled": True,
                "fallthrough": {
                    "rollout": {"percentage": 0, "variants": {"on": 100}},
                    "otherwise": "off",
                },
                "ramp": {"stages": [1, 100], "guards": [guard]},
            }
        },
    }


@pytest.fixture
def allowing(settings: Settings) -> Iterator[httpx.Client]:
    live = LiveServer(
        settings.model_copy(update={"prometheus_url": DEFAULT, "prometheus_urls": [LISTED]})
    ).start()
    with httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ) as client:
        yield client
    live.stop()


def test_a_guard_naming_a_prometheus_the_operator_did_not_allow_is_refused_with_its_path(
    allowing: httpx.Client,
) -> None:
    refused = allowing.put("/api/v1/flags/probe", json=flag(INTERNAL))
    assert refused.status_code == 422, refused.text
    problems = refused.json()["error"]["problems"]
    assert [p["path"] for p in problems] == ["environments.production.ramp.guards[0].url"]
    assert "GRAYLANE_PROMETHEUS_URLS" in problems[0]["message"]
    assert allowing.get("/api/v1/flags/probe").status_code == 404
    # The same through one environment's configuration and through a whole document.
    assert allowing.put("/api/v1/flags/probe", json=flag(None)).status_code == 201
    one_env = allowing.put(
        "/api/v1/flags/probe/environments/production",
        json=flag(INTERNAL)["environments"]["production"],
        headers={"If-Match": '"1"'},
    )
    assert one_env.status_code == 422, one_env.text
    assert [p["path"] for p in one_env.json()["error"]["problems"]] == ["ramp.guards[0].url"]
    state = allowing.put("/api/v1/state", json={"flags": {"other": flag(INTERNAL)}})
    assert state.status_code == 422, state.text
    assert [p["path"] for p in state.json()["error"]["problems"]] == [
        "flags.other.environments.production.ramp.guards[0].url"
    ]


def test_listed_and_default_prometheus_urls_are_accepted(allowing: httpx.Client) -> None:
    for key, url in (("listed", LISTED + "/"), ("default", DEFAULT), ("implicit", None)):
        response = allowing.put(f"/api/v1/flags/{key}", json=flag(url))
        assert response.status_code == 201, response.text


class Prometheus(ThreadingHTTPServer):
    """A stand-in Prometheus on 127.0.0.1 that counts the queries it answers."""

    def __init__(self) -> None:
        self.queries = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.queries += 1
                body = json.dumps({"data": {"result": [{"value": [0, "0.25"]}]}}).encode()
                send_json(self, 200, body)

            def log_message(self, *_: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def prometheus() -> Iterator[Prometheus]:
    server = Prometheus()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_stored_guard_url_that_is_no_longer_allowed_is_never_queried(
    prometheus: Prometheus,
) -> None:
    plan = parse_ramp(
        {
            "stages": [1, 100],
            "guards": [flag(prometheus.url)["environments"]["production"]["ramp"]["guards"][0]],
        }
    )
    narrowed: sessionmaker[Any] = sessionmaker()
    prometheus_urls.install(narrowed, frozenset({DEFAULT}))
    with narrowed() as session:
        readings = signals.external(session, plan, DEFAULT)
    assert list(readings.values.values()) == [None]
    assert prometheus.queries == 0
    allowed: sessionmaker[Any] = sessionmaker()
    prometheus_urls.install(allowed, frozenset({prometheus.url}))
    with allowed() as session:
        readings = signals.external(session, plan, DEFAULT)
    assert list(readings.values.values()) == [0.25]
    assert prometheus.queries == 1
