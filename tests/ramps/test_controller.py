"""The ramp controller, ticked by the test with explicit times: it advances healthy
stages on SDK counts, rolls back on a breach, pauses on a warning, obeys alerts from
outside, acts alone under a fenced lease, and remembers paused ramps across restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

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
    create_ramped_flag,
    event,
    get_ramp,
    named_token,
    parse_time,
    post_counts,
    ramped_flag,
    split_traffic,
    spread,
    stored_percentage,
    traffic,
    unique_key,
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
    key = create_ramped_flag(
        admin,
        stages=(1, 25, 100),
        min_stage_duration="2s",
        min_samples=1000,
        guards=[{"kind": "relative", "metric": "error_rate", "max": 0.5}],
    )
    sdk = client_for(make_token(sdk="production"))
    controller = server.runtime.controller
    act_ok(admin, key, "start")
    started = parse_time(get_ramp(admin, key)["stage_started_at"])

    end = post_counts(sdk, split_traffic(key, 1, 59_900, errors=0.01), started)
    # not yet run its time (as the SDKs reported it)
    early = only_step(controller.tick(now=min(at(end), started + timedelta(seconds=1))), key)
    assert isinstance(early.decision, Hold)
    assert "left in this stage" in early.decision.reason
    assert not early.applied
    # run its time, but 600 of 1000 exposures
    end = post_counts(
        sdk, split_traffic(key, 1, 100), started, until=started + timedelta(seconds=2)
    )
    short = only_step(controller.tick(now=at(end)), key)
    assert isinstance(short.decision, Hold)
    assert "400 more exposures needed" in short.decision.reason
    assert get_ramp(admin, key)["percentage"] == 1

    # enough exposures, and enough of them to show the change is not 50% worse
    end = post_counts(sdk, split_traffic(key, 1, 5_000_000, errors=0.01), started)
    advanced_at = at(end)
    first = only_step(controller.tick(now=advanced_at), key)
    assert first.decision == Advance(1, 25), first
    assert first.applied
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("running", 1, 25)
    assert parse_time(ramp["stage_started_at"]) == advanced_at
    assert stored_percentage(admin, key) == 25
    wait_for_sdk_percentage(sdk, key, 25)

    # the new stage counts its own exposures: the first stage's do not carry over
    assert get_ramp(admin, key)["exposures"] == 0
    end = post_counts(
        sdk,
        split_traffic(key, 25, 200_000, errors=0.01),
        advanced_at,
        until=advanced_at + timedelta(seconds=2),
    )
    done_at = at(end)
    last = only_step(controller.tick(now=done_at), key)
    assert last.decision == Advance(2, 100), last
    assert last.applied
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("completed", 2, 100)
    wait_for_sdk_percentage(sdk, key, 100)
    # a completed ramp is watched for the plan's `watch_completed` (1h), then left alone
    watched = only_step(controller.tick(now=done_at + timedelta(minutes=59)), key)
    assert isinstance(watched.decision, Hold)
    assert not watched.applied
    done = only_step(controller.tick(now=done_at + timedelta(hours=1)), key)
    assert done.decision == Hold("the ramp is done")
    assert get_ramp(admin, key)["status"] == "completed"

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

    post_counts(sdk, traffic(key, 10, exposed=(500, 150), unexposed=(4500, 9)), started)
    # errors among unexposed units only are not the change's doing
    post_counts(sdk, traffic(control, 1, exposed=(500, 0), unexposed=(49_500, 150)), started)
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
    key = create_ramped_flag(admin, guards=[{"metric": "error_rate", "warn": 0.01, "max": 0.5}])
    sdk = client_for(make_token(sdk="production"))
    act_ok(admin, key, "start")
    started = parse_time(get_ramp(admin, key)["stage_started_at"])

    post_counts(sdk, traffic(key, 1, exposed=(2000, 100), unexposed=(2000, 2)), started)
    now = real_now()
    step = only_step(server.runtime.controller.tick(now=now), key)
    assert isinstance(step.decision, Pause)
    assert step.applied
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("paused", 0, 1)
    assert "warns" in ramp["reason"]
    entry = audit_entries(admin, key)[-1]
    assert (entry["action"], entry["actor"]) == ("ramp.pause", "guard:error_rate")
    # paused stays paused: only a person resumes it (the controller only watches)
    later = only_step(server.runtime.controller.tick(now=now + timedelta(hours=2)), key)
    assert not later.applied
    assert get_ramp(admin, key)["status"] == "paused"


def test_an_alert_from_outside_trips_a_webhook_guard_until_resolved(
    server: LiveServer, admin: httpx.Client, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(admin, guards=[{"kind": "webhook", "name": "high-load"}])
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
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    """`approval_above`: in a protected environment, going past it needs a release
    manager. The controller is not one: an editor may start a ramp there, but the
    controller must not then carry it past the level on its own."""
    key = unique_key("checkout")
    plan = {
        "approval_above": 10,
        "guards": [{"kind": "webhook", "name": "approval-load"}],
        "min_samples": 1,
        "min_stage_duration": "0s",
    }
    create_flag(admin, key, ramped_flag(("staging", "production"), **plan))
    editor = client_for(named_token(admin, "eve", "editor"))
    sdks = {env: client_for(make_token(sdk=env)) for env in ("staging", "production")}
    for environment in ("staging", "production"):
        act_ok(editor, key, "start", environment=environment)
    for _ in range(4):
        for environment, sdk in sdks.items():
            ramp = get_ramp(admin, key, environment)
            healthy = split_traffic(key, ramp["percentage"], 100_000)
            post_counts(sdk, healthy, parse_time(ramp["stage_started_at"]))
        server.runtime.controller.tick(now=real_now())
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
    key = create_ramped_flag(admin, guards=[{"kind": "webhook", "name": "restart-load"}])
    act_ok(admin, key, "start")
    act_ok(admin, key, "advance")
    paused = act_ok(admin, key, "pause", reason="holiday freeze")
    manager = client_for(named_token(admin, "alertmanager", "release_manager"))
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
            assert not only_step(controller.tick(now=later), key).applied
            assert controller.leading
            assert not only_step(controller.tick(now=later + timedelta(hours=1)), key).applied
            ramp = get_ramp(client, key)
            assert (ramp["status"], ramp["percentage"], ramp["version"]) == (
                "paused",
                10,
                paused["version"],
            )
            assert stored_percentage(client, key) == 10
            # the restarted controller still watches it
            fired = manager.post(
                f"{again.url}/api/v1/guards/alerts/restart-load",
                json=FIRING,
                headers=manager.headers,
            )
            assert fired.status_code == 200, fired.text
            step = only_step(controller.tick(now=later + timedelta(hours=2)), key)
            assert isinstance(step.decision, Rollback)
            assert step.applied
            assert get_ramp(client, key)["status"] == "rolled_back"
    finally:
        again.stop()


def test_controller_rolls_back_a_paused_ramp_on_breach(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    """A paused ramp still has units on the change: pausing stops it advancing, never
    the rollback a breach calls for (whether a person or a guard's warning paused it)."""
    key = create_ramped_flag(admin, guards=[{"kind": "webhook", "name": "paused-load"}])
    manager = client_for(named_token(admin, "alertmanager", "release_manager"))
    sdk = client_for(make_token(sdk="production"))
    controller = server.runtime.controller
    act_ok(admin, key, "start")
    act_ok(admin, key, "advance")
    act_ok(admin, key, "pause", reason="looks odd")
    now = real_now()
    quiet = only_step(controller.tick(now=now), key)
    assert not quiet.applied
    assert get_ramp(admin, key)["status"] == "paused"

    assert manager.post("/api/v1/guards/alerts/paused-load", json=FIRING).status_code == 200
    assert get_ramp(admin, key)["next_action"] == "rollback"
    step = only_step(controller.tick(now=now + timedelta(seconds=5)), key)
    assert isinstance(step.decision, Rollback)
    assert step.applied
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("rolled_back", -1, 0)
    wait_for_sdk_percentage(sdk, key, 0)
    entry = audit_entries(admin, key)[-1]
    assert (entry["action"], entry["actor"]) == ("ramp.rollback", "guard:paused-load")
    assert entry["before"] == {"status": "paused", "stage": 1, "percentage": 10}


def test_a_paused_ramp_steps_back_on_breach_when_the_plan_says_so(
    server: LiveServer, admin: httpx.Client, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(
        admin, guards=[{"kind": "webhook", "name": "step-load"}], on_breach="step_back"
    )
    manager = client_for(named_token(admin, "alertmanager", "release_manager"))
    act_ok(admin, key, "start")
    act_ok(admin, key, "advance")
    act_ok(admin, key, "advance")
    act_ok(admin, key, "pause")
    assert manager.post("/api/v1/guards/alerts/step-load", json=FIRING).status_code == 200
    step = only_step(server.runtime.controller.tick(now=real_now()), key)
    assert isinstance(step.decision, Rollback)
    assert step.applied
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("paused", 1, 10)


def test_a_completed_ramp_rolls_back_on_a_breach_within_its_watch(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(
        admin, stages=(1, 100), guards=[{"kind": "webhook", "name": "done-load"}], watch="30m"
    )
    manager = client_for(named_token(admin, "alertmanager", "release_manager"))
    sdk = client_for(make_token(sdk="production"))
    act_ok(admin, key, "start")
    completed = act_ok(admin, key, "advance")
    assert (completed["status"], completed["percentage"]) == ("completed", 100)
    assert completed["watch_completed"] == 1800
    reached = parse_time(completed["stage_started_at"])
    assert parse_time(completed["watching_until"]) == reached + timedelta(minutes=30)

    assert manager.post("/api/v1/guards/alerts/done-load", json=FIRING).status_code == 200
    step = only_step(server.runtime.controller.tick(now=reached + timedelta(minutes=29)), key)
    assert isinstance(step.decision, Rollback)
    assert step.applied
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["percentage"]) == ("rolled_back", 0)
    wait_for_sdk_percentage(sdk, key, 0)
    entry = audit_entries(admin, key)[-1]
    assert (entry["action"], entry["actor"]) == ("ramp.rollback", "guard:done-load")
    assert entry["before"]["status"] == "completed"


def test_a_completed_ramp_is_done_once_its_watch_has_run(
    server: LiveServer, admin: httpx.Client, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(
        admin, stages=(1, 100), guards=[{"kind": "webhook", "name": "late-load"}]
    )
    manager = client_for(named_token(admin, "alertmanager", "release_manager"))
    act_ok(admin, key, "start")
    reached = parse_time(act_ok(admin, key, "advance")["stage_started_at"])
    assert manager.post("/api/v1/guards/alerts/late-load", json=FIRING).status_code == 200
    step = only_step(server.runtime.controller.tick(now=reached + timedelta(hours=1)), key)
    assert step.decision == Hold("the ramp is done")
    assert not step.applied
    assert get_ramp(admin, key)["status"] == "completed"


def test_a_ramp_paused_by_a_warning_still_rolls_back_when_its_guard_breaches(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    """A bad release first crosses the warn level (the ramp pauses), then the max: the
    units already on it are taken off, not left paused on the bad variant."""
    key = unique_key("checkout")
    guards = [{"metric": "error_rate", "warn": 0.02, "max": 0.2}]
    create_flag(admin, key, ramped_flag(guards=guards))
    sdk = client_for(make_token(sdk="production"))
    controller = server.runtime.controller
    started = parse_time(act_ok(admin, key, "start")["stage_started_at"])

    end = post_counts(sdk, traffic(key, 1, exposed=(5000, 250), unexposed=(495_000, 0)), started)
    warned = only_step(controller.tick(now=at(end)), key)
    assert isinstance(warned.decision, Pause)
    assert warned.applied
    assert get_ramp(admin, key)["status"] == "paused"

    end = post_counts(
        sdk, traffic(key, 1, exposed=(20_000, 10_000), unexposed=(1_980_000, 0)), started
    )
    breached = only_step(controller.tick(now=at(end)), key)
    assert isinstance(breached.decision, Rollback)
    assert breached.applied
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["percentage"]) == ("rolled_back", 0)
    wait_for_sdk_percentage(sdk, key, 0)
    actions = [(e["action"], e["actor"]) for e in audit_entries(admin, key)][-2:]
    assert actions == [("ramp.pause", "guard:error_rate"), ("ramp.rollback", "guard:error_rate")]


def test_a_guard_whose_exposed_group_gets_no_traffic_pauses_the_ramp_saying_so(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(
        admin, guards=[{"kind": "relative", "metric": "error_rate", "max": 0.5}]
    )
    sdk = client_for(make_token(sdk="production"))
    started = parse_time(act_ok(admin, key, "start")["stage_started_at"])
    # only unexposed traffic: nobody falls into the rollout
    post_counts(sdk, traffic(key, 1, unexposed=(50_000, 50)), started)
    step = only_step(server.runtime.controller.tick(now=started + timedelta(minutes=11)), key)
    assert isinstance(step.decision, Pause)
    assert step.applied
    ramp = get_ramp(admin, key)
    assert ramp["status"] == "paused"
    assert "has no data" in ramp["reason"]


def measured(
    flag: str, group: str, name: str, count: int, mean: float, percentage: float
) -> dict[str, Any]:
    """`count` measurements of `name` around `mean` (spread 10% of it), per cluster."""
    counts = spread(count)
    second_moment = mean**2 * 1.01
    return {
        **event(flag, group, name, count, percentage, "on" if group == "exposed" else "off"),
        "sums": [n * mean for n in counts],
        "squares": [n * second_moment for n in counts],
    }


def test_a_latency_kpi_guard_rolls_back_a_ramp_whose_exposed_requests_are_slower(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(admin, guards=[{"kpi": "latency"}])
    sdk = client_for(make_token(sdk="production"))
    started = parse_time(act_ok(admin, key, "start")["stage_started_at"])
    events = [
        *traffic(key, 1, exposed=(5000, 0), unexposed=(495_000, 0)),
        measured(key, "exposed", "latency", 5000, 0.300, 1),
        measured(key, "unexposed", "latency", 495_000, 0.100, 1),
    ]
    end = post_counts(sdk, events, started)
    reading = get_ramp(admin, key)["readings"][0]
    assert (reading["guard"], reading["status"]) == ("latency-relative", "breach"), reading
    step = only_step(server.runtime.controller.tick(now=at(end)), key)
    assert isinstance(step.decision, Rollback)
    assert step.applied
    assert get_ramp(admin, key)["status"] == "rolled_back"
    entry = audit_entries(admin, key)[-1]
    assert (entry["action"], entry["actor"]) == ("ramp.rollback", "guard:latency-relative")
