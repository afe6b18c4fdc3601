"""The ramp controller, ticked by the test with explicit times: it advances healthy
stages on SDK counts, rolls back on a breach, pauses on a warning, obeys alerts from
outside, acts alone under a fenced lease, and remembers paused ramps across restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from graylane_server.ramps.controller import Controller, Step
from graylane_server.ramps.decision import Advance, Hold, Pause, Rollback
from graylane_server.settings import Settings
from tests.ramps.conftest import (
    CONTROLLER_INTERVAL,
    act_ok,
    at,
    audit_entries,
    create_flag,
    get_ramp,
    named_token,
    parse_time,
    post_counts,
    ramped_flag,
    stored_percentage,
    traffic,
    unique_key,
    wait_for_counting_bucket,
    wait_for_sdk_percentage,
)
from tests.server.conftest import ADMIN_TOKEN, TokenFactory
from tests.support.servers import LiveServer

ClientFactory = Callable[[str], httpx.Client]
LEASE_TTL = timedelta(seconds=3 * CONTROLLER_INTERVAL)
FIRING = {"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "HighLoad"}}]}
RESOLVED = {
    "status": "resolved",
    "alerts": [{"status": "resolved", "labels": {"alertname": "HighLoad"}}],
}


def steps_for(steps: list[Step], key: str) -> list[Step]:
    return [s for s in steps if s.flag == key]


def only_step(steps: list[Step], key: str) -> Step:
    mine = steps_for(steps, key)
    assert len(mine) == 1, steps
    return mine[0]


def real_now() -> datetime:
    return at(time.time())


def test_a_healthy_ramp_advances_stage_by_stage_to_completion(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    key = unique_key("checkout")
    create_flag(
        admin,
        key,
        ramped_flag(
            stages=(1, 25, 100),
            min_stage_duration="5s",
            min_samples=1000,
            guards=[
                {"metric": "error_rate", "max": 0.01},
                {"kind": "relative", "metric": "error_rate", "max": 1.0},
            ],
        ),
    )
    sdk = client_for(make_token(sdk="production"))
    controller = server.runtime.controller
    act_ok(admin, key, "start")
    started = parse_time(get_ramp(admin, key)["stage_started_at"])

    wait_for_counting_bucket(started)
    post_counts(sdk, traffic(key, exposed=(600, 0), unexposed=(3000, 4)))
    # not yet run its time
    early = only_step(controller.tick(now=started + timedelta(seconds=4)), key)
    assert isinstance(early.decision, Hold)
    assert "left in this stage" in early.decision.reason
    assert not early.applied
    # run its time, but 600 of 1000 exposures
    ready = max(real_now(), started + timedelta(seconds=6))
    short = only_step(controller.tick(now=ready), key)
    assert isinstance(short.decision, Hold)
    assert "400 more exposures needed" in short.decision.reason
    assert get_ramp(admin, key)["percentage"] == 1

    post_counts(sdk, traffic(key, exposed=(600, 1), unexposed=(3000, 2)))
    # the next stage begins at the tick, after every count of this one arrived
    advanced_at = max(real_now(), ready)
    first = only_step(controller.tick(now=advanced_at), key)
    assert first.decision == Advance(1, 25)
    assert first.applied
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("running", 1, 25)
    assert parse_time(ramp["stage_started_at"]) == advanced_at
    assert stored_percentage(admin, key) == 25
    wait_for_sdk_percentage(sdk, key, 25)

    # the new stage counts afresh: the first stage's 1200 exposures do not carry over
    wait_for_counting_bucket(advanced_at)
    assert get_ramp(admin, key)["exposures"] == 0
    post_counts(sdk, traffic(key, exposed=(1500, 2), unexposed=(3000, 3)))
    done_at = max(real_now(), advanced_at + timedelta(seconds=6))
    last = only_step(controller.tick(now=done_at), key)
    assert last.decision == Advance(2, 100)
    assert last.applied
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("completed", 2, 100)
    wait_for_sdk_percentage(sdk, key, 100)
    # a completed ramp is left alone
    assert steps_for(controller.tick(now=done_at + timedelta(hours=1)), key) == []

    moves = [e for e in audit_entries(admin, key) if e["actor"] == "controller"]
    assert [(e["action"], e["after"]["percentage"]) for e in moves] == [
        ("ramp.advance", 25),
        ("ramp.advance", 100),
    ]
    assert "every guard healthy" in moves[0]["reason"]


def test_an_error_spike_in_the_exposed_group_rolls_back_to_zero(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    key, control = unique_key("checkout"), unique_key("control")
    guards = [{"metric": "error_rate", "max": 0.01}]
    create_flag(admin, key, ramped_flag(guards=guards))
    create_flag(admin, control, ramped_flag(guards=guards))
    sdk = client_for(make_token(sdk="production"))
    act_ok(admin, key, "start")
    act_ok(admin, key, "advance")
    act_ok(admin, control, "start")
    wait_for_sdk_percentage(sdk, key, 10)
    started = max(parse_time(get_ramp(admin, k)["stage_started_at"]) for k in (key, control))

    wait_for_counting_bucket(started)
    post_counts(sdk, traffic(key, exposed=(500, 150), unexposed=(5000, 10)))
    # the same errors among unexposed units are not the change's doing
    post_counts(sdk, traffic(control, exposed=(500, 0), unexposed=(500, 150)))
    steps = server.runtime.controller.tick(now=real_now())
    step = only_step(steps, key)
    assert isinstance(step.decision, Rollback)
    assert step.applied
    assert isinstance(only_step(steps, control).decision, Hold)
    assert get_ramp(admin, control)["status"] == "running"
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("rolled_back", -1, 0)
    assert "error_rate" in ramp["reason"]
    assert stored_percentage(admin, key) == 0
    wait_for_sdk_percentage(sdk, key, 0)
    entry = audit_entries(admin, key)[-1]
    assert (entry["action"], entry["actor"]) == ("ramp.rollback", "guard:error_rate")
    assert entry["before"]["percentage"] == 10
    assert entry["after"] == {"status": "rolled_back", "stage": -1, "percentage": 0}


def test_a_warning_level_pauses_the_ramp(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    key = unique_key("checkout")
    create_flag(
        admin, key, ramped_flag(guards=[{"metric": "error_rate", "warn": 0.01, "max": 0.5}])
    )
    sdk = client_for(make_token(sdk="production"))
    act_ok(admin, key, "start")
    started = parse_time(get_ramp(admin, key)["stage_started_at"])

    wait_for_counting_bucket(started)
    post_counts(sdk, traffic(key, exposed=(2000, 100), unexposed=(2000, 2)))
    now = real_now()
    step = only_step(server.runtime.controller.tick(now=now), key)
    assert isinstance(step.decision, Pause)
    assert step.applied
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("paused", 0, 1)
    assert "warns" in ramp["reason"]
    entry = audit_entries(admin, key)[-1]
    assert (entry["action"], entry["actor"]) == ("ramp.pause", "guard:error_rate")
    # paused stays paused: the controller leaves it to a person
    assert steps_for(server.runtime.controller.tick(now=now + timedelta(hours=2)), key) == []
    assert get_ramp(admin, key)["status"] == "paused"


def test_an_alert_from_outside_trips_a_webhook_guard_until_resolved(
    server: LiveServer, admin: httpx.Client, client_for: ClientFactory
) -> None:
    key = unique_key("checkout")
    create_flag(admin, key, ramped_flag(guards=[{"kind": "webhook", "name": "high-load"}]))
    manager = client_for(named_token(admin, "alertmanager", "release_manager"))
    editor = client_for(named_token(admin, "eve", "editor"))
    controller = server.runtime.controller
    act_ok(admin, key, "start")
    now = real_now()
    assert isinstance(only_step(controller.tick(now=now), key).decision, Hold)

    assert editor.post("/api/v1/guards/alerts/high-load", json=FIRING).status_code == 403
    fired = manager.post("/api/v1/guards/alerts/high-load", json=FIRING)
    assert fired.status_code == 200, fired.text
    assert fired.json() == {"name": "high-load", "firing": True, "detail": "HighLoad"}
    ramp = get_ramp(admin, key)
    assert ramp["readings"][0]["status"] == "breach"
    assert ramp["next_action"] == "rollback"
    assert ramp["status"] == "running"  # nothing happens before the next tick

    step = only_step(controller.tick(now=now + timedelta(seconds=5)), key)
    assert isinstance(step.decision, Rollback)
    assert step.applied
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["percentage"]) == ("rolled_back", 0)
    entry = audit_entries(admin, key)[-1]
    assert (entry["action"], entry["actor"]) == ("ramp.rollback", "guard:high-load")

    resolved = manager.post("/api/v1/guards/alerts/high-load", json=RESOLVED)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["firing"] is False
    act_ok(admin, key, "restart")
    ramp = get_ramp(admin, key)
    assert ramp["readings"][0]["status"] == "healthy"
    step = only_step(controller.tick(now=now + timedelta(seconds=10)), key)
    assert isinstance(step.decision, Hold)
    assert get_ramp(admin, key)["status"] == "running"
    alerts = admin.get(
        "/api/v1/audit", params={"target_type": "guard", "target": "high-load"}
    ).json()["entries"]
    assert [(e["action"], e["actor"], e["after"]["firing"]) for e in alerts] == [
        ("guard.alert", "token:alertmanager", False),
        ("guard.alert", "token:alertmanager", True),
    ]


def test_in_a_protected_environment_the_controller_does_not_go_past_the_approval_level(
    server: LiveServer, admin: httpx.Client, client_for: ClientFactory
) -> None:
    """`approval_above`: in a protected environment, going past it needs a release
    manager. The controller is not one: an editor may start a ramp there, but the
    controller must not then carry it past the level on its own."""
    key = unique_key("checkout")
    plan = {"approval_above": 10, "guards": [], "min_samples": 0, "min_stage_duration": "0s"}
    create_flag(admin, key, ramped_flag(("staging", "production"), **plan))
    editor = client_for(named_token(admin, "eve", "editor"))
    for environment in ("staging", "production"):
        act_ok(editor, key, "start", environment=environment)
    now = real_now()
    for tick in range(1, 5):
        server.runtime.controller.tick(now=now + timedelta(seconds=tick))
    # unprotected: the plan runs to completion on its own
    assert get_ramp(admin, key, "staging")["status"] == "completed"
    # protected: up to the approval level, then it waits for a release manager
    ramp = get_ramp(admin, key)
    moves = [
        (e["action"], e["actor"], e["after"]["percentage"])
        for e in audit_entries(admin, key)
        if e["action"].startswith("ramp.") and e["environment"] == "production"
    ]
    assert (ramp["status"], ramp["percentage"]) == ("running", 10), moves
    assert stored_percentage(admin, key) == 10


@pytest.fixture
def other_controller(server: LiveServer) -> Iterator[Controller]:
    """A second controller on the same database, as another replica would run."""
    runtime = server.runtime
    other = Controller(
        runtime.sessions, runtime.readers, runtime.usage, interval=CONTROLLER_INTERVAL
    )
    yield other
    other.close()


def tick_together(controllers: dict[str, Controller], now: datetime) -> dict[str, list[Step]]:
    """Tick every controller at the same moment, each from its own thread."""
    results: dict[str, list[Step]] = {}
    barrier = threading.Barrier(len(controllers))

    def tick(name: str, controller: Controller) -> None:
        barrier.wait(timeout=30)
        results[name] = controller.tick(now=now)

    threads = [threading.Thread(target=tick, args=item) for item in controllers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(results) == set(controllers), "a tick did not finish"
    return results


def test_only_the_lease_holder_acts_and_a_stale_leader_applies_nothing(
    server: LiveServer,
    admin: httpx.Client,
    client_for: ClientFactory,
    other_controller: Controller,
) -> None:
    first, second = unique_key("first"), unique_key("second")
    for key, guard in ((first, "load-a"), (second, "load-b")):
        create_flag(admin, key, ramped_flag(guards=[{"kind": "webhook", "name": guard}]))
        act_ok(admin, key, "start")
    manager = client_for(named_token(admin, "alertmanager", "release_manager"))
    leader, other = server.runtime.controller, other_controller
    t0 = real_now()
    assert {s.flag for s in leader.tick(now=t0)} == {first, second}
    assert leader.leading
    assert other.tick(now=t0) == []
    assert not other.leading
    old_lease = leader.lease
    assert old_lease is not None

    # both tick at once on a ramp that must roll back: exactly one acts
    assert manager.post("/api/v1/guards/alerts/load-a", json=FIRING).status_code == 200
    results = tick_together({"leader": leader, "other": other}, t0 + timedelta(seconds=1))
    assert results["other"] == []
    assert [s.flag for s in results["leader"] if s.applied] == [first]
    rollbacks = [e for e in audit_entries(admin, first) if e["action"] == "ramp.rollback"]
    assert len(rollbacks) == 1

    # the leader goes quiet; once its lease has run out the other takes over
    assert other.tick(now=t0 + LEASE_TTL - timedelta(seconds=1)) == []
    takeover = t0 + timedelta(seconds=1) + LEASE_TTL + timedelta(seconds=1)
    taken = other.tick(now=takeover)
    assert other.lease is not None
    assert other.lease.fence == old_lease.fence + 1
    assert [(s.flag, type(s.decision)) for s in taken] == [(second, Hold)]

    # the old leader still believes in its lease: its step is refused by the fence
    assert manager.post("/api/v1/guards/alerts/load-b", json=FIRING).status_code == 200
    stale = leader.step(second, "production", old_lease, takeover + timedelta(seconds=1))
    assert isinstance(stale.decision, Rollback)
    assert not stale.applied
    ramp = get_ramp(admin, second)
    assert (ramp["status"], ramp["percentage"]) == ("running", 1)
    assert leader.tick(now=takeover + timedelta(seconds=1)) == []
    assert not leader.leading

    acted = only_step(other.tick(now=takeover + timedelta(seconds=2)), second)
    assert isinstance(acted.decision, Rollback)
    assert acted.applied
    assert get_ramp(admin, second)["status"] == "rolled_back"
    entries = [e for e in audit_entries(admin, second) if e["action"] == "ramp.rollback"]
    assert [e["actor"] for e in entries] == ["guard:load-b"]


def test_a_paused_ramp_stays_paused_across_a_server_restart(
    server: LiveServer, settings: Settings, admin: httpx.Client, client_for: ClientFactory
) -> None:
    key = unique_key("checkout")
    create_flag(admin, key, ramped_flag(guards=[{"kind": "webhook", "name": "restart-load"}]))
    act_ok(admin, key, "start")
    act_ok(admin, key, "advance")
    paused = act_ok(admin, key, "pause", reason="holiday freeze")
    # a firing alert: were the ramp treated as running, a tick would roll it back
    manager = client_for(named_token(admin, "alertmanager", "release_manager"))
    assert manager.post("/api/v1/guards/alerts/restart-load", json=FIRING).status_code == 200
    server.stop()

    again = LiveServer(settings).start()
    try:
        with httpx.Client(
            base_url=again.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        ) as client:
            ramp = get_ramp(client, key)
            assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("paused", 1, 10)
            assert ramp["reason"] == "holiday freeze"
            assert ramp["version"] == paused["version"]
            controller = again.runtime.controller
            later = real_now() + timedelta(hours=1)
            assert controller.tick(now=later) == []
            assert controller.leading
            assert controller.tick(now=later + timedelta(hours=1)) == []
            ramp = get_ramp(client, key)
            assert (ramp["status"], ramp["percentage"], ramp["version"]) == (
                "paused",
                10,
                paused["version"],
            )
            assert stored_percentage(client, key) == 10
    finally:
        again.stop()
