"""Ramps through HTTP: reading, starting, advancing with a version, pausing, rolling back
and restarting; who may do what where; the audit trail; and a started ramp owning its
flag's percentage against documents applied later."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx
from sqlalchemy import create_engine, text

from tests.ramps.conftest import (
    act,
    act_ok,
    audit_entries,
    create_flag,
    create_ramped_flag,
    exposed_units,
    get_ramp,
    named_token,
    parse_time,
    post_counts,
    ramp_path,
    ramped_flag,
    sdk_percentage,
    split_traffic,
    stored_percentage,
    traffic,
    unique_key,
    wait_for_sdk_percentage,
)
from tests.server.conftest import TokenFactory

ClientFactory = Callable[[str], httpx.Client]


def test_a_flag_with_a_ramp_block_has_a_draft_ramp(admin: httpx.Client) -> None:
    key = create_ramped_flag(admin, stages=(2, 20, 100), min_samples=500)
    ramp = get_ramp(admin, key)
    assert ramp["status"] == "draft"
    assert ramp["stage"] == -1
    assert ramp["stages"] == [2, 20, 100]
    assert ramp["percentage"] == 0
    assert ramp["version"] == 0
    assert ramp["min_samples"] == 500
    assert ramp["protected"] is True
    assert ramp["next_action"] == "hold"
    # every guard of the plan, then the sample-ratio check
    assert [r["guard"] for r in ramp["readings"]] == ["error_rate", "sample-ratio"]


def test_a_flag_without_a_ramp_block_has_no_ramp_and_says_how_to_get_one(
    admin: httpx.Client,
) -> None:
    key = unique_key("plain")
    definition = ramped_flag()
    del definition["environments"]["production"]["ramp"]
    create_flag(admin, key, definition)
    response = admin.get(ramp_path(key))
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "no ramp plan" in message
    assert "`ramp` block" in message
    assert admin.get(ramp_path(unique_key("missing"))).status_code == 404
    assert admin.post(f"{ramp_path(key)}/start").status_code == 404


def test_starting_serves_the_first_stage_to_the_flag_and_the_sdks(
    admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(admin)
    sdk = client_for(make_token(sdk="production"))
    assert sdk_percentage(sdk, key) == 0
    ramp = act_ok(admin, key, "start")
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("running", 0, 1)
    assert ramp["version"] >= 1
    assert ramp["stage_started_at"] is not None
    assert stored_percentage(admin, key) == 1
    wait_for_sdk_percentage(sdk, key, 1)
    # GET agrees with the answer to the action
    assert get_ramp(admin, key)["status"] == "running"


def test_advance_needs_the_ramps_version(admin: httpx.Client) -> None:
    key = create_ramped_flag(admin)
    version = act_ok(admin, key, "start")["version"]
    missing = act(admin, key, "advance")
    assert missing.status_code == 428
    assert f'If-Match: "{version}"' in missing.json()["error"]["message"]
    stale = act(admin, key, "advance", version=version + 7)
    assert stale.status_code == 412
    assert get_ramp(admin, key)["percentage"] == 1  # refused attempts changed nothing
    advanced = act(admin, key, "advance", version=version)
    assert advanced.status_code == 200
    assert (advanced.json()["stage"], advanced.json()["percentage"]) == (1, 10)
    assert advanced.json()["version"] > version
    # the version it was decided on is now stale
    assert act(admin, key, "advance", version=version).status_code == 412
    assert stored_percentage(admin, key) == 10


def test_two_people_advancing_from_the_same_version_advance_once(admin: httpx.Client) -> None:
    key = create_ramped_flag(admin)
    version = act_ok(admin, key, "start")["version"]
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def press() -> None:
        with httpx.Client(base_url=admin.base_url, headers=admin.headers, timeout=30) as client:
            barrier.wait(timeout=30)
            statuses.append(act(client, key, "advance", version=version).status_code)

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 412]
    ramp = get_ramp(admin, key)
    assert (ramp["stage"], ramp["percentage"]) == (1, 10)
    advances = [e for e in audit_entries(admin, key) if e["action"] == "ramp.advance"]
    assert len(advances) == 1


def test_pause_resume_and_rollback_are_idempotent(admin: httpx.Client) -> None:
    key = create_ramped_flag(admin)
    act_ok(admin, key, "start")
    first = act_ok(admin, key, "pause")
    second = act_ok(admin, key, "pause")
    assert first["status"] == second["status"] == "paused"
    assert second["version"] == first["version"]
    resumed = act_ok(admin, key, "resume")
    again = act_ok(admin, key, "resume")
    assert resumed["status"] == again["status"] == "running"
    assert again["version"] == resumed["version"]
    rolled = act_ok(admin, key, "rollback")
    rolled_again = act_ok(admin, key, "rollback")
    assert rolled_again["version"] == rolled["version"]
    actions = [e["action"] for e in audit_entries(admin, key)]
    assert actions == ["flag.create", "ramp.start", "ramp.pause", "ramp.resume", "ramp.rollback"]


def test_rollback_serves_nobody_and_marks_the_ramp_rolled_back(
    admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(admin)
    sdk = client_for(make_token(sdk="production"))
    act_ok(admin, key, "start")
    act_ok(admin, key, "advance")
    wait_for_sdk_percentage(sdk, key, 10)
    ramp = act_ok(admin, key, "rollback", reason="checkout errors")
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("rolled_back", -1, 0)
    assert ramp["reason"] == "checkout errors"
    assert stored_percentage(admin, key) == 0
    wait_for_sdk_percentage(sdk, key, 0)
    assert exposed_units(sdk, key, "production") == frozenset()
    # a rolled-back ramp is restarted, not started, and cannot advance
    assert act(admin, key, "start").status_code == 409
    assert act(admin, key, "advance", version=ramp["version"]).status_code == 409


def test_restart_exposes_the_same_units_again(
    admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(admin)
    sdk = client_for(make_token(sdk="production"))
    act_ok(admin, key, "start")
    wait_for_sdk_percentage(sdk, key, 1)
    first = exposed_units(sdk, key, "production")
    act_ok(admin, key, "advance")
    wait_for_sdk_percentage(sdk, key, 10)
    wider = exposed_units(sdk, key, "production")
    act_ok(admin, key, "rollback")
    wait_for_sdk_percentage(sdk, key, 0)
    restarted = act_ok(admin, key, "restart")
    assert (restarted["status"], restarted["stage"], restarted["percentage"]) == ("running", 0, 1)
    wait_for_sdk_percentage(sdk, key, 1)
    again = exposed_units(sdk, key, "production")
    # about 1% of 5000 units, the very same ones; 10% held them all and more
    assert 20 <= len(first) <= 90
    assert again == first
    assert first < wider
    assert 350 <= len(wider) <= 650


def test_every_transition_is_audited_with_its_actor_and_reason(admin: httpx.Client) -> None:
    key = create_ramped_flag(admin)
    manager = httpx.Client(
        base_url=admin.base_url,
        headers={"Authorization": f"Bearer {named_token(admin, 'ana', 'release_manager')}"},
        timeout=10,
    )
    steps = [
        ("start", "ship it to 1%"),
        ("advance", "1% looks fine"),
        ("pause", "waiting for the marketing mail"),
        ("resume", "mail is out"),
        ("rollback", "support tickets about totals"),
        ("restart", "totals fixed in 2.4.1"),
    ]
    with manager:
        for action, reason in steps:
            act_ok(manager, key, action, reason=reason)
    entries = [e for e in audit_entries(admin, key) if e["action"].startswith("ramp.")]
    assert [(e["action"], e["reason"]) for e in entries] == [
        (f"ramp.{action}", reason) for action, reason in steps
    ]
    assert {e["actor"] for e in entries} == {"token:ana"}
    assert {e["environment"] for e in entries} == {"production"}
    rollback = entries[4]
    assert rollback["before"]["percentage"] == 10
    assert rollback["after"] == {"status": "rolled_back", "stage": -1, "percentage": 0}


def test_in_a_protected_environment_going_past_the_approval_level_needs_a_release_manager(
    admin: httpx.Client, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(admin, approval_above=10)
    editor = client_for(named_token(admin, "eve", "editor"))
    manager = client_for(named_token(admin, "rita", "release_manager"))
    assert act_ok(editor, key, "start")["percentage"] == 1
    assert act_ok(editor, key, "advance")["percentage"] == 10
    version = get_ramp(editor, key)["version"]
    refused = act(editor, key, "advance", version=version)
    assert refused.status_code == 403
    assert "release manager" in refused.json()["error"]["message"]
    assert get_ramp(admin, key)["percentage"] == 10
    assert stored_percentage(admin, key) == 10
    assert act_ok(manager, key, "advance", version=version)["percentage"] == 50
    # going down needs no approval
    assert act_ok(editor, key, "rollback")["percentage"] == 0
    actors = [(e["action"], e["actor"]) for e in audit_entries(admin, key)[1:]]
    assert actors == [
        ("ramp.start", "token:eve"),
        ("ramp.advance", "token:eve"),
        ("ramp.advance", "token:rita"),
        ("ramp.rollback", "token:eve"),
    ]


def test_in_an_unprotected_environment_an_editor_advances_freely(
    admin: httpx.Client, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(admin, ("staging", "production"), approval_above=10)
    editor = client_for(named_token(admin, "eve", "editor"))
    seen = [act_ok(editor, key, "start", environment="staging")["percentage"]]
    seen += [act_ok(editor, key, "advance", environment="staging")["percentage"] for _ in range(3)]
    assert seen == [1, 10, 50, 100]
    assert get_ramp(admin, key, "staging")["status"] == "completed"
    assert get_ramp(admin, key, "production")["status"] == "draft"


def test_a_viewer_cannot_move_a_ramp(admin: httpx.Client, client_for: ClientFactory) -> None:
    key = create_ramped_flag(admin, ("staging",))
    viewer = client_for(named_token(admin, "vic", "viewer"))
    assert get_ramp(viewer, key, "staging")["status"] == "draft"
    for action in ("start", "pause", "rollback"):
        assert act(viewer, key, action, environment="staging").status_code == 403
    act_ok(admin, key, "start", environment="staging")
    version = get_ramp(viewer, key, "staging")["version"]
    for action in ("advance", "pause", "resume", "rollback", "restart"):
        response = act(viewer, key, action, environment="staging", version=version)
        assert response.status_code == 403, action
    ramp = get_ramp(admin, key, "staging")
    assert (ramp["status"], ramp["percentage"], ramp["version"]) == ("running", 1, version)


def test_reapplying_the_original_document_keeps_the_ramps_percentage(
    admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    key = unique_key("checkout")
    original = ramped_flag()
    document = {"flags": {key: original}, "segments": {}}
    applied = admin.put("/api/v1/state", json=document)
    assert applied.status_code == 200, applied.text
    sdk = client_for(make_token(sdk="production"))
    act_ok(admin, key, "start")
    act_ok(admin, key, "advance")
    assert stored_percentage(admin, key) == 10
    again = admin.put("/api/v1/state", json=document)
    assert again.status_code == 200, again.text
    assert again.json()["changes"] == 0
    assert stored_percentage(admin, key) == 10
    # the document's other changes still apply; the ramp keeps only the percentage
    edited = ramped_flag()
    edited["description"] = "edited in git"
    changed = admin.put("/api/v1/state", json={"flags": {key: edited}, "segments": {}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["changes"] == 1
    assert admin.get(f"/api/v1/flags/{key}").json()["description"] == "edited in git"
    assert stored_percentage(admin, key) == 10
    # a flag PUT with the document's 0% does not undo the ramp either
    version = admin.get(f"/api/v1/flags/{key}").headers["etag"]
    put = admin.put(f"/api/v1/flags/{key}", json=original, headers={"If-Match": version})
    assert put.status_code == 200, put.text
    assert stored_percentage(admin, key) == 10
    wait_for_sdk_percentage(sdk, key, 10)
    ramp = get_ramp(admin, key)
    assert (ramp["status"], ramp["stage"], ramp["percentage"]) == ("running", 1, 10)


def test_a_draft_ramp_does_not_own_the_percentage(admin: httpx.Client) -> None:
    key = create_ramped_flag(admin)
    version = admin.get(f"/api/v1/flags/{key}").headers["etag"]
    response = admin.put(
        f"/api/v1/flags/{key}", json=ramped_flag(percentage=3), headers={"If-Match": version}
    )
    assert response.status_code == 200, response.text
    assert stored_percentage(admin, key) == 3


def test_the_ramp_list_shows_started_ramps(admin: httpx.Client) -> None:
    started, draft = unique_key("started"), unique_key("draft")
    create_flag(admin, started, ramped_flag(("staging", "production")))
    create_flag(admin, draft, ramped_flag())
    assert admin.get("/api/v1/ramps").json() == []
    act_ok(admin, started, "start", environment="staging", reason="first look")
    act_ok(admin, started, "advance", environment="staging")
    act_ok(admin, started, "start")
    act_ok(admin, started, "pause")
    listed = admin.get("/api/v1/ramps").json()
    assert [(r["flag"], r["environment"], r["status"], r["percentage"]) for r in listed] == [
        (started, "production", "paused", 1),
        (started, "staging", "running", 10),
    ]
    assert all(r["version"] >= 1 for r in listed)


def test_a_person_cannot_advance_past_a_breached_guard(
    admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    # Given a running ramp whose exposed group fails far above its 1% limit
    key = create_ramped_flag(admin)
    started = act_ok(admin, key, "start")
    sdk = client_for(make_token(sdk="production"))
    post_counts(sdk, traffic(key, 1, exposed=(200, 120)), parse_time(started["stage_started_at"]))
    assert any(r["status"] == "breach" for r in get_ramp(admin, key)["readings"])
    # When a person tries to advance anyway
    refused = act(admin, key, "advance", version=started["version"])
    # Then it is refused and nothing moved
    assert refused.status_code == 409
    assert "breached" in refused.json()["error"]["message"]
    assert stored_percentage(admin, key) == 1


def test_a_plan_with_empty_guards_or_zero_min_samples_is_refused_with_its_path(
    admin: httpx.Client,
) -> None:
    key = unique_key("checkout")
    response = admin.put(f"/api/v1/flags/{key}", json=ramped_flag(guards=[], min_samples=0))
    assert response.status_code == 422, response.text
    problems = {p["path"]: p["message"] for p in response.json()["error"]["problems"]}
    assert "at least one guard" in problems["environments.production.ramp.guards"]
    assert "at least 1" in problems["environments.production.ramp.min_samples"]
    assert admin.get(f"/api/v1/flags/{key}").status_code == 404
    # the same through a whole document
    document = {"flags": {key: ramped_flag(guards=[])}, "segments": {}}
    applied = admin.put("/api/v1/state", json=document)
    assert applied.status_code == 422, applied.text
    paths = [p["path"] for p in applied.json()["error"]["problems"]]
    assert paths == [f"flags.{key}.environments.production.ramp.guards"]


def test_the_ramp_shows_the_default_guards_of_a_plan_that_names_none(
    admin: httpx.Client,
) -> None:
    key = unique_key("checkout")
    definition = ramped_flag()
    del definition["environments"]["production"]["ramp"]["guards"]
    create_flag(admin, key, definition)
    ramp = get_ramp(admin, key)
    assert [(r["guard"], r["kind"]) for r in ramp["readings"]] == [
        ("error_rate-relative", "relative"),
        ("error_rate", "absolute"),
        ("sample-ratio", "srm"),
    ]
    stored = admin.get(f"/api/v1/flags/{key}").json()
    assert stored["environments"]["production"]["ramp"]["guards"] == [
        {"kind": "relative", "metric": "error_rate", "max": 0.5},
        {"metric": "error_rate", "max": 0.2},
    ]


def test_each_guard_shows_its_interval_against_the_threshold_and_why_the_stage_holds(
    admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    key = create_ramped_flag(
        admin,
        min_stage_duration="0s",
        min_samples=10,
        guards=[{"kind": "relative", "metric": "error_rate", "max": 0.5}],
    )
    started = act_ok(admin, key, "start")
    sdk = client_for(make_token(sdk="production"))
    post_counts(
        sdk, split_traffic(key, 1, 20_000, errors=0.01), parse_time(started["stage_started_at"])
    )
    ramp = get_ramp(admin, key)
    reading = ramp["readings"][0]
    assert reading["status"] == "inconclusive", reading
    # an always-valid interval of exposed/unexposed around "the same", wider than the limit
    assert reading["lower"] is not None
    assert reading["lower"] < 1.5
    assert reading["upper"] is None or reading["upper"] > 1.5
    assert reading["limit"] == 1.5
    assert "exposed vs unexposed" in reading["interval"]
    assert "limit +50%" in reading["interval"]
    # and in words, why the stage holds
    assert ramp["next_action"] == "hold"
    assert "error_rate-relative" in ramp["holding"]
    assert "more at the current traffic to show error_rate < 50%" in ramp["holding"]
    assert reading["needs"] > 0


def test_a_plan_stored_with_no_guards_is_watched_by_the_default_set(
    admin: httpx.Client, database_url: str
) -> None:
    # Given a plan stored by an earlier version, before `guards: []` was refused
    key = create_ramped_flag(admin)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        definition = connection.execute(
            text("SELECT definition FROM flags WHERE key = :key"), {"key": key}
        ).scalar_one()
        definition["environments"]["production"]["ramp"]["guards"] = []
        connection.execute(
            text("UPDATE flags SET definition = :definition WHERE key = :key"),
            {"definition": json.dumps(definition), "key": key},
        )
    engine.dispose()
    # Then its ramp is read with the default guards, not with none
    ramp = get_ramp(admin, key)
    assert [r["guard"] for r in ramp["readings"]] == [
        "error_rate-relative",
        "error_rate",
        "sample-ratio",
    ]
