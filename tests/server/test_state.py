"""`PUT /api/v1/state` applies a whole flag document idempotently, all or nothing, and
`GET /api/v1/state` exports one that applies back unchanged."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.server.conftest import TokenFactory
from tests.server.documents import boolean_flag, document
from tests.support.servers import wait_until

FLAG_KEYS = ["button-color", "new-checkout", "page-size", "ratio", "theme"]


def audit_log(admin: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    """Every audit entry (newest first), across all pages."""
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500, **filters}
    while True:
        page = admin.get("/api/v1/audit", params=params)
        assert page.status_code == 200, page.text
        entries += page.json()["entries"]
        if page.json()["next_before"] is None:
            return entries
        params["before"] = page.json()["next_before"]


def newer_than(admin: httpx.Client, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The audit entries written after the ones in `seen`."""
    last = max((e["id"] for e in seen), default=0)
    return [e for e in audit_log(admin) if e["id"] > last]


def flag_etags(admin: httpx.Client) -> dict[str, str]:
    return {key: admin.get(f"/api/v1/flags/{key}").headers["etag"] for key in FLAG_KEYS}


def apply(admin: httpx.Client, doc: dict[str, Any], **params: Any) -> httpx.Response:
    return admin.put("/api/v1/state", json=doc, params=params)


