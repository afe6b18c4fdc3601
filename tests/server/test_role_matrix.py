"""Who may call what: every API route against every kind of caller.

The table below has one row per `/api/v1` and `/ofrep` route. Each row names the least
role it needs (or that it takes SDK tokens only) and a realistic request, so an allowed
call really succeeds and a refused one is refused by the authorization check, not by a
missing resource. A route the table does not know fails the test: a new endpoint must
say who may call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.server.conftest import ADMIN_TOKEN, TokenFactory
from tests.server.documents import boolean_flag, document
from tests.support.servers import LiveServer, wait_until

ROLES = ("viewer", "editor", "release_manager", "admin")
SDK = "sdk"
ANONYMOUS = "no token"
UNKNOWN = "unknown token"
PRINCIPALS = (ANONYMOUS, UNKNOWN, SDK, *ROLES)
API_PREFIXES = ("/api/v1/", "/ofrep/")
PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json")


@dataclass(frozen=True)
class Call:
    """One concrete request."""

    method: str
    url: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


Prepare = Callable[[httpx.Client, str], Call]
"""Builds the request for one caller; may first create what it acts on, as the admin."""


@dataclass(frozen=True)
class Row:
    method: str
    route: str
    needs: str
    """`sdk`, or the least admin role the route needs."""
    success: int
    """The status an allowed caller gets for the prepared request."""
    prepare: Prepare
    stream: bool = False

    @property
    def allowed(self) -> frozenset[str]:
        if self.needs == SDK:
            return frozenset({SDK})
        return frozenset(ROLES[ROLES.index(self.needs) :])

    def __str__(self) -> str:
        return f"{self.method} {self.route}"


def slug(principal: str) -> str:
    """A key fragment naming the caller, so each caller acts on its own object."""
    return principal.replace("_", "-").replace(" ", "-")


def own_flag(admin: httpx.Client, prefix: str, principal: str, body: dict[str, Any]) -> str:
    """A flag at version 1 that only this caller acts on."""
    key = f"{prefix}-{slug(principal)}"
    created = admin.put(f"/api/v1/flags/{key}", json=body)
    assert created.status_code == 201, created.text
    return key


def own_segment(admin: httpx.Client, prefix: str, principal: str) -> str:
    key = f"{prefix}-{slug(principal)}"
    created = admin.put(f"/api/v1/segments/{key}", json={"include": ["user-1"]})
    assert created.status_code == 201, created.text
    return key


def ramped_flag() -> dict[str, Any]:
    """A flag whose staging rollout a ramp plan drives (staging is not protected, so
    nothing but the role decides who may move it)."""
    flag = boolean_flag(0, env="staging")
    flag["environments"]["staging"]["ramp"] = {"stages": [1, 10, 50, 100], "auto_advance": False}
    return flag


def fixed(method: str, url: str, **kwargs: Any) -> Prepare:
    def prepare(_: httpx.Client, __: str) -> Call:
        return Call(method, url, **kwargs)

    return prepare


def replace_flag(admin: httpx.Client, principal: str) -> Call:
    key = own_flag(admin, "edited", principal, boolean_flag(10))
    body = boolean_flag(10) | {"description": f"edited by {principal}"}
    return Call("PUT", f"/api/v1/flags/{key}", json=body, headers={"If-Match": '"1"'})


def delete_flag(admin: httpx.Client, principal: str) -> Call:
    key = own_flag(admin, "doomed", principal, boolean_flag(10))
    return Call("DELETE", f"/api/v1/flags/{key}", headers={"If-Match": '"1"'})


def replace_flag_environment(admin: httpx.Client, principal: str) -> Call:
    key = own_flag(admin, "staged", principal, boolean_flag(10))
    return Call(
        "PUT",
        f"/api/v1/flags/{key}/environments/staging",
        json={"enabled": True, "fallthrough": {"variant": "on"}},
        headers={"If-Match": '"1"'},
    )


def kill_flag(admin: httpx.Client, principal: str) -> Call:
    key = own_flag(admin, "killed", principal, boolean_flag(100))
    return Call(
        "PUT", f"/api/v1/flags/{key}/environments/production/enabled", json={"enabled": False}
    )


def start_ramp(admin: httpx.Client, principal: str) -> Call:
    key = own_flag(admin, "ramped", principal, ramped_flag())
    return Call("POST", f"/api/v1/flags/{key}/environments/staging/ramp/start")


def replace_segment(admin: httpx.Client, principal: str) -> Call:
    key = own_segment(admin, "edited", principal)
    body = {"include": ["user-1", f"user-{slug(principal)}"], "exclude": ["user-9"]}
    return Call("PUT", f"/api/v1/segments/{key}", json=body, headers={"If-Match": '"1"'})


def delete_segment(admin: httpx.Client, principal: str) -> Call:
    key = own_segment(admin, "doomed", principal)
    return Call("DELETE", f"/api/v1/segments/{key}", headers={"If-Match": '"1"'})


def revoke_token(admin: httpx.Client, principal: str) -> Call:
    created = admin.post(
        "/api/v1/tokens", json={"kind": "admin", "role": "viewer", "name": f"victim-{principal}"}
    )
    assert created.status_code == 201, created.text
    return Call("DELETE", f"/api/v1/tokens/{created.json()['id']}")


PASSWORD = "correct horse battery staple"


def own_user(admin: httpx.Client, principal: str) -> str:
    username = f"user-{slug(principal)}"
    created = admin.post(
        "/api/v1/users", json={"username": username, "password": PASSWORD, "role": "viewer"}
    )
    assert created.status_code == 201, created.text
    return username


def own_webhook(admin: httpx.Client) -> int:
    # Port 9 (discard): nothing listens, and only a rare event is subscribed to.
    created = admin.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["ramp.warn"]}
    )
    assert created.status_code == 201, created.text
    webhook_id: int = created.json()["id"]
    return webhook_id


TABLE: tuple[Row, ...] = (
    # flags
    Row("GET", "/api/v1/flags", "viewer", 200, fixed("GET", "/api/v1/flags")),
    Row("GET", "/api/v1/flags/{key}", "viewer", 200, fixed("GET", "/api/v1/flags/new-checkout")),
    Row("PUT", "/api/v1/flags/{key}", "editor", 200, replace_flag),
    Row("DELETE", "/api/v1/flags/{key}", "editor", 204, delete_flag),
    Row(
        "GET",
        "/api/v1/flags/{key}/environments/{environment}",
        "viewer",
        200,
        fixed("GET", "/api/v1/flags/new-checkout/environments/production"),
    ),
    Row(
        "PUT",
        "/api/v1/flags/{key}/environments/{environment}",
        "editor",
        200,
        replace_flag_environment,
    ),
    Row(
        "PUT",
        "/api/v1/flags/{key}/environments/{environment}/enabled",
        "release_manager",
        200,
        kill_flag,
    ),
    Row(
        "GET",
        "/api/v1/flags/{key}/environments/{environment}/metrics",
        "viewer",
        200,
        fixed("GET", "/api/v1/flags/new-checkout/environments/production/metrics"),
    ),
    # ramps and guards
    Row("GET", "/api/v1/ramps", "viewer", 200, fixed("GET", "/api/v1/ramps")),
    Row(
        "GET",
        "/api/v1/flags/{key}/environments/{environment}/ramp",
        "viewer",
        200,
        fixed("GET", "/api/v1/flags/ramped/environments/staging/ramp"),
    ),
    # Editors drive ramps; in a protected environment, raising exposure past the plan's
    # approval level needs a release manager (tests/ramps covers that gate).
    Row(
        "POST",
        "/api/v1/flags/{key}/environments/{environment}/ramp/{action}",
        "editor",
        200,
        start_ramp,
    ),
    Row(
        "POST",
        "/api/v1/guards/alerts/{name}",
        "release_manager",
        200,
        lambda _, principal: Call(
            "POST",
            f"/api/v1/guards/alerts/errors-{slug(principal)}",
            json={
                "status": "firing",
                "alerts": [{"status": "firing", "labels": {"alertname": "HighErrorRate"}}],
            },
        ),
    ),
    Row(
        "POST",
        "/api/v1/environments/{environment}/emergency-stop",
        "release_manager",
        200,
        fixed("POST", "/api/v1/environments/staging/emergency-stop", json={"reason": "drill"}),
    ),
    # segments
    Row("GET", "/api/v1/segments", "viewer", 200, fixed("GET", "/api/v1/segments")),
    Row(
        "GET",
        "/api/v1/segments/{key}",
        "viewer",
        200,
        fixed("GET", "/api/v1/segments/beta-testers"),
    ),
    Row("PUT", "/api/v1/segments/{key}", "editor", 200, replace_segment),
    Row("DELETE", "/api/v1/segments/{key}", "editor", 204, delete_segment),
    # environments
    Row("GET", "/api/v1/environments", "viewer", 200, fixed("GET", "/api/v1/environments")),
    Row(
        "GET",
        "/api/v1/environments/{key}",
        "viewer",
        200,
        fixed("GET", "/api/v1/environments/staging"),
    ),
    Row(
        "POST",
        "/api/v1/environments",
        "admin",
        201,
        lambda _, principal: Call(
            "POST", "/api/v1/environments", json={"key": f"qa-{slug(principal)}"}
        ),
    ),
    Row(
        "PATCH",
        "/api/v1/environments/{key}",
        "admin",
        200,
        lambda _, principal: Call(
            "PATCH", "/api/v1/environments/staging", json={"name": f"Staging ({principal})"}
        ),
    ),
    # the whole document
    Row("GET", "/api/v1/state", "viewer", 200, fixed("GET", "/api/v1/state")),
    Row("PUT", "/api/v1/state", "editor", 200, fixed("PUT", "/api/v1/state", json=document())),
    # tokens
    Row(
        "POST",
        "/api/v1/tokens",
        "admin",
        201,
        fixed("POST", "/api/v1/tokens", json={"kind": "admin", "role": "viewer"}),
    ),
    Row("GET", "/api/v1/tokens", "admin", 200, fixed("GET", "/api/v1/tokens")),
    Row("DELETE", "/api/v1/tokens/{token_id}", "admin", 200, revoke_token),
    # users
    Row("GET", "/api/v1/users", "admin", 200, fixed("GET", "/api/v1/users")),
    Row(
        "POST",
        "/api/v1/users",
        "admin",
        201,
        lambda _, principal: Call(
            "POST",
            "/api/v1/users",
            json={"username": f"new-{slug(principal)}", "password": PASSWORD, "role": "viewer"},
        ),
    ),
    Row(
        "PATCH",
        "/api/v1/users/{username}",
        "admin",
        200,
        lambda admin, principal: Call(
            "PATCH", f"/api/v1/users/{own_user(admin, principal)}", json={"role": "editor"}
        ),
    ),
    Row(
        "DELETE",
        "/api/v1/users/{username}",
        "admin",
        204,
        lambda admin, principal: Call("DELETE", f"/api/v1/users/{own_user(admin, principal)}"),
    ),
    # webhooks
    Row("GET", "/api/v1/webhooks", "viewer", 200, fixed("GET", "/api/v1/webhooks")),
    Row(
        "POST",
        "/api/v1/webhooks",
        "admin",
        201,
        fixed("POST", "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": []}),
    ),
    Row(
        "DELETE",
        "/api/v1/webhooks/{webhook_id}",
        "admin",
        204,
        lambda admin, _: Call("DELETE", f"/api/v1/webhooks/{own_webhook(admin)}"),
    ),
    Row(
        "GET",
        "/api/v1/webhooks/{webhook_id}/deliveries",
        "viewer",
        200,
        lambda admin, _: Call("GET", f"/api/v1/webhooks/{own_webhook(admin)}/deliveries"),
    ),
    # audit and evaluation for people
    Row("GET", "/api/v1/audit", "viewer", 200, fixed("GET", "/api/v1/audit")),
    Row(
        "POST",
        "/api/v1/evaluate",
        "viewer",
        200,
        fixed(
            "POST",
            "/api/v1/evaluate",
            json={
                "environment": "production",
                "flag": "new-checkout",
                "context": {"targetingKey": "user-1"},
            },
        ),
    ),
    # SDK and OFREP
    Row("GET", "/api/v1/sdk/config", SDK, 200, fixed("GET", "/api/v1/sdk/config")),
    Row("GET", "/api/v1/sdk/stream", SDK, 200, fixed("GET", "/api/v1/sdk/stream"), stream=True),
    Row(
        "POST",
        "/api/v1/sdk/metrics",
        SDK,
        202,
        fixed(
            "POST",
            "/api/v1/sdk/metrics",
            json={"evaluations": [{"flag": "new-checkout", "variant": "on", "count": 3}]},
        ),
    ),
    Row(
        "POST",
        "/ofrep/v1/evaluate/flags/{key}",
        SDK,
        200,
        fixed(
            "POST",
            "/ofrep/v1/evaluate/flags/new-checkout",
            json={"context": {"targetingKey": "user-1"}},
        ),
    ),
    Row(
        "POST",
        "/ofrep/v1/evaluate/flags",
        SDK,
        200,
        fixed("POST", "/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "user-1"}}),
    ),
)


def served_routes(server: LiveServer) -> list[tuple[str, set[str]]]:
    """(path, methods) of every route, flattening included routers where FastAPI keeps
    them nested (newer versions) and reading them directly where it does not."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included routers were kept nested
        routes: list[Any] = list(server.app.routes)
    else:
        routes = list(iter_route_contexts(server.app.routes))
    return [(r.path, set(r.methods or ())) for r in routes if hasattr(r, "path")]


