"""Notices to the outside (a signed outbox, delivered with retries, every attempt visible)
and the emergency stop that turns a whole environment off at once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from graylane.core import compile_document, evaluate, parse_document
from graylane_server.ramps.decision import Pause
from graylane_server.webhooks.service import deliver_due
from graylane_server.webhooks.signing import verify
from tests.ramps.conftest import (
    act_ok,
    audit_entries,
    create_flag,
    create_ramped_flag,
    get_ramp,
    named_token,
    parse_time,
    ramped_flag,
    sdk_config,
    unique_key,
)
from tests.server.conftest import TokenFactory
from tests.support.servers import LiveServer, wait_until

ClientFactory = Callable[[str], httpx.Client]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request and answers each path
    with the status set for it (204 unless told)."""

    base: str
    received: list[Received] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base + path

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            target = state["receiver"]
            with target.lock:
                target.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                code = target.status.get(self.path, 204)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(f"http://127.0.0.1:{http.server_address[1]}")
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield state["receiver"]
    http.shutdown()
    http.server_close()
    thread.join(timeout=10)


def register(admin: httpx.Client, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = admin.post("/api/v1/webhooks", json={"url": url, "events": events or []})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["secret"].startswith("whsec_")
    return created


def deliveries(admin: httpx.Client, webhook_id: int) -> list[dict[str, Any]]:
    response = admin.get(f"/api/v1/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


def test_a_ramp_transition_is_delivered_signed_to_a_registered_webhook(
    server: LiveServer, admin: httpx.Client, receiver: Receiver
) -> None:
    hook = register(admin, receiver.url("/hooks"))
    assert "secret" not in admin.get("/api/v1/webhooks").json()["webhooks"][0]
    key = create_ramped_flag(admin)
    act_ok(admin, key, "start", reason="first 1%")

    (queued,) = deliveries(admin, hook["id"])
    assert (queued["event"], queued["status"], queued["attempts"]) == ("ramp.start", "pending", 0)
    assert receiver.on("/hooks") == []  # queued with the change, sent afterwards

    server.runtime.controller.tick()
    (request,) = receiver.on("/hooks")
    (delivered,) = deliveries(admin, hook["id"])
    assert (delivered["status"], delivered["attempts"]) == ("delivered", 1)
    assert delivered["delivered_at"] is not None
    assert delivered["last_error"] is None
    assert request.headers["x-graylane-delivery"] == str(delivered["id"])
    assert request.headers["content-type"] == "application/json"

    signature = request.headers["x-graylane-signature"]
    now = int(time.time())
    assert verify(hook["secret"], signature, request.body, now=now)
    assert not verify(hook["secret"] + "x", signature, request.body, now=now)
    assert not verify(hook["secret"], signature, request.body.replace(b"1", b"2"), now=now)
    assert not verify(hook["secret"], signature, request.body, now=now + 3600)

    body = json.loads(request.body)
    assert body == delivered["payload"]
    assert body["event"] == "ramp.start"
    assert (body["flag"], body["environment"], body["actor"]) == (
        key,
        "production",
        "token:bootstrap",
    )
    assert (body["status"], body["stage"], body["percentage"]) == ("running", 0, 1)
    assert body["reason"] == "first 1%"

    # delivered once: the next tick sends nothing again
    server.runtime.controller.tick()
    assert len(receiver.on("/hooks")) == 1


def test_a_webhook_hears_only_the_events_it_asked_for(
    server: LiveServer, admin: httpx.Client, receiver: Receiver
) -> None:
    rollbacks = register(admin, receiver.url("/rollbacks"), ["ramp.rollback"])
    everything = register(admin, receiver.url("/all"))
    key = create_ramped_flag(admin)
    act_ok(admin, key, "start")
    act_ok(admin, key, "pause")
    act_ok(admin, key, "rollback")
    assert [d["event"] for d in deliveries(admin, rollbacks["id"])] == ["ramp.rollback"]
    assert [d["event"] for d in reversed(deliveries(admin, everything["id"]))] == [
        "ramp.start",
        "ramp.pause",
        "ramp.rollback",
    ]
    server.runtime.controller.tick()
    assert [json.loads(r.body)["event"] for r in receiver.on("/rollbacks")] == ["ramp.rollback"]
    assert len(receiver.on("/all")) == 3


def test_a_failing_receiver_is_retried_with_every_attempt_visible(
    server: LiveServer, admin: httpx.Client, receiver: Receiver
) -> None:
    receiver.status["/flaky"] = 500
    hook = register(admin, receiver.url("/flaky"))
    key = create_ramped_flag(admin)
    act_ok(admin, key, "start")
    sessions = server.runtime.sessions

    with httpx.Client(timeout=10) as client:
        assert deliver_due(sessions, client) == 0
        (failed,) = deliveries(admin, hook["id"])
        assert (failed["status"], failed["attempts"]) == ("pending", 1)
        assert failed["last_error"] == "HTTP 500"
        assert failed["next_attempt_at"] > failed["created_at"]
        # not due again at once: the retry waits
        assert deliver_due(sessions, client) == 0
        assert deliveries(admin, hook["id"])[0]["attempts"] == 1
        assert len(receiver.on("/flaky")) == 1

        def attempts() -> int:
            deliver_due(sessions, client)
            count: int = deliveries(admin, hook["id"])[0]["attempts"]
            return count

        wait_until(lambda: attempts() >= 2, timeout=30, interval=0.2, what="a second attempt")
        retried = deliveries(admin, hook["id"])[0]
        assert (retried["status"], retried["attempts"]) == ("pending", 2)
        assert retried["last_error"] == "HTTP 500"
        assert retried["next_attempt_at"] > failed["next_attempt_at"]

        receiver.status["/flaky"] = 200
        wait_until(
            lambda: attempts() and deliveries(admin, hook["id"])[0]["status"] == "delivered",
            timeout=30,
            interval=0.2,
            what="the delivery to succeed",
        )
    done = deliveries(admin, hook["id"])[0]
    assert (done["attempts"], done["last_error"]) == (3, None)
    requests = receiver.on("/flaky")
    assert len(requests) == 3
    # the same notice each time, each freshly signed
    assert {r.headers["x-graylane-delivery"] for r in requests} == {str(done["id"])}
    assert len({r.body for r in requests}) == 1
    assert all(
        verify(hook["secret"], r.headers["x-graylane-signature"], r.body, now=int(time.time()))
        for r in requests
    )


# --- emergency stop -----------------------------------------------------------------------


def fixed_flag(environments: dict[str, bool]) -> dict[str, Any]:
    return {
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": {
            env: {"enabled": enabled, "fallthrough": {"variant": "on"}}
            for env, enabled in environments.items()
        },
    }


def served(sdk: httpx.Client, environment: str, key: str, units: int = 400) -> set[str]:
    """The (variant, reason) pairs an SDK of `environment` serves `key` over many units."""
    snapshot = compile_document(parse_document(sdk_config(sdk)), environment)
    return {
        f"{result.variant}/{result.reason}"
        for result in (evaluate(snapshot, key, {"targetingKey": f"user-{i}"}) for i in range(units))
    }


def test_emergency_stop_turns_off_every_flag_and_pauses_every_ramp_in_one_environment(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    ramped, fixed, dark = unique_key("ramped"), unique_key("fixed"), unique_key("dark")
    create_flag(admin, ramped, ramped_flag(("staging", "production"), stages=(5, 100)))
    create_flag(admin, fixed, fixed_flag({"staging": True, "production": True}))
    create_flag(admin, dark, fixed_flag({"production": False}))
    for environment in ("staging", "production"):
        act_ok(admin, ramped, "start", environment=environment)
    production = client_for(make_token(sdk="production"))
    staging = client_for(make_token(sdk="staging"))
    wait_until(
        lambda: served(production, "production", ramped) == {"on/SPLIT", "off/SPLIT"},
        timeout=20,
        what="production SDKs to see the ramp",
    )
    editor = client_for(named_token(admin, "eve", "editor"))
    manager = client_for(named_token(admin, "rita", "release_manager"))
    stop = "/api/v1/environments/production/emergency-stop"

    assert editor.post(stop, json={"reason": "checkout down"}).status_code == 403
    assert manager.post(stop, json={}).status_code == 422
    assert get_ramp(admin, ramped)["status"] == "running"

    response = manager.post(stop, json={"reason": "checkout down"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "environment": "production",
        "flags_disabled": sorted([ramped, fixed]),
        "ramps_paused": [ramped],
    }
    wait_until(
        lambda: served(production, "production", ramped) == {"off/DISABLED"},
        timeout=20,
        what="production SDKs to serve the off variant",
    )
    assert served(production, "production", fixed) == {"off/DISABLED"}
    assert served(production, "production", dark) == {"off/DISABLED"}
    ramp = get_ramp(admin, ramped)
    assert (ramp["status"], ramp["percentage"]) == ("paused", 5)
    assert ramp["reason"] == "emergency stop: checkout down"

    # staging is untouched
    assert served(staging, "staging", fixed) == {"on/STATIC"}
    assert served(staging, "staging", ramped) == {"on/SPLIT", "off/SPLIT"}
    assert get_ramp(admin, ramped, "staging")["status"] == "running"
    for key in (ramped, fixed):
        assert admin.get(f"/api/v1/flags/{key}").json()["environments"]["staging"]["enabled"]

    # one audit entry per stopped flag, naming who and why; none for a flag already off
    for key in (ramped, fixed):
        stops = [e for e in audit_entries(admin, key) if e["action"] == "flag.emergency_stop"]
        assert [(e["actor"], e["environment"], e["reason"]) for e in stops] == [
            ("token:rita", "production", "checkout down")
        ]
    assert [e["action"] for e in audit_entries(admin, dark)] == ["flag.create"]
    # the paused ramp says why it stopped moving
    pauses = [e for e in audit_entries(admin, ramped) if e["action"] == "ramp.pause"]
    assert [(e["actor"], e["environment"], e["reason"]) for e in pauses] == [
        ("token:rita", "production", "emergency stop: checkout down")
    ]
    # a tick does not resume what the stop paused
    server.runtime.controller.tick()
    assert get_ramp(admin, ramped)["status"] == "paused"


def test_a_guard_without_data_pauses_the_ramp_with_a_visible_reason_and_a_notice(
    server: LiveServer, admin: httpx.Client, receiver: Receiver
) -> None:
    """A Prometheus guard whose query never answers (no Prometheus configured here, as
    when it is unreachable) must not hold a ramp silently forever."""
    hook = register(admin, receiver.url("/hooks"), events=["ramp.warn"])
    key = create_ramped_flag(
        admin, guards=[{"kind": "prometheus", "name": "load", "query": "up", "max": 1}]
    )
    started = parse_time(act_ok(admin, key, "start")["stage_started_at"])
    controller = server.runtime.controller
    first = [s for s in controller.tick(now=started + timedelta(seconds=5)) if s.flag == key]
    assert [s.applied for s in first] == [False]
    assert get_ramp(admin, key)["readings"][0]["status"] == "inconclusive"

    later = [s for s in controller.tick(now=started + timedelta(minutes=11)) if s.flag == key]
    assert [(type(s.decision), s.applied) for s in later] == [(Pause, True)]
    ramp = get_ramp(admin, key)
    assert ramp["status"] == "paused"
    assert "guard load has no data" in ramp["reason"]
    assert "no value from the query for 11 minutes" in ramp["reason"]
    entry = audit_entries(admin, key)[-1]
    assert (entry["action"], entry["actor"]) == ("ramp.pause", "guard:load")
    (notice,) = deliveries(admin, hook["id"])
    assert notice["event"] == "ramp.warn"
    assert "has no data" in notice["payload"]["reason"]