def applied(admin: httpx.Client, doc: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = apply(admin, doc, **params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def exported(admin: httpx.Client) -> dict[str, Any]:
    response = admin.get("/api/v1/state")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def problems_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {p["path"]: p["message"] for p in response.json()["error"]["problems"]}


# --- applying --------------------------------------------------------------------------


def test_applying_a_document_creates_every_flag_and_segment(admin: httpx.Client) -> None:
    result = applied(admin, document())
    assert result["dry_run"] is False
    assert result["changes"] == 6
    assert sorted(result["flags"]["created"]) == FLAG_KEYS
    assert result["flags"]["updated"] == {}
    assert result["flags"]["deleted"] == []
    assert result["segments"]["created"] == ["beta-testers"]
    for key in FLAG_KEYS:
        read = admin.get(f"/api/v1/flags/{key}")
        assert read.status_code == 200
        assert read.headers["etag"] == '"1"'
    assert admin.get("/api/v1/flags/theme").json()["variants"]["dark"] == {
        "bg": "black",
        "fg": "white",
    }
    segment = admin.get("/api/v1/segments/beta-testers")
    assert segment.status_code == 200
    assert segment.json()["include"] == ["user-1", "user-2"]


def test_applying_the_same_document_again_changes_nothing(admin: httpx.Client) -> None:
    applied(admin, document())
    etags = flag_etags(admin)
    segment_etag = admin.get("/api/v1/segments/beta-testers").headers["etag"]
    audit = audit_log(admin)

    again = applied(admin, document())

    assert again["changes"] == 0
    assert again["flags"] == {"created": [], "updated": {}, "deleted": [], "unchanged": 5}
    assert again["segments"] == {"created": [], "updated": {}, "deleted": [], "unchanged": 1}
    assert flag_etags(admin) == etags
    assert admin.get("/api/v1/segments/beta-testers").headers["etag"] == segment_etag
    assert audit_log(admin) == audit


def test_defaults_spelled_out_or_left_implicit_are_the_same_document(
    admin: httpx.Client,
) -> None:
    applied(admin, document())
    explicit = document()
    rollout = explicit["flags"]["new-checkout"]["environments"]["production"]["fallthrough"]
    rollout["rollout"]["bucket_by"] = "targetingKey"
    explicit["flags"]["button-color"]["environments"]["production"]["rules"] = []
    assert applied(admin, explicit)["changes"] == 0


def test_applying_changes_reports_them_path_by_path(admin: httpx.Client) -> None:
    applied(admin, document())
    changed = document()
    changed["flags"]["new-checkout"] = boolean_flag(25)
    changed["segments"]["beta-testers"]["include"] = ["user-1", "user-2", "user-3"]

    result = applied(admin, changed)

    assert result["changes"] == 2
    assert result["flags"]["updated"] == {
        "new-checkout": [
            {
                "path": "environments.production.fallthrough.rollout.percentage",
                "before": 10,
                "after": 25,
            }
        ]
    }
    assert result["flags"]["unchanged"] == 4
    assert result["segments"]["updated"] == {
        "beta-testers": [
            {
                "path": "include",
                "before": ["user-1", "user-2"],
                "after": ["user-1", "user-2", "user-3"],
            }
        ]
    }
    read = admin.get("/api/v1/flags/new-checkout")
    assert read.headers["etag"] == '"2"'
    assert read.json()["environments"]["production"]["fallthrough"]["rollout"]["percentage"] == 25
    assert admin.get("/api/v1/flags/ratio").headers["etag"] == '"1"'


# --- dry run ---------------------------------------------------------------------------


def test_a_dry_run_on_an_empty_server_plans_every_creation_and_writes_nothing(
    admin: httpx.Client,
) -> None:
    audit = audit_log(admin)

    result = applied(admin, document(), dry_run="true")

    assert result["dry_run"] is True
    assert result["changes"] == 6
    assert sorted(result["flags"]["created"]) == FLAG_KEYS
    assert result["segments"]["created"] == ["beta-testers"]
    for key in FLAG_KEYS:
        assert admin.get(f"/api/v1/flags/{key}").status_code == 404
    assert admin.get("/api/v1/segments/beta-testers").status_code == 404
    assert exported(admin) == {"flags": {}, "segments": {}}
    assert audit_log(admin) == audit
    assert audit_log(admin, target_type="flag") == []
    assert audit_log(admin, target_type="segment") == []


def test_a_dry_run_reports_creations_updates_and_deletions_and_writes_nothing(
    admin: httpx.Client,
) -> None:
    applied(admin, document())
    before = exported(admin)
    etags = flag_etags(admin)
    audit = audit_log(admin)
    planned = document()
    planned["flags"]["new-checkout"] = boolean_flag(25)
    planned["flags"]["button-color"]["environments"]["staging"]["enabled"] = False
    del planned["flags"]["ratio"]
    planned["flags"]["extra"] = boolean_flag(1)

    result = applied(admin, planned, dry_run="true")

    assert result["dry_run"] is True
    assert result["changes"] == 4
    assert result["flags"]["created"] == ["extra"]
    assert result["flags"]["deleted"] == ["ratio"]
    assert result["flags"]["updated"] == {
        "new-checkout": [
            {
                "path": "environments.production.fallthrough.rollout.percentage",
                "before": 10,
                "after": 25,
            }
        ],
        "button-color": [
            {"path": "environments.staging.enabled", "before": True, "after": False},
        ],
    }
    assert result["flags"]["unchanged"] == 2
    assert result["segments"]["unchanged"] == 1
    # nothing was written
    assert exported(admin) == before
    assert flag_etags(admin) == etags
    assert admin.get("/api/v1/flags/extra").status_code == 404
    assert audit_log(admin) == audit
    # and the plan is what applying then does
    real = applied(admin, planned)
    assert real | {"dry_run": True} == result


# --- pruning ---------------------------------------------------------------------------


def test_a_flag_the_document_leaves_out_is_deleted(admin: httpx.Client) -> None:
    applied(admin, document())
    without = document()
    del without["flags"]["ratio"]

    result = applied(admin, without)

    assert result["changes"] == 1
    assert result["flags"]["deleted"] == ["ratio"]
    assert admin.get("/api/v1/flags/ratio").status_code == 404
    assert "ratio" not in exported(admin)["flags"]
    assert [e["action"] for e in audit_log(admin, flag="ratio")] == ["flag.delete", "flag.create"]


def test_a_segment_the_document_leaves_out_is_deleted(admin: httpx.Client) -> None:
    with_unused = document()
    with_unused["segments"]["unused"] = {"include": ["user-5"]}
    applied(admin, with_unused)

    result = applied(admin, document())

    assert result["segments"]["deleted"] == ["unused"]
    assert admin.get("/api/v1/segments/unused").status_code == 404
    assert admin.get("/api/v1/segments/beta-testers").status_code == 200


def test_without_prune_what_the_document_leaves_out_stays(admin: httpx.Client) -> None:
    applied(admin, document())
    partial = {"flags": {"extra": boolean_flag(5)}, "segments": {}}
    audit = audit_log(admin)

    result = applied(admin, partial, prune="false")

    assert result["changes"] == 1
    assert result["flags"]["created"] == ["extra"]
    assert result["flags"]["deleted"] == []
    assert result["segments"]["deleted"] == []
    assert sorted(exported(admin)["flags"]) == sorted([*FLAG_KEYS, "extra"])
    assert admin.get("/api/v1/segments/beta-testers").status_code == 200
    assert [e["action"] for e in newer_than(admin, audit)] == ["flag.create"]


def test_a_document_that_only_removes_is_a_no_op_without_prune(admin: httpx.Client) -> None:
    applied(admin, document())
    etags = flag_etags(admin)
    result = applied(admin, {"flags": {}, "segments": {}}, prune="false")
    assert result["changes"] == 0
    assert flag_etags(admin) == etags


# --- invalid documents -----------------------------------------------------------------


def broken(doc: dict[str, Any]) -> dict[str, Any]:
    """Several mistakes in different flags, an unknown environment and segment."""
    bad = copy.deepcopy(doc)
    flags = bad["flags"]
    flags["new-checkout"]["environments"]["production"]["rules"][0]["when"][0]["op"] = "eqq"
    flags["button-color"]["environments"]["production"]["fallthrough"] = {"variant": "purple"}
    flags["page-size"]["environments"]["production"]["rules"][0]["segment"] = "nobody"
    flags["ratio"]["environments"]["qa"] = {"enabled": True, "fallthrough": {"variant": "low"}}
    flags["theme"]["off_variant"] = "sepia"
    return bad


EXPECTED_PROBLEM_PATHS = {
    "flags.new-checkout.environments.production.rules[0].when[0].op",
    "flags.button-color.environments.production.fallthrough.variant",
    "flags.page-size.environments.production.rules[0].segment",
    "flags.ratio.environments.qa",
    "flags.theme.off_variant",
}


def test_an_invalid_document_lists_every_problem_by_full_path(admin: httpx.Client) -> None:
    problems = problems_of(apply(admin, broken(document())))
    assert set(problems) >= EXPECTED_PROBLEM_PATHS
    assert (
        "unknown operator 'eqq'"
        in problems["flags.new-checkout.environments.production.rules[0].when[0].op"]
    )
    assert (
        "unknown segment 'nobody'"
        in problems["flags.page-size.environments.production.rules[0].segment"]
    )
    assert "unknown environment 'qa'" in problems["flags.ratio.environments.qa"]


def test_an_invalid_document_writes_nothing_on_an_empty_server(admin: httpx.Client) -> None:
    audit = audit_log(admin)
    # valid flags and a valid segment travel with the broken ones
    doc = broken(document())
    doc["flags"]["fine"] = boolean_flag(50)

    problems_of(apply(admin, doc))

    assert exported(admin) == {"flags": {}, "segments": {}}
    assert admin.get("/api/v1/flags/fine").status_code == 404
    assert admin.get("/api/v1/segments/beta-testers").status_code == 404
    assert audit_log(admin) == audit


def test_an_invalid_document_is_all_or_nothing_even_for_its_valid_changes(
    admin: httpx.Client,
) -> None:
    applied(admin, document())
    state = exported(admin)
    etags = flag_etags(admin)
    audit = audit_log(admin)
    doc = broken(state)
    # valid changes next to the mistakes: an update, a creation, a deletion, a segment
    doc["flags"]["fine"] = boolean_flag(50)
    doc["segments"]["beta-testers"]["include"] = ["user-7"]
    doc["segments"]["new-segment"] = {"include": ["user-8"]}
    doc["flags"]["new-checkout"]["description"] = "changed"
    doc["flags"]["new-checkout"]["environments"]["production"]["fallthrough"]["rollout"][
        "percentage"
    ] = 99

    for params in ({}, {"prune": "false"}, {"dry_run": "true"}):
        assert set(problems_of(apply(admin, doc, **params))) >= EXPECTED_PROBLEM_PATHS

    assert exported(admin) == state
    assert flag_etags(admin) == etags
    assert admin.get("/api/v1/flags/fine").status_code == 404
    assert admin.get("/api/v1/segments/new-segment").status_code == 404
    assert audit_log(admin) == audit


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([1, 2], ""),
        ({"flags": [1]}, "flags"),
        ({"flags": "none"}, "flags"),
        ({"flags": {}, "segments": "none"}, "segments"),
        ({"flags": {"x": 1}}, "flags.x"),
        ({"flags": {}, "segments": {}, "extra": 1}, "extra"),
    ],
)
def test_a_malformed_document_is_refused_with_the_path_of_the_mistake(
    admin: httpx.Client, body: Any, path: str
) -> None:
    applied(admin, document())
    state = exported(admin)
    response = apply(admin, body)
    assert path in problems_of(response)
    assert exported(admin) == state


