"""The audit log: who changed what, when and why; newest first, filterable, paged, and
impossible to change through the API."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.server.conftest import ADMIN_TOKEN, TokenFactory
from tests.server.documents import boolean_flag


def audit_page(admin: httpx.Client, **params: Any) -> dict[str, Any]:
    response = admin.get("/api/v1/audit", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def audit_log(admin: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    """Every entry matching the filters, newest first, across all pages."""
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500, **filters}
    while True:
        page = audit_page(admin, **params)
        entries += page["entries"]
        if page["next_before"] is None:
            return entries
        params["before"] = page["next_before"]


def targets(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["action"], e["target_key"]) for e in entries]


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"])


def create_flag(admin: httpx.Client, key: str, **kwargs: Any) -> None:
    response = admin.put(f"/api/v1/flags/{key}", json=boolean_flag(**kwargs))
    assert response.status_code == 201, response.text


def update_flag(admin: httpx.Client, key: str, percentage: float) -> None:
    version = admin.get(f"/api/v1/flags/{key}").headers["etag"]
    response = admin.put(
        f"/api/v1/flags/{key}", json=boolean_flag(percentage), headers={"If-Match": version}
    )
    assert response.status_code == 200, response.text


def set_enabled(admin: httpx.Client, key: str, environment: str, enabled: bool) -> None:
    response = admin.put(
        f"/api/v1/flags/{key}/environments/{environment}/enabled", json={"enabled": enabled}
    )
    assert response.status_code == 200, response.text


# --- order -----------------------------------------------------------------------------


def test_entries_are_newest_first(admin: httpx.Client) -> None:
    create_flag(admin, "f", percentage=10)
    update_flag(admin, "f", 20)
    set_enabled(admin, "f", "production", False)
    assert admin.delete("/api/v1/flags/f").status_code == 204

    entries = audit_page(admin)["entries"]

    assert targets(entries) == [
        ("flag.delete", "f"),
        ("flag.disable", "f"),
        ("flag.update", "f"),
        ("flag.create", "f"),
        # the bootstrap admin token, minted when the server first started
        ("token.create", "1"),
    ]
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)
    times = [at(e) for e in entries]
    assert times == sorted(times, reverse=True)
    assert all(t.tzinfo is not None for t in times)


# --- filters ---------------------------------------------------------------------------


def test_entries_can_be_filtered_by_flag(admin: httpx.Client) -> None:
    create_flag(admin, "a")
    create_flag(admin, "b")
    update_flag(admin, "a", 30)
    update_flag(admin, "b", 40)
    assert targets(audit_log(admin, flag="a")) == [("flag.update", "a"), ("flag.create", "a")]
    assert targets(audit_log(admin, flag="b")) == [("flag.update", "b"), ("flag.create", "b")]
    assert audit_log(admin, flag="nothing") == []


def test_entries_can_be_filtered_by_target_type_and_target(admin: httpx.Client) -> None:
    create_flag(admin, "shared")
    assert admin.put("/api/v1/segments/shared", json={"include": ["u1"]}).status_code == 201
    assert admin.put("/api/v1/segments/other", json={"include": ["u2"]}).status_code == 201

    assert targets(audit_log(admin, target_type="segment", target="shared")) == [
        ("segment.create", "shared")
    ]
    assert targets(audit_log(admin, target_type="flag", target="shared")) == [
        ("flag.create", "shared")
    ]
    assert audit_log(admin, target_type="flag", target="shared") == audit_log(admin, flag="shared")
    assert targets(audit_log(admin, target_type="segment")) == [
        ("segment.create", "other"),
        ("segment.create", "shared"),
    ]
    assert sorted(targets(audit_log(admin, target="shared"))) == [
        ("flag.create", "shared"),
        ("segment.create", "shared"),
    ]


def test_entries_can_be_filtered_by_actor(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    editor = client_for(make_token(role="editor"))
    assert editor.put("/api/v1/flags/by-editor", json=boolean_flag(5)).status_code == 201
    create_flag(admin, "by-admin")

    assert targets(audit_log(admin, actor="token:editor-token")) == [("flag.create", "by-editor")]
    by_admin = audit_log(admin, actor="token:bootstrap")
    assert [e["action"] for e in by_admin] == ["flag.create", "token.create"]
    assert by_admin[0]["target_key"] == "by-admin"
    assert {e["actor"] for e in by_admin} == {"token:bootstrap"}
    assert targets(audit_log(admin, actor="system")) == [("token.create", "1")]
    assert audit_log(admin, actor="token:nobody") == []


def test_entries_can_be_filtered_by_environment(admin: httpx.Client) -> None:
    create_flag(admin, "prod-flag", env="production")
    create_flag(admin, "staging-flag", env="staging")
    set_enabled(admin, "prod-flag", "production", False)
    set_enabled(admin, "staging-flag", "staging", False)

    assert targets(audit_log(admin, environment="production")) == [("flag.disable", "prod-flag")]
    assert targets(audit_log(admin, environment="staging")) == [("flag.disable", "staging-flag")]
    assert audit_log(admin, environment="development") == []
    assert {e["environment"] for e in audit_log(admin, environment="staging")} == {"staging"}


def test_entries_can_be_filtered_by_action(admin: httpx.Client) -> None:
    create_flag(admin, "a")
    create_flag(admin, "b")
    update_flag(admin, "a", 50)
    set_enabled(admin, "b", "production", False)
    set_enabled(admin, "b", "production", True)

    assert targets(audit_log(admin, action="flag.create")) == [
        ("flag.create", "b"),
        ("flag.create", "a"),
    ]
    assert targets(audit_log(admin, action="flag.update")) == [("flag.update", "a")]
    assert targets(audit_log(admin, action="flag.disable")) == [("flag.disable", "b")]
    assert targets(audit_log(admin, action="flag.enable")) == [("flag.enable", "b")]
    assert audit_log(admin, action="flag.delete") == []


def test_filters_combine(admin: httpx.Client) -> None:
    create_flag(admin, "a")
    create_flag(admin, "b")
    update_flag(admin, "a", 50)
    update_flag(admin, "b", 50)
    assert targets(audit_log(admin, flag="a", action="flag.update")) == [("flag.update", "a")]
    assert audit_log(admin, flag="a", action="flag.update", actor="token:someone-else") == []


def test_entries_can_be_filtered_by_time(admin: httpx.Client) -> None:
    for index in range(6):
        create_flag(admin, f"flag-{index}")
    everything = audit_log(admin)
    middle = everything[3]
    moment = middle["at"]

    since = audit_log(admin, since=moment)
    until = audit_log(admin, until=moment)

    assert since == [e for e in everything if at(e) >= at(middle)]
    assert middle in since
    assert until == [e for e in everything if at(e) < at(middle)]
    assert middle not in until
    # together they cover the log, each entry once
    assert since + until == everything
    newest, oldest_shown = everything[0], everything[4]
    window = audit_log(admin, since=oldest_shown["at"], until=newest["at"])
    assert window == [e for e in everything if at(oldest_shown) <= at(e) < at(newest)]
    assert oldest_shown in window
    assert newest not in window


def test_time_filters_take_any_iso_offset(admin: httpx.Client) -> None:
    create_flag(admin, "a")
    everything = audit_log(admin)
    newest = at(everything[0])
    # the same instant, written in UTC with `Z` and in another offset
    utc = newest.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    shifted = newest.astimezone(timezone(timedelta(hours=2)))
    assert audit_log(admin, since=utc) == everything[:1]
    assert audit_log(admin, since=shifted.isoformat()) == everything[:1]
    assert audit_log(admin, since="2999-01-01T00:00:00Z") == []
    assert audit_log(admin, until="2000-01-01T00:00:00Z") == []


def test_a_malformed_filter_is_refused(admin: httpx.Client) -> None:
    assert admin.get("/api/v1/audit", params={"since": "yesterday"}).status_code == 422
    assert admin.get("/api/v1/audit", params={"limit": 0}).status_code == 422
    assert admin.get("/api/v1/audit", params={"limit": 501}).status_code == 422
    assert admin.get("/api/v1/audit", params={"before": "x"}).status_code == 422


# --- paging ----------------------------------------------------------------------------


def walk(admin: httpx.Client, limit: int, **filters: Any) -> list[list[dict[str, Any]]]:
    """Every page, following `next_before` until it is null."""
    pages = []
    params: dict[str, Any] = {"limit": limit, **filters}
    for _ in range(100):
        page = audit_page(admin, **params)
        assert len(page["entries"]) <= limit
        pages.append(page["entries"])
        if page["next_before"] is None:
            return pages
        assert page["next_before"] == page["entries"][-1]["id"]
        params["before"] = page["next_before"]
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("limit", [1, 4, 5, 13, 50])
def test_paging_walks_every_entry_exactly_once(admin: httpx.Client, limit: int) -> None:
    for index in range(6):
        create_flag(admin, f"flag-{index}")
        update_flag(admin, f"flag-{index}", 20)
    everything = audit_page(admin, limit=500)["entries"]
    assert len(everything) == 13

    pages = walk(admin, limit)

    walked = [e for page in pages for e in page]
    assert [e["id"] for e in walked] == [e["id"] for e in everything]
    assert walked == everything
    assert all(len(page) == limit for page in pages[:-1])


def test_paging_follows_the_filters(admin: httpx.Client) -> None:
    create_flag(admin, "paged")
    create_flag(admin, "noise")
    for percentage in range(20, 27):
        update_flag(admin, "paged", percentage)
        update_flag(admin, "noise", percentage)

    pages = walk(admin, 3, flag="paged")

    walked = [e for page in pages for e in page]
    assert [a for a, _ in targets(walked)] == ["flag.update"] * 7 + ["flag.create"]
    assert {e["target_key"] for e in walked} == {"paged"}
    assert [len(page) for page in pages] == [3, 3, 2]


def test_the_last_page_says_there_is_no_next_one(admin: httpx.Client) -> None:
    create_flag(admin, "a")
    page = audit_page(admin, limit=10)
    assert len(page["entries"]) == 2
    assert page["next_before"] is None
    oldest = page["entries"][-1]["id"]
    assert audit_page(admin, before=oldest) == {"entries": [], "next_before": None}


# --- contents --------------------------------------------------------------------------


def test_an_entry_holds_before_after_and_the_changes_path_by_path(admin: httpx.Client) -> None:
    create_flag(admin, "f", percentage=10)
    created_definition = admin.get("/api/v1/flags/f").json()
    response = admin.put(
        "/api/v1/flags/f",
        json=boolean_flag(20),
        headers={"If-Match": '"1"', "X-Graylane-Reason": "ramp to 20%"},
    )
    assert response.status_code == 200
    updated_definition = admin.get("/api/v1/flags/f").json()
    assert admin.delete("/api/v1/flags/f").status_code == 204

    deleted, updated, created = audit_log(admin, flag="f")

    assert created["before"] is None
    assert created["after"] == created_definition
    assert created["changes"]
    assert all(set(c) == {"path", "after"} for c in created["changes"])
    assert {c["path"] for c in created["changes"]} == set(created_definition)

    assert updated["action"] == "flag.update"
    assert updated["before"] == created_definition
    assert updated["after"] == updated_definition
    assert updated["changes"] == [
        {
            "path": "environments.production.fallthrough.rollout.percentage",
            "before": 10,
            "after": 20,
        }
    ]
    assert updated["reason"] == "ramp to 20%"
    assert updated["actor"] == "token:bootstrap"
    assert updated["target_type"] == "flag"
    assert updated["target_key"] == "f"

    assert deleted["before"] == updated_definition
    assert deleted["after"] is None
    assert all(set(c) == {"path", "before"} for c in deleted["changes"])
    assert deleted["reason"] is None


def test_segment_entries_hold_their_changes_too(admin: httpx.Client) -> None:
    admin.put("/api/v1/segments/s", json={"include": ["u1"], "exclude": ["u9"]})
    admin.put(
        "/api/v1/segments/s",
        json={"include": ["u2"], "exclude": ["u9"]},
        headers={"If-Match": '"1"'},
    )
    updated, created = audit_log(admin, target_type="segment", target="s")
    assert created["action"] == "segment.create"
    assert updated["action"] == "segment.update"
    assert updated["before"] == {"include": ["u1"], "exclude": ["u9"]}
    assert updated["after"] == {"include": ["u2"], "exclude": ["u9"]}
    assert updated["changes"] == [{"path": "include[0]", "before": "u1", "after": "u2"}]


def test_reading_the_audit_log_needs_an_admin_token(
    server: Any, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    viewer = client_for(make_token(role="viewer"))
    assert viewer.get("/api/v1/audit").status_code == 200
    sdk = client_for(make_token(sdk="production"))
    assert sdk.get("/api/v1/audit").status_code == 403
    assert httpx.get(f"{server.url}/api/v1/audit").status_code == 401


# --- nobody changes the log ------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_there_is_no_way_to_change_or_delete_entries(admin: httpx.Client, method: str) -> None:
    create_flag(admin, "f")
    update_flag(admin, "f", 20)
    before = audit_log(admin)
    newest = before[0]["id"]
    forged = {
        "actor": "token:someone-else",
        "action": "flag.create",
        "target_type": "flag",
        "target_key": "f",
        "reason": "forged",
    }

    for path in ("/api/v1/audit", f"/api/v1/audit/{newest}", "/api/v1/audit/1"):
        response = admin.request(method, path, json=forged)
        assert response.status_code in {404, 405}, (method, path, response.text)
    for params in ({"flag": "f"}, {"before": newest}, {"until": "2999-01-01T00:00:00Z"}):
        response = admin.request(method, "/api/v1/audit", params=params)
        assert response.status_code in {404, 405}, (method, params, response.text)

    assert audit_log(admin) == before


# --- tokens ----------------------------------------------------------------------------


def test_token_creation_and_revocation_are_audited_without_the_secret(
    admin: httpx.Client,
) -> None:
    sdk = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": "production"})
    editor = admin.post("/api/v1/tokens", json={"kind": "admin", "role": "editor", "name": "ci"})
    assert sdk.status_code == 201
    assert editor.status_code == 201
    revoked = admin.delete(
        f"/api/v1/tokens/{editor.json()['id']}", headers={"X-Graylane-Reason": "leaked"}
    )
    assert revoked.status_code == 200

    sdk_entries = audit_log(admin, target_type="token", target=str(sdk.json()["id"]))
    editor_entries = audit_log(admin, target_type="token", target=str(editor.json()["id"]))

    assert [e["action"] for e in sdk_entries] == ["token.create"]
    assert sdk_entries[0]["environment"] == "production"
    assert sdk_entries[0]["after"]["kind"] == "sdk"
    assert [e["action"] for e in editor_entries] == ["token.revoke", "token.create"]
    revocation = editor_entries[0]
    assert revocation["reason"] == "leaked"
    assert revocation["actor"] == "token:bootstrap"
    assert revocation["after"]["name"] == "ci"
    assert {"path": "revoked", "before": False, "after": True} in revocation["changes"]

    whole_log = json.dumps(audit_log(admin))
    for secret in (sdk.json()["token"], editor.json()["token"], ADMIN_TOKEN):
        assert secret not in whole_log
        assert hashlib.sha256(secret.encode()).hexdigest() not in whole_log
    for entry in [*sdk_entries, *editor_entries]:
        dumped = json.dumps(entry)
        assert "secret" not in dumped
        assert "hash" not in dumped
