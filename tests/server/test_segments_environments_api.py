"""Segments (versioned, validated, refused while in use) and environments (listed by all,
created and changed by admins)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.server.conftest import DEFAULT_ENVIRONMENTS, TokenFactory
from tests.server.documents import boolean_flag
from tests.support.servers import wait_until

BETA = {
    "description": "Beta testers",
    "include": ["user-1", "user-2"],
    "exclude": ["user-9"],
    "when": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
}


def audit_log(admin: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    """Every entry matching the filters, newest first, across all pages."""
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500, **filters}
    while True:
        response = admin.get("/api/v1/audit", params=params)
        assert response.status_code == 200, response.text
        entries += response.json()["entries"]
        if response.json()["next_before"] is None:
            return entries
        params["before"] = response.json()["next_before"]


def segment_actions(admin: httpx.Client, key: str) -> list[str]:
    return [e["action"] for e in audit_log(admin, target_type="segment", target=key)]


def create_segment(admin: httpx.Client, key: str, definition: dict[str, Any]) -> None:
    response = admin.put(f"/api/v1/segments/{key}", json=definition)
    assert response.status_code == 201, response.text


def flag_using(segment: str, env: str = "production") -> dict[str, Any]:
    flag = boolean_flag(0, env=env)
    flag["environments"][env]["rules"].append(
        {"name": "segment", "segment": segment, "serve": {"variant": "on"}}
    )
    return flag


def create_flag(admin: httpx.Client, key: str, definition: dict[str, Any]) -> None:
    response = admin.put(f"/api/v1/flags/{key}", json=definition)
    assert response.status_code == 201, response.text


def problems_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {p["path"]: p["message"] for p in response.json()["error"]["problems"]}


def environment_version(admin: httpx.Client, environment: str) -> int:
    version: int = admin.get(f"/api/v1/environments/{environment}").json()["config_version"]
    return version


def sdk_config(sdk: httpx.Client) -> httpx.Response:
    response = sdk.get("/api/v1/sdk/config")
    assert response.status_code == 200, response.text
    return response


def caught_up(admin: httpx.Client, sdk: httpx.Client, environment: str) -> httpx.Response:
    """The SDK config once the server serves the environment's current version."""
    version = environment_version(admin, environment)
    wait_until(
        lambda: int(sdk_config(sdk).headers["x-graylane-version"]) == version,
        what=f"{environment} config version {version} to be served",
    )
    return sdk_config(sdk)


# --- segments: writing -----------------------------------------------------------------


def test_a_segment_is_created_read_back_and_versioned(admin: httpx.Client) -> None:
    created = admin.put("/api/v1/segments/beta-testers", json=BETA)
    assert created.status_code == 201
    assert created.headers["etag"] == '"1"'
    assert created.json() == BETA
    read = admin.get("/api/v1/segments/beta-testers")
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
    assert read.json() == BETA
    assert segment_actions(admin, "beta-testers") == ["segment.create"]
    assert admin.get("/api/v1/segments/nobody").status_code == 404


