"""The admin API for flags: versions, validation, kill switch, and nothing changed on error."""

from __future__ import annotations

import httpx
import pytest

from tests.server.documents import boolean_flag


def audit_actions(admin: httpx.Client, flag: str) -> list[str]:
    return [
        e["action"] for e in admin.get("/api/v1/audit", params={"flag": flag}).json()["entries"]
    ]


def test_a_flag_is_created_read_back_and_versioned(admin: httpx.Client) -> None:
    created = admin.put("/api/v1/flags/new-checkout", json=boolean_flag(10))
    assert created.status_code == 201
    assert created.headers["etag"] == '"1"'
    read = admin.get("/api/v1/flags/new-checkout")
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
    assert read.json()["environments"]["production"]["fallthrough"]["rollout"]["percentage"] == 10
    # defaults are made explicit in the stored definition
    assert (
        read.json()["environments"]["production"]["fallthrough"]["rollout"]["bucket_by"]
        == "targetingKey"
    )


def test_replacing_needs_the_current_version(admin: httpx.Client) -> None:
    admin.put("/api/v1/flags/f", json=boolean_flag(10))
    missing = admin.put("/api/v1/flags/f", json=boolean_flag(20))
    assert missing.status_code == 428
    stale = admin.put("/api/v1/flags/f", json=boolean_flag(20), headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "version_mismatch"
    current = admin.put("/api/v1/flags/f", json=boolean_flag(20), headers={"If-Match": '"1"'})
    assert current.status_code == 200
    assert current.headers["etag"] == '"2"'
    # the refused writes changed nothing and left no audit entry
    assert audit_actions(admin, "f") == ["flag.update", "flag.create"]


@pytest.mark.parametrize("tag", ['"stale-version"', "*", 'W/"x"', '"1", "2"', '"' + "9" * 40 + '"'])
def test_an_entity_tag_that_is_not_the_current_version_fails_the_precondition_with_412(
    admin: httpx.Client, tag: str
) -> None:
    admin.put("/api/v1/flags/f", json=boolean_flag(10))
    for write in (
        lambda: admin.put("/api/v1/flags/f", json=boolean_flag(20), headers={"If-Match": tag}),
        lambda: admin.delete("/api/v1/flags/f", headers={"If-Match": tag}),
        lambda: admin.put("/api/v1/flags/g", json=boolean_flag(20), headers={"If-Match": tag}),
    ):
        refused = write()
        assert refused.status_code == 412, refused.text
        assert refused.json()["error"]["code"] == "version_mismatch"
    assert audit_actions(admin, "f") == ["flag.create"]
    assert admin.get("/api/v1/flags/g").status_code == 404


def test_writing_the_same_definition_again_changes_nothing(admin: httpx.Client) -> None:
    admin.put("/api/v1/flags/f", json=boolean_flag(10))
    again = admin.put("/api/v1/flags/f", json=boolean_flag(10), headers={"If-Match": '"1"'})
    assert again.status_code == 200
    assert again.headers["etag"] == '"1"'
    assert audit_actions(admin, "f") == ["flag.create"]


def test_an_invalid_flag_gets_422_with_every_problem_and_nothing_is_written(
    admin: httpx.Client,
) -> None:
    body = boolean_flag(10.0001)
    body["environments"]["production"]["rules"][0]["when"][0]["op"] = "eqq"
    body["environments"]["qa"] = {"enabled": True}
    response = admin.put("/api/v1/flags/f", json=body)
    assert response.status_code == 422
    problems = {
        (p["path"], p["message"].split(";")[0]) for p in response.json()["error"]["problems"]
    }
    assert ("environments.production.rules[0].when[0].op", "unknown operator 'eqq'") in problems
    assert (
        "environments.production.fallthrough.rollout.percentage",
        "percentage 10.0001 has more than 3 decimals",
    ) in problems
    assert ("environments.qa", "unknown environment 'qa'") in problems
    assert admin.get("/api/v1/flags/f").status_code == 404
    assert audit_actions(admin, "f") == []


def test_a_body_that_is_not_an_object_is_refused_with_a_path(admin: httpx.Client) -> None:
    response = admin.put("/api/v1/flags/f", json=[1, 2])
    assert response.status_code == 422
    assert response.json()["error"]["problems"]


def test_the_kill_switch_serves_the_off_variant_and_is_audited(admin: httpx.Client) -> None:
    admin.put("/api/v1/flags/f", json=boolean_flag(100))
    response = admin.put(
        "/api/v1/flags/f/environments/production/enabled",
        json={"enabled": False},
        headers={"X-Graylane-Reason": "errors spiking"},
    )
    assert response.status_code == 200
    assert response.json()["enabled"] is False
    entry = admin.get("/api/v1/audit", params={"flag": "f"}).json()["entries"][0]
    assert entry["action"] == "flag.disable"
    assert entry["reason"] == "errors spiking"
    assert entry["environment"] == "production"
    assert {"path": "environments.production.enabled", "before": True, "after": False} in entry[
        "changes"
    ]
    evaluated = admin.post(
        "/api/v1/evaluate",
        json={"environment": "production", "flag": "f", "context": {"targetingKey": "u"}},
    ).json()
    assert evaluated["results"][0]["reason"] == "DISABLED"


def test_one_environment_can_be_replaced_with_paths_relative_to_it(admin: httpx.Client) -> None:
    admin.put("/api/v1/flags/f", json=boolean_flag(10))
    bad = admin.put(
        "/api/v1/flags/f/environments/staging",
        json={"enabled": True, "fallthrough": {"variant": "maybe"}},
        headers={"If-Match": '"1"'},
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["problems"][0]["path"] == "fallthrough.variant"
    good = admin.put(
        "/api/v1/flags/f/environments/staging",
        json={"enabled": True, "fallthrough": {"variant": "on"}},
        headers={"If-Match": '"1"'},
    )
    assert good.status_code == 200
    assert admin.get("/api/v1/flags/f/environments/staging").json()["fallthrough"] == {
        "variant": "on"
    }


def test_deleting_a_flag_is_audited_and_refuses_a_stale_version(admin: httpx.Client) -> None:
    admin.put("/api/v1/flags/f", json=boolean_flag(10))
    assert admin.delete("/api/v1/flags/f", headers={"If-Match": '"9"'}).status_code == 412
    assert admin.delete("/api/v1/flags/f").status_code == 204
    assert admin.get("/api/v1/flags/f").status_code == 404
    assert audit_actions(admin, "f") == ["flag.delete", "flag.create"]


def test_flags_are_listed_with_a_summary_and_filters(admin: httpx.Client) -> None:
    tagged = boolean_flag(25) | {"tags": ["payments"]}
    admin.put("/api/v1/flags/checkout", json=tagged)
    admin.put("/api/v1/flags/search", json=boolean_flag(5))
    listed = admin.get("/api/v1/flags").json()["flags"]
    assert [f["key"] for f in listed] == ["checkout", "search"]
    assert listed[0]["environments"]["production"] == {
        "enabled": True,
        "rollout": 25,
        "ramp": False,
        "rules": 1,
    }
    assert [
        f["key"] for f in admin.get("/api/v1/flags", params={"tag": "payments"}).json()["flags"]
    ] == ["checkout"]
    assert [f["key"] for f in admin.get("/api/v1/flags", params={"q": "sear"}).json()["flags"]] == [
        "search"
    ]
