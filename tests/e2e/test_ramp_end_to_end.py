"""A ramp end to end: `graylane-server serve` on PostgreSQL and Redis with the ramp
controller ticking every second, and Graylane SDK clients sending real traffic over HTTP.

The ramp climbs on its own while the exposed group is healthy; once exposed requests
start failing the controller's guards roll it back to 0%, every client serves the off
value moments later, and the audit log names the guard. A paused ramp stays paused when
the server restarts: the new controller takes the lease, ticks, and leaves it alone.

The ramp page's guards need positive evidence of safety to advance a stage, so the
traffic has a baseline error rate of its own, as a real service does. Timing: SDK counts
are filed by the end of each SDK window (every half second here) under the percentage
that produced them, and a stage advances once its reported time, exposures and every
guard's upper bound allow. The bounds below allow for a busy machine.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import mmh3
import pytest
from sqlalchemy import create_engine, text

from graylane import Client
from tests.server.conftest import ADMIN_TOKEN, reset_database
from tests.support.servers import ServerProcess, server_env, wait_until

ENV = "production"
CLIENTS = 3
FAILING_SHARE = 0.2
MIN_STAGE_DURATION = 6.0
"""Long enough that the test switches failures on well before the 50% stage could
advance (it needs this long, and its first counted bucket, before it may)."""
PLAN: dict[str, Any] = {
    "stages": [5, 50, 100],
    "min_stage_duration": f"{MIN_STAGE_DURATION:g}s",
    "min_samples": 20,
    "guards": [
        {"kind": "relative", "metric": "error_rate", "max": 2.0},
        {"metric": "error_rate", "max": 0.2},
    ],
    "auto_advance": True,
}
"""The recommended pair (relative to the unexposed group, with an absolute cap for
disasters), the relative limit looser than the recommended 50% so that a few hundred
requests a second show a healthy stage safe within seconds, not minutes."""
BASELINE_FAILURES = 0.05
"""Every request fails this often, change or not: a healthy service's own error rate."""
STAGE_BOUND = 40.0
"""Seconds a stage may take to advance: up to 10 s until its first counted bucket, a
flush, the stage's minimum duration and a tick, on a machine that may be busy."""


class SimulatedFailure(Exception):
    """What the app's request handler raises for the requests chosen to fail."""


def ramped_flag() -> dict[str, Any]:
    return {
        "description": "A change under an automatic ramp",
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": {
            ENV: {
                "enabled": True,
                "fallthrough": {
                    "rollout": {"percentage": 0, "variants": {"on": 100}},
                    "otherwise": "off",
                },
                "ramp": PLAN,
            }
        },
    }


def exposed_at(flag: str, unit: str, percentage: float) -> bool:
    """Contract 2, written out: is `unit` inside `flag`'s rollout at `percentage`?"""
    return mmh3.hash(f"{flag}:{unit}", 0, signed=False) % 100_000 < round(percentage * 1000)


@dataclass
class Traffic:
    """App threads, one per SDK client, each handling requests in a loop: `observe` around
    the request; the request fails when `failing_flag` is on for the user and a random
    FAILING_SHARE of the time."""

    clients: list[Client]
    failing_flag: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    requests: int = 0
    failures: int = 0
    crashes: list[BaseException] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for index, client in enumerate(self.clients):
            thread = threading.Thread(
                target=self._run, args=(client, index), name=f"app-{index}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def _run(self, client: Client, index: int) -> None:
        rng = random.Random(index)
        try:
            while not self.stop.is_set():
                context = {"targetingKey": f"user-{rng.randrange(1_000_000)}"}
                try:
                    with client.observe(context):
                        flag = self.failing_flag
                        self.requests += 1
                        if rng.random() < BASELINE_FAILURES or (
                            flag is not None
                            and client.is_enabled(flag, context)
                            and rng.random() < FAILING_SHARE
                        ):
                            self.failures += 1
                            raise SimulatedFailure
                except SimulatedFailure:
                    pass
                time.sleep(0.003)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.crashes.append(exc)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)


@dataclass
class Rig:
    server: ServerProcess
    admin: httpx.Client
    database_url: str
    traffic: Traffic