def api_routes(server: LiveServer) -> set[tuple[str, str]]:
    """Every (method, path) the running app serves under the API prefixes."""
    return {
        (method, path)
        for path, methods in served_routes(server)
        if path.startswith(API_PREFIXES)
        for method in methods
        if method != "HEAD"
    }


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    body: Any


def send(client: httpx.Client, call: Call, *, stream: bool) -> Answer:
    kwargs: dict[str, Any] = {"headers": call.headers, "params": call.params}
    if call.json is not None:
        kwargs["json"] = call.json
    if stream:
        # Only the status line and headers: the stream itself never ends.
        with client.stream(call.method, call.url, **kwargs) as response:
            if response.status_code == 200:
                return Answer(response.status_code, response.headers, None)
            response.read()
            return Answer(response.status_code, response.headers, _json(response))
    response = client.request(call.method, call.url, **kwargs)
    return Answer(response.status_code, response.headers, _json(response))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def snapshot(admin: httpx.Client) -> dict[str, Any]:
    """Everything a write could change, as the bootstrap admin reads it."""

    def read(url: str, **params: str) -> Any:
        response = admin.get(url, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    return {
        "state": read("/api/v1/state"),
        "flags": read("/api/v1/flags"),
        "segments": read("/api/v1/segments"),
        "environments": read("/api/v1/environments"),
        "tokens": read("/api/v1/tokens", include_revoked="true"),
        "users": read("/api/v1/users"),
        "webhooks": read("/api/v1/webhooks"),
        "ramps": read("/api/v1/ramps"),
        "audit": [e["id"] for e in read("/api/v1/audit", limit="500")["entries"]],
    }


def set_up_data(admin: httpx.Client) -> None:
    """Flags (one of them using a segment), the segment and a flag with a ramp plan,
    written by the admin before any caller acts."""
    applied = admin.put("/api/v1/state", json=document())
    assert applied.status_code == 200, applied.text
    assert admin.put("/api/v1/flags/ramped", json=ramped_flag()).status_code == 201


@pytest.fixture
def callers(server: LiveServer, make_token: TokenFactory) -> Iterator[dict[str, httpx.Client]]:
    """One client for every kind of caller; the admin is a minted token, not the bootstrap."""
    tokens: dict[str, str | None] = {
        ANONYMOUS: None,
        UNKNOWN: "gla_this-token-was-never-issued",
        SDK: make_token(sdk="production"),
        **{role: make_token(role=role) for role in ROLES},
    }
    clients = {
        name: httpx.Client(
            base_url=server.url,
            headers={} if token is None else {"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        for name, token in tokens.items()
    }
    yield clients
    for client in clients.values():
        client.close()


def test_the_table_covers_every_api_route_and_nothing_else(server: LiveServer) -> None:
    served = api_routes(server)
    table = {(row.method, row.route) for row in TABLE}
    assert len(table) == len(TABLE), "a route appears twice in the table"
    missing = sorted(served - table)
    stale = sorted(table - served)
    assert not missing, f"routes without a row in the role matrix (who may call them?): {missing}"
    assert not stale, f"rows in the role matrix for routes the app does not serve: {stale}"


@pytest.mark.parametrize("row", TABLE, ids=str)
def test_every_caller_is_allowed_or_refused_as_its_role_says(
    row: Row, admin: httpx.Client, callers: dict[str, httpx.Client]
) -> None:
    set_up_data(admin)
    failures: list[str] = []
    # Refused callers go first, so every object is as the admin set it up when their
    # request is checked for having changed nothing.
    for principal in sorted(PRINCIPALS, key=lambda p: p in row.allowed):
        call = row.prepare(admin, principal)
        before = snapshot(admin)
        answer = send(callers[principal], call, stream=row.stream)
        seen = f"{principal}: {call.method} {call.url} -> {answer.status} {answer.body!r:.200}"
        if principal in row.allowed:
            if answer.status != row.success:
                failures.append(f"{seen}; expected {row.success} (allowed)")
            continue
        if principal in (ANONYMOUS, UNKNOWN):
            if answer.status != 401:
                failures.append(f"{seen}; expected 401")
            elif "www-authenticate" not in answer.headers:
                failures.append(f"{seen}; a 401 without a WWW-Authenticate header")
        elif answer.status != 403:
            failures.append(f"{seen}; expected 403")
        elif not (isinstance(answer.body, dict) and answer.body["error"]["code"] == "forbidden"):
            failures.append(f"{seen}; a 403 without the `forbidden` error body")
        if snapshot(admin) != before:
            failures.append(f"{seen}; the refused request changed something")
    assert not failures, f"{row}:\n" + "\n".join(failures)


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_operational_endpoints_and_docs_need_no_token(
    path: str, server: LiveServer, callers: dict[str, httpx.Client]
) -> None:
    for principal, client in callers.items():
        response = client.get(path)
        assert response.status_code == 200, f"{principal}: GET {path} -> {response.status_code}"


def flag_audit(admin: httpx.Client, flag: str) -> list[int]:
    entries = admin.get("/api/v1/audit", params={"flag": flag}).json()["entries"]
    return [e["id"] for e in entries]


def test_a_viewer_cannot_replace_a_flag_and_nothing_changes(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    assert admin.put("/api/v1/flags/f", json=boolean_flag(10)).status_code == 201
    before = admin.get("/api/v1/flags/f")
    audit_before = flag_audit(admin, "f")
    viewer = client_for(make_token(role="viewer"))

    refused = viewer.put(
        "/api/v1/flags/f", json=boolean_flag(90), headers={"If-Match": before.headers["etag"]}
    )

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert "editor" in refused.json()["error"]["message"]
    after = admin.get("/api/v1/flags/f")
    assert after.headers["etag"] == before.headers["etag"]
    assert after.json() == before.json()
    assert flag_audit(admin, "f") == audit_before


def test_an_editor_cannot_pull_the_kill_switch_and_sdks_see_no_new_version(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    assert admin.put("/api/v1/flags/f", json=boolean_flag(100)).status_code == 201
    sdk = client_for(make_token(sdk="production"))
    wait_until(
        lambda: "f" in sdk.get("/api/v1/sdk/config").json()["flags"],
        timeout=5,
        what="SDKs to see the new flag",
    )
    config_before = sdk.get("/api/v1/sdk/config")
    flag_before = admin.get("/api/v1/flags/f")
    editor = client_for(make_token(role="editor"))

    refused = editor.put("/api/v1/flags/f/environments/production/enabled", json={"enabled": False})

    assert refused.status_code == 403
    assert "release_manager" in refused.json()["error"]["message"]
    flag_after = admin.get("/api/v1/flags/f")
    assert flag_after.headers["etag"] == flag_before.headers["etag"]
    assert flag_after.json()["environments"]["production"]["enabled"] is True
    unchanged = sdk.get(
        "/api/v1/sdk/config", headers={"If-None-Match": config_before.headers["etag"]}
    )
    assert unchanged.status_code == 304


def test_an_sdk_token_cannot_write_and_an_admin_token_cannot_read_sdk_config(
    admin: httpx.Client, make_token: TokenFactory, client_for: Callable[[str], httpx.Client]
) -> None:
    sdk = client_for(make_token(sdk="production"))
    written = sdk.put("/api/v1/flags/f", json=boolean_flag(10))
    assert written.status_code == 403
    assert "SDK" in written.json()["error"]["message"]
    assert admin.get("/api/v1/flags/f").status_code == 404
    bootstrap = client_for(ADMIN_TOKEN)
    read = bootstrap.get("/api/v1/sdk/config")
    assert read.status_code == 403
    assert "SDK token" in read.json()["error"]["message"]