def test_replacing_a_segment_needs_its_current_version(admin: httpx.Client) -> None:
    create_segment(admin, "beta", BETA)
    changed = BETA | {"include": ["user-3"]}

    missing = admin.put("/api/v1/segments/beta", json=changed)
    assert missing.status_code == 428
    assert missing.json()["error"]["code"] == "version_required"
    stale = admin.put("/api/v1/segments/beta", json=changed, headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "version_mismatch"
    assert stale.headers["etag"] == '"1"'
    # the refused writes changed nothing
    assert admin.get("/api/v1/segments/beta").json() == BETA
    assert segment_actions(admin, "beta") == ["segment.create"]

    current = admin.put("/api/v1/segments/beta", json=changed, headers={"If-Match": '"1"'})
    assert current.status_code == 200
    assert current.headers["etag"] == '"2"'
    assert admin.get("/api/v1/segments/beta").json()["include"] == ["user-3"]
    assert segment_actions(admin, "beta") == ["segment.update", "segment.create"]


def test_writing_the_same_segment_again_changes_nothing(admin: httpx.Client) -> None:
    create_segment(admin, "beta", BETA)
    again = admin.put("/api/v1/segments/beta", json=BETA, headers={"If-Match": '"1"'})
    assert again.status_code == 200
    assert again.headers["etag"] == '"1"'
    assert segment_actions(admin, "beta") == ["segment.create"]


def test_a_segment_cannot_be_created_at_a_version(admin: httpx.Client) -> None:
    response = admin.put("/api/v1/segments/new", json=BETA, headers={"If-Match": '"1"'})
    assert response.status_code == 412
    assert admin.get("/api/v1/segments/new").status_code == 404


def test_an_invalid_segment_gets_422_with_paths_relative_to_it(admin: httpx.Client) -> None:
    body = {
        "include": "user-1",
        "when": [
            {"attribute": "plan", "op": "in", "values": ["pro"]},
            {"attribute": "age", "op": "eqq", "values": [18]},
        ],
        "colour": "red",
    }
    problems = problems_of(admin.put("/api/v1/segments/beta", json=body))
    assert set(problems) >= {"include", "when[1].op", "colour"}
    assert "unknown operator 'eqq'" in problems["when[1].op"]
    assert not any(path.startswith("segments") for path in problems)
    assert admin.get("/api/v1/segments/beta").status_code == 404
    assert segment_actions(admin, "beta") == []


def test_an_invalid_replacement_leaves_the_segment_as_it_was(admin: httpx.Client) -> None:
    create_segment(admin, "beta", BETA)
    bad = BETA | {"exclude": [1, 2]}
    response = admin.put("/api/v1/segments/beta", json=bad, headers={"If-Match": '"1"'})
    assert response.status_code == 422
    assert all(p["path"].startswith("exclude") for p in response.json()["error"]["problems"])
    read = admin.get("/api/v1/segments/beta")
    assert read.headers["etag"] == '"1"'
    assert read.json() == BETA
    assert segment_actions(admin, "beta") == ["segment.create"]


def test_a_segment_key_must_be_a_valid_key(admin: httpx.Client) -> None:
    response = admin.put("/api/v1/segments/-beta", json=BETA)
    assert response.status_code == 422
    assert admin.get("/api/v1/segments").json()["segments"] == []


def test_a_viewer_cannot_write_segments(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    create_segment(admin, "beta", BETA)
    viewer = client_for(make_token(role="viewer"))
    assert viewer.get("/api/v1/segments/beta").status_code == 200
    assert viewer.put("/api/v1/segments/other", json=BETA).status_code == 403
    assert viewer.delete("/api/v1/segments/beta").status_code == 403
    assert admin.get("/api/v1/segments/other").status_code == 404
    assert admin.get("/api/v1/segments/beta").status_code == 200


# --- segments: listing and deleting ----------------------------------------------------


def test_the_listing_shows_which_flags_use_each_segment(admin: httpx.Client) -> None:
    create_segment(admin, "beta", BETA)
    create_segment(admin, "unused", {"include": ["user-5"]})
    create_flag(admin, "checkout", flag_using("beta", env="production"))
    create_flag(admin, "search", flag_using("beta", env="staging"))
    create_flag(admin, "plain", boolean_flag(5))

    listed = admin.get("/api/v1/segments").json()["segments"]

    assert [s["key"] for s in listed] == ["beta", "unused"]
    beta, unused = listed
    assert sorted(beta["used_by"]) == ["checkout", "search"]
    assert beta["description"] == "Beta testers"
    assert beta["version"] == 1
    assert unused["used_by"] == []


def test_a_segment_a_flag_uses_cannot_be_deleted(admin: httpx.Client) -> None:
    create_segment(admin, "beta", BETA)
    create_flag(admin, "checkout", flag_using("beta"))
    audit = audit_log(admin)

    for headers in ({}, {"If-Match": '"1"'}):
        refused = admin.delete("/api/v1/segments/beta", headers=headers)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "conflict"
        assert "checkout" in refused.json()["error"]["message"]

    read = admin.get("/api/v1/segments/beta")
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
    assert read.json() == BETA
    assert admin.get("/api/v1/flags/checkout").headers["etag"] == '"1"'
    assert audit_log(admin) == audit


def test_a_segment_no_flag_uses_is_deleted_and_audited(admin: httpx.Client) -> None:
    create_segment(admin, "beta", BETA)
    create_flag(admin, "checkout", flag_using("beta"))
    create_segment(admin, "old", {"include": ["user-5"]})

    stale = admin.delete("/api/v1/segments/old", headers={"If-Match": '"3"'})
    assert stale.status_code == 412
    deleted = admin.delete("/api/v1/segments/old", headers={"X-Graylane-Reason": "campaign over"})

    assert deleted.status_code == 204
    assert admin.get("/api/v1/segments/old").status_code == 404
    assert [s["key"] for s in admin.get("/api/v1/segments").json()["segments"]] == ["beta"]
    entry = audit_log(admin, target_type="segment", target="old")[0]
    assert entry["action"] == "segment.delete"
    assert entry["actor"] == "token:bootstrap"
    assert entry["reason"] == "campaign over"
    assert entry["before"] == {"include": ["user-5"]}
    assert entry["after"] is None
    assert admin.delete("/api/v1/segments/old").status_code == 404


def test_a_segment_can_be_deleted_once_no_flag_uses_it(admin: httpx.Client) -> None:
    create_segment(admin, "beta", BETA)
    create_flag(admin, "checkout", flag_using("beta"))
    assert admin.delete("/api/v1/segments/beta").status_code == 409
    assert (
        admin.put(
            "/api/v1/flags/checkout", json=boolean_flag(0), headers={"If-Match": '"1"'}
        ).status_code
        == 200
    )
    assert admin.get("/api/v1/segments").json()["segments"][0]["used_by"] == []
    assert admin.delete("/api/v1/segments/beta").status_code == 204
    assert segment_actions(admin, "beta") == ["segment.delete", "segment.create"]


# --- segments: reaching SDKs -----------------------------------------------------------


def test_a_segment_change_reaches_the_sdk_config(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    create_segment(admin, "beta", BETA)
    create_flag(admin, "checkout", flag_using("beta"))
    sdk = client_for(make_token(sdk="production"))
    before = caught_up(admin, sdk, "production")
    assert before.json()["segments"]["beta"]["include"] == ["user-1", "user-2"]

    response = admin.put(
        "/api/v1/segments/beta",
        json=BETA | {"include": ["user-42"]},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200

    after = caught_up(admin, sdk, "production")
    assert after.headers["etag"] != before.headers["etag"]
    assert after.json()["segments"]["beta"]["include"] == ["user-42"]
    assert (
        sdk.get("/api/v1/sdk/config", headers={"If-None-Match": before.headers["etag"]})
    ).status_code == 200
    assert (
        sdk.get("/api/v1/sdk/config", headers={"If-None-Match": after.headers["etag"]})
    ).status_code == 304


def test_a_new_and_a_deleted_segment_reach_the_sdk_config(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    sdk = client_for(make_token(sdk="staging"))
    empty = caught_up(admin, sdk, "staging")
    create_segment(admin, "beta", BETA)
    with_segment = caught_up(admin, sdk, "staging")
    assert with_segment.headers["etag"] != empty.headers["etag"]
    assert "beta" in with_segment.json()["segments"]

    assert admin.delete("/api/v1/segments/beta").status_code == 204

    without = caught_up(admin, sdk, "staging")
    assert without.headers["etag"] != with_segment.headers["etag"]
    assert without.json()["segments"] == {}


# --- environments ----------------------------------------------------------------------


def environments(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/api/v1/environments")
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["environments"]
    return listed


def test_the_three_default_environments_exist_and_production_is_protected(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    viewer = client_for(make_token(role="viewer"))
    listed = environments(viewer)
    assert [e["key"] for e in listed] == list(DEFAULT_ENVIRONMENTS)
    assert {e["key"]: e["protected"] for e in listed} == {
        "development": False,
        "staging": False,
        "production": True,
    }
    assert all(e["name"] for e in listed)
    production = viewer.get("/api/v1/environments/production")
    assert production.status_code == 200
    assert production.json()["protected"] is True
    assert viewer.get("/api/v1/environments/qa").status_code == 404


def test_an_admin_creates_an_environment_and_flags_can_then_be_configured_for_it(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    before = admin.put("/api/v1/flags/early", json=boolean_flag(10, env="qa"))
    assert before.status_code == 422
    assert "environments.qa" in problems_of(before)

    created = admin.post("/api/v1/environments", json={"key": "qa", "name": "QA"})

    assert created.status_code == 201, created.text
    assert created.json()["key"] == "qa"
    assert created.json()["name"] == "QA"
    assert created.json()["protected"] is False
    assert [e["key"] for e in environments(admin)] == [*DEFAULT_ENVIRONMENTS, "qa"]
    assert admin.get("/api/v1/environments/qa").json()["name"] == "QA"
    entry = audit_log(admin, target_type="environment", target="qa")[0]
    assert entry["action"] == "environment.create"
    assert entry["actor"] == "token:bootstrap"
    assert entry["after"]["name"] == "QA"

    flag = admin.put("/api/v1/flags/checkout", json=boolean_flag(10, env="qa"))
    assert flag.status_code == 201, flag.text
    assert admin.get("/api/v1/flags/checkout/environments/qa").status_code == 200
    sdk = client_for(make_token(sdk="qa"))
    config = caught_up(admin, sdk, "qa")
    assert "qa" in config.json()["flags"]["checkout"]["environments"]


def test_a_protected_environment_can_be_created(admin: httpx.Client) -> None:
    created = admin.post("/api/v1/environments", json={"key": "eu-production", "protected": True})
    assert created.status_code == 201
    assert created.json()["protected"] is True
    assert created.json()["name"]


def test_an_environment_key_is_unique(admin: httpx.Client) -> None:
    assert admin.post("/api/v1/environments", json={"key": "qa"}).status_code == 201
    audit = audit_log(admin)
    for key in ("qa", "production"):
        duplicate = admin.post("/api/v1/environments", json={"key": key, "name": "Again"})
        assert duplicate.status_code == 409, key
        assert duplicate.json()["error"]["code"] == "conflict"
    assert [e["key"] for e in environments(admin)] == [*DEFAULT_ENVIRONMENTS, "qa"]
    assert admin.get("/api/v1/environments/production").json()["name"] != "Again"
    assert audit_log(admin) == audit


@pytest.mark.parametrize("key", ["bad key", "-qa", "qa/eu", "", "x" * 129, "ümlaut"])
def test_a_bad_environment_key_gets_422(admin: httpx.Client, key: str) -> None:
    audit = audit_log(admin)
    response = admin.post("/api/v1/environments", json={"key": key})
    assert "key" in problems_of(response)
    assert [e["key"] for e in environments(admin)] == list(DEFAULT_ENVIRONMENTS)
    assert audit_log(admin) == audit


@pytest.mark.parametrize("role", ["viewer", "editor", "release_manager"])
def test_only_an_admin_creates_or_changes_environments(
    admin: httpx.Client,
    make_token: TokenFactory,
    client_for: Callable[[str], httpx.Client],
    role: str,
) -> None:
    client = client_for(make_token(role=role))
    assert client.post("/api/v1/environments", json={"key": "qa"}).status_code == 403
    patched = client.patch("/api/v1/environments/production", json={"protected": False})
    assert patched.status_code == 403
    assert [e["key"] for e in environments(admin)] == list(DEFAULT_ENVIRONMENTS)
    assert admin.get("/api/v1/environments/production").json()["protected"] is True
    assert audit_log(admin, target_type="environment") == []


def test_an_sdk_token_cannot_touch_environments(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    sdk = client_for(make_token(sdk="production"))
    assert sdk.get("/api/v1/environments").status_code == 403
    assert sdk.post("/api/v1/environments", json={"key": "qa"}).status_code == 403


def test_patch_changes_the_name_and_protection_and_is_audited(admin: httpx.Client) -> None:
    patched = admin.patch(
        "/api/v1/environments/staging", json={"name": "Pre-production", "protected": True}
    )

    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Pre-production"
    assert patched.json()["protected"] is True
    read = admin.get("/api/v1/environments/staging").json()
    assert read["name"] == "Pre-production"
    assert read["protected"] is True
    entries = audit_log(admin, target_type="environment", target="staging")
    assert [e["action"] for e in entries] == ["environment.update"]
    entry = entries[0]
    assert entry["actor"] == "token:bootstrap"
    assert entry["environment"] == "staging"
    assert entry["before"]["protected"] is False
    assert entry["after"]["protected"] is True
    assert {"path": "protected", "before": False, "after": True} in entry["changes"]
    assert {"path": "name", "before": "Staging", "after": "Pre-production"} in entry["changes"]


def test_patch_changes_only_what_it_names(admin: httpx.Client) -> None:
    unprotected = admin.patch("/api/v1/environments/production", json={"protected": False})
    assert unprotected.status_code == 200
    assert unprotected.json()["protected"] is False
    assert unprotected.json()["name"] == "Production"
    renamed = admin.patch("/api/v1/environments/production", json={"name": "Live"})
    assert renamed.json() == unprotected.json() | {"name": "Live"}
    entry = audit_log(admin, target_type="environment", target="production")[0]
    assert entry["changes"] == [{"path": "name", "before": "Production", "after": "Live"}]


def test_a_patch_that_changes_nothing_is_not_audited(admin: httpx.Client) -> None:
    same = admin.patch("/api/v1/environments/production", json={"protected": True})
    assert same.status_code == 200
    assert admin.patch("/api/v1/environments/production", json={}).status_code == 200
    assert audit_log(admin, target_type="environment") == []


def test_a_bad_patch_is_refused(admin: httpx.Client) -> None:
    assert admin.patch("/api/v1/environments/qa", json={"name": "QA"}).status_code == 404
    unknown_field = admin.patch("/api/v1/environments/staging", json={"key": "renamed"})
    assert "key" in problems_of(unknown_field)
    wrong_type = admin.patch("/api/v1/environments/staging", json={"protected": "maybe"})
    assert "protected" in problems_of(wrong_type)
    assert admin.get("/api/v1/environments/staging").json()["protected"] is False
    assert audit_log(admin, target_type="environment") == []