def test_pruning_a_segment_a_kept_flag_still_uses_is_refused(admin: httpx.Client) -> None:
    applied(admin, document())
    state = exported(admin)
    doc = document()
    del doc["segments"]["beta-testers"]
    problems = problems_of(apply(admin, doc))
    assert "flags.page-size.environments.production.rules[0].segment" in problems
    assert exported(admin) == state


def test_an_apply_is_committed_before_it_is_answered(admin: httpx.Client) -> None:
    # whoever got the answer reads what it applied, on the very next request
    for percentage in range(1, 21):
        applied(admin, {"flags": {"f": boolean_flag(percentage)}, "segments": {}})
        flag = exported(admin)["flags"]["f"]
        assert flag["environments"]["production"]["fallthrough"]["rollout"]["percentage"] == (
            percentage
        )


# --- export ----------------------------------------------------------------------------


def test_the_export_applies_back_with_no_changes(admin: httpx.Client) -> None:
    applied(admin, document())
    # and some changes made through the other endpoints
    admin.put(
        "/api/v1/flags/tagged",
        json=boolean_flag(33) | {"tags": ["payments"], "salt": "tagged-v1"},
    )
    admin.put(
        "/api/v1/segments/staff",
        json={"when": [{"attribute": "email", "op": "ends_with", "values": ["@example.com"]}]},
    )
    admin.put("/api/v1/flags/ratio/environments/production/enabled", json={"enabled": False})
    state = exported(admin)
    assert sorted(state["flags"]) == sorted([*FLAG_KEYS, "tagged"])
    assert sorted(state["segments"]) == ["beta-testers", "staff"]
    etags = flag_etags(admin)
    audit = audit_log(admin)

    result = applied(admin, state)

    assert result["changes"] == 0
    assert flag_etags(admin) == etags
    assert audit_log(admin) == audit
    assert exported(admin) == state