@pytest.fixture(scope="module")
def rig(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    reset_database(database_url)
    engine = create_engine(database_url)
    with engine.begin() as connection:  # no lease left behind by an earlier test's server
        connection.execute(text("DELETE FROM leases"))
    engine.dispose()
    tmp: Path = tmp_path_factory.mktemp("ramp-e2e")
    env = server_env(
        database_url,
        redis_url,
        ADMIN_TOKEN,
        controller_interval=1,
        reconcile_interval=1,
        stream_heartbeat=1,
        data_dir=tmp / "data",
        log_level="info",
    )
    server = ServerProcess(env, tmp / "server.log").start(timeout=60)
    admin = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
    )
    clients: list[Client] = []
    traffic: Traffic | None = None
    try:
        response = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": ENV})
        assert response.status_code == 201, response.text
        sdk_key = response.json()["token"]
        clients = [
            Client(server.url, sdk_key, flush_interval=0.5, poll_interval=2.0)
            for _ in range(CLIENTS)
        ]
        for client in clients:
            client.wait_ready(30)
        traffic = Traffic(clients)
        traffic.start()
        yield Rig(server, admin, database_url, traffic)
        assert not traffic.crashes, traffic.crashes
    except BaseException:
        print(f"--- server log (tail) ---\n{server.log()}")
        raise
    finally:
        if traffic is not None:
            traffic.close()
        for client in clients:
            client.close()
        admin.close()
        server.stop()


# --- the admin API --------------------------------------------------------------------


def create_flag(admin: httpx.Client) -> str:
    """A fresh key: SDK counts live in Redis across runs."""
    key = f"e2e-ramp-{uuid.uuid4().hex[:10]}"
    response = admin.put(f"/api/v1/flags/{key}", json=ramped_flag())
    assert response.status_code in (200, 201), response.text
    return key


def ramp_path(key: str) -> str:
    return f"/api/v1/flags/{key}/environments/{ENV}/ramp"