def test_an_export_restores_the_state_it_was_taken_from(admin: httpx.Client) -> None:
    applied(admin, document())
    state = exported(admin)
    emptied = applied(admin, {"flags": {}, "segments": {}})
    assert sorted(emptied["flags"]["deleted"]) == FLAG_KEYS
    assert emptied["segments"]["deleted"] == ["beta-testers"]
    assert exported(admin) == {"flags": {}, "segments": {}}

    restored = applied(admin, state)

    assert sorted(restored["flags"]["created"]) == FLAG_KEYS
    assert exported(admin) == state


# --- audit -----------------------------------------------------------------------------


def test_every_change_of_an_apply_is_audited_with_the_actor_and_reason(
    admin: httpx.Client,
) -> None:
    seen = audit_log(admin)
    response = admin.put(
        "/api/v1/state", json=document(), headers={"X-Graylane-Reason": "release 2024.1"}
    )
    assert response.status_code == 200, response.text
    created = newer_than(admin, seen)
    assert sorted((e["action"], e["target_key"]) for e in created) == sorted(
        [("flag.create", key) for key in FLAG_KEYS] + [("segment.create", "beta-testers")]
    )
    assert {e["actor"] for e in created} == {"token:bootstrap"}
    assert {e["reason"] for e in created} == {"release 2024.1"}
    entry = next(e for e in created if e["target_key"] == "theme")
    assert entry["before"] is None
    assert entry["after"] == admin.get("/api/v1/flags/theme").json()

    seen = audit_log(admin)
    changed = document()
    changed["flags"]["new-checkout"] = boolean_flag(50)
    del changed["flags"]["ratio"]
    changed["flags"]["extra"] = boolean_flag(1)
    applied(admin, changed)
    latest = newer_than(admin, seen)
    assert sorted((e["action"], e["target_key"]) for e in latest) == [
        ("flag.create", "extra"),
        ("flag.delete", "ratio"),
        ("flag.update", "new-checkout"),
    ]
    assert {e["actor"] for e in latest} == {"token:bootstrap"}
    assert {e["reason"] for e in latest} == {"state applied"}
    update = next(e for e in latest if e["action"] == "flag.update")
    assert update["changes"] == [
        {
            "path": "environments.production.fallthrough.rollout.percentage",
            "before": 10,
            "after": 50,
        }
    ]
    deletion = next(e for e in latest if e["action"] == "flag.delete")
    assert deletion["before"]["variants"] == {"low": 0.25, "high": 0.75}
    assert deletion["after"] is None