def ramp(admin: httpx.Client, key: str) -> dict[str, Any]:
    response = admin.get(ramp_path(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def act(admin: httpx.Client, key: str, action: str, version: int | None = None) -> dict[str, Any]:
    headers = {"X-Graylane-Reason": f"e2e: {action}"}
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    response = admin.post(f"{ramp_path(key)}/{action}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def audit(admin: httpx.Client, key: str, action: str | None = None) -> list[dict[str, Any]]:
    params = {"flag": key, "limit": 100, **({"action": action} if action else {})}
    response = admin.get("/api/v1/audit", params=params)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


class Watch:
    """Polls the ramp, keeping every state seen (to tell it never went backwards)."""

    def __init__(self, rig: Rig, key: str) -> None:
        self.admin, self.key, self.server = rig.admin, key, rig.server
        self.seen: list[tuple[str, float]] = []
        self.last: dict[str, Any] = {}

    def poll(self) -> dict[str, Any]:
        self.last = ramp(self.admin, self.key)
        state = (self.last["status"], self.last["percentage"])
        if not self.seen or self.seen[-1] != state:
            self.seen.append(state)
        return self.last

    def until(self, condition: Any, timeout: float, what: str) -> dict[str, Any]:
        try:
            wait_until(lambda: condition(self.poll()), timeout=timeout, interval=0.05, what=what)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; states seen {self.seen}; last {self.last}\n"
                f"--- server log (tail) ---\n{self.server.log()}"
            ) from None
        return self.last


# --- the tests ------------------------------------------------------------------------


def test_a_ramp_climbs_while_healthy_and_its_guards_roll_it_back(rig: Rig) -> None:
    admin, traffic = rig.admin, rig.traffic
    key = create_flag(admin)
    watch = Watch(rig, key)
    exposed_units = [u for u in (f"probe-{i}" for i in range(400)) if exposed_at(key, u, 50)]
    assert len(exposed_units) > 100

    # The ramp starts at 5% and, with every request succeeding, climbs to 50% on its own.
    began = time.monotonic()
    started = act(admin, key, "start")
    assert (started["status"], started["percentage"]) == ("running", 5)
    at_half = watch.until(
        lambda r: r["percentage"] >= 50 or r["status"] != "running",
        timeout=2 * STAGE_BOUND,
        what="the ramp to climb to 50% on its own",
    )
    # Now 20% of the requests that get the change fail.
    traffic.failing_flag = key
    failing_since = time.monotonic()
    climbed_after = failing_since - began
    assert (at_half["status"], at_half["stage"], at_half["percentage"]) == ("running", 1, 50), (
        watch.seen
    )
    assert all(status == "running" for status, _ in watch.seen), watch.seen
    advances = audit(admin, key, "ramp.advance")
    assert [e["actor"] for e in advances] == ["controller"], advances

    # The guards see the failures in the 50% stage's counts and roll back to 0%.
    rolled = watch.until(
        lambda r: r["status"] != "running",
        timeout=STAGE_BOUND,
        what="the guards to roll the ramp back",
    )
    rolled_after = time.monotonic() - failing_since
    assert (rolled["status"], rolled["stage"], rolled["percentage"]) == ("rolled_back", -1, 0), (
        rolled
    )
    assert traffic.failures > 0

    # Every client serves the off value moments later, to everyone.
    server_said = time.monotonic()
    contexts = [{"targetingKey": u} for u in exposed_units]
    wait_until(
        lambda: not any(c.is_enabled(key, ctx) for c in traffic.clients for ctx in contexts),
        timeout=5,
        interval=0.01,
        what="every client to serve the off value",
    )
    clients_off_after = time.monotonic() - server_said

    # The audit log says the guard did it, and why.
    rollbacks = audit(admin, key, "ramp.rollback")
    assert len(rollbacks) == 1, rollbacks
    entry = rollbacks[0]
    assert entry["actor"].startswith("guard:error_rate"), entry
    assert entry["reason"].startswith("guard error_rate"), entry
    assert entry["after"] == {"status": "rolled_back", "stage": -1, "percentage": 0}, entry
    assert not any(e["actor"] != "controller" for e in audit(admin, key, "ramp.advance"))
    print(
        f"\nclimbed to 50% in {climbed_after:.1f}s; rolled back {rolled_after:.1f}s after "
        f"failures began ({entry['actor']}: {entry['reason']}); every client off "
        f"{clients_off_after * 1000:.0f} ms after the server reported it; "
        f"{traffic.requests} requests, {traffic.failures} failed"
    )


def test_a_paused_ramp_stays_paused_across_a_server_restart(rig: Rig) -> None:
    admin, server, traffic = rig.admin, rig.server, rig.traffic
    traffic.failing_flag = None
    key = create_flag(admin)
    watch = Watch(rig, key)
    began = time.monotonic()
    act(admin, key, "start")
    paused = act(admin, key, "pause")
    assert (paused["status"], paused["percentage"]) == ("paused", 5)

    # Wait until a running ramp would advance: enough time, exposures, every guard healthy.
    def ready(r: dict[str, Any]) -> bool:
        return (
            r["status"] == "paused"
            and r["exposures"] >= PLAN["min_samples"]
            and all(reading["status"] == "healthy" for reading in r["readings"])
            and r["holding"] == "the ramp is paused"
        )

    before = watch.until(ready, timeout=STAGE_BOUND, what="the paused stage to be ready")
    assert before["stage_started_at"] is not None
    wait_until(
        lambda: time.time() - _timestamp(before["stage_started_at"]) >= MIN_STAGE_DURATION,
        timeout=MIN_STAGE_DURATION + 5,
        what="the stage's minimum duration to pass",
    )

    # Kill the server and start it again on the same database.
    assert server.process is not None
    old_pid = server.process.pid
    ready_after = time.monotonic() - began
    server.kill()
    killed = time.monotonic()
    server.start(timeout=60)
    restarted_after = time.monotonic() - killed
    assert server.process is not None
    assert server.process.pid != old_pid

    # The new process takes the controller lease and ticks (renews it) several times ...
    engine = create_engine(rig.database_url)
    try:
        holder = f":{server.process.pid}:"
        renewals: list[Any] = []

        def ticks() -> int:
            with engine.connect() as connection:
                row = connection.execute(
                    text("SELECT holder, expires_at FROM leases WHERE name = 'ramp-controller'")
                ).first()
            if row is not None and holder in row.holder and row.expires_at not in renewals:
                renewals.append(row.expires_at)
            return len(renewals)

        wait_until(lambda: ticks() >= 3, timeout=30, interval=0.1, what="the controller ticking")
        ticking_after = time.monotonic() - killed
    finally:
        engine.dispose()

    # ... and the ramp is still paused where it was, its data still ready.
    after = ramp(admin, key)
    assert (after["status"], after["stage"], after["percentage"]) == ("paused", 0, 5), after
    assert after["version"] == before["version"], after
    assert all(reading["status"] == "healthy" for reading in after["readings"]), after
    ramp_entries = [e for e in audit(admin, key) if e["action"].startswith("ramp.")]
    assert [e["action"] for e in ramp_entries] == ["ramp.pause", "ramp.start"], ramp_entries
    # The clients still serve 5%.
    client = traffic.clients[0]
    units = [f"probe-{i}" for i in range(400)]
    wait_until(
        lambda: all(
            client.is_enabled(key, {"targetingKey": u}) == exposed_at(key, u, 5) for u in units
        ),
        timeout=5,
        what="the clients to serve the paused 5%",
    )
    print(
        f"\npaused stage ready in {ready_after:.1f}s; server back in {restarted_after:.1f}s "
        f"after the kill, controller ticked 3 times by {ticking_after:.1f}s; still paused"
    )


def _timestamp(value: str) -> float:
    """Unix seconds of an API timestamp (UTC when it names no zone)."""
    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