def test_an_apply_by_an_editor_is_audited_under_its_token(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    editor = client_for(make_token(role="editor"))
    response = editor.put("/api/v1/state", json=document())
    assert response.status_code == 200, response.text
    actors = {e["actor"] for e in audit_log(admin, action="flag.create")}
    assert actors == {"token:editor-token"}


def test_a_viewer_can_export_but_not_apply(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    viewer = client_for(make_token(role="viewer"))
    assert viewer.put("/api/v1/state", json=document()).status_code == 403
    assert viewer.get("/api/v1/state").json() == {"flags": {}, "segments": {}}
    assert exported(admin) == {"flags": {}, "segments": {}}


# --- SDK config ------------------------------------------------------------------------


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


def test_applying_changes_reaches_the_sdk_config_and_a_no_op_does_not(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    sdk = client_for(make_token(sdk="production"))
    empty = caught_up(admin, sdk, "production")
    assert empty.json()["flags"] == {}
    version = environment_version(admin, "production")

    applied(admin, document())

    assert environment_version(admin, "production") > version
    config = caught_up(admin, sdk, "production")
    assert config.headers["etag"] != empty.headers["etag"]
    assert sorted(config.json()["flags"]) == FLAG_KEYS
    assert (
        sdk.get("/api/v1/sdk/config", headers={"If-None-Match": empty.headers["etag"]}).status_code
        == 200
    )

    version = environment_version(admin, "production")
    assert applied(admin, document())["changes"] == 0
    assert environment_version(admin, "production") == version
    after = sdk_config(sdk)
    assert after.headers["etag"] == config.headers["etag"]
    assert after.headers["x-graylane-version"] == str(version)
    assert (
        sdk.get("/api/v1/sdk/config", headers={"If-None-Match": config.headers["etag"]}).status_code
        == 304
    )


def test_an_applied_segment_change_reaches_the_sdk_config(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    applied(admin, document())
    sdk = client_for(make_token(sdk="production"))
    before = caught_up(admin, sdk, "production")
    changed = document()
    changed["segments"]["beta-testers"]["include"] = ["user-42"]

    applied(admin, changed)

    after = caught_up(admin, sdk, "production")
    assert after.headers["etag"] != before.headers["etag"]
    assert after.json()["segments"]["beta-testers"]["include"] == ["user-42"]
