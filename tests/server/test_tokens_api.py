"""Tokens: minted by admins and shown once, stored hashed, revoked at once, bootstrapped
only into an empty database, carried as a Bearer token or an X-API-Key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from graylane_server.settings import Settings
from tests.server.conftest import ADMIN_TOKEN, TokenFactory
from tests.server.documents import boolean_flag
from tests.support.servers import LiveServer

ClientFor = Callable[[str], httpx.Client]
OFREP_BODY = {"context": {"targetingKey": "user-1"}}


def mint(admin: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = admin.post("/api/v1/tokens", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def listed(admin: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = admin.get("/api/v1/tokens", params=params)
    assert response.status_code == 200, response.text
    tokens: list[dict[str, Any]] = response.json()["tokens"]
    return tokens


def error_text(response: httpx.Response) -> str:
    """The message and every problem of an error answer, as one string to search."""
    error = response.json()["error"]
    parts = [error["message"]]
    for problem in error.get("problems") or []:
        parts += [problem["path"], problem["message"]]
    return " ".join(parts)


def stored_tokens(database_url: str) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM tokens ORDER BY id")).mappings().all()
            return [dict(row) for row in rows]
    finally:
        engine.dispose()


def test_an_sdk_token_is_minted_for_one_environment_and_its_secret_shown_once(
    admin: httpx.Client, client_for: ClientFor
) -> None:
    response = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": "production"})

    assert response.status_code == 201
    created = response.json()
    token = created["token"]
    assert token.startswith("gls_")
    assert len(token) > 20
    assert response.text.count(token) == 1
    assert created["kind"] == "sdk"
    assert created["environment"] == "production"
    assert created["role"] is None
    config = client_for(token).get("/api/v1/sdk/config")
    assert config.status_code == 200
    assert config.headers["x-graylane-environment"] == "production"


def test_an_admin_token_is_minted_with_a_role_and_acts_with_it(
    admin: httpx.Client, client_for: ClientFor
) -> None:
    response = admin.post("/api/v1/tokens", json={"kind": "admin", "role": "editor"})

    assert response.status_code == 201
    created = response.json()
    token = created["token"]
    assert token.startswith("gla_")
    assert response.text.count(token) == 1
    assert created["kind"] == "admin"
    assert created["role"] == "editor"
    assert created["environment"] is None
    editor = client_for(token)
    assert editor.put("/api/v1/flags/f", json=boolean_flag(10)).status_code == 201
    assert editor.get("/api/v1/tokens").status_code == 403


def test_every_mint_gives_a_different_secret(admin: httpx.Client) -> None:
    secrets = {mint(admin, {"kind": "admin", "role": "viewer"})["token"] for _ in range(5)}
    assert len(secrets) == 5


def test_the_list_shows_a_short_hint_but_never_the_secret(admin: httpx.Client) -> None:
    sdk = mint(admin, {"kind": "sdk", "environment": "production", "name": "web"})
    editor = mint(admin, {"kind": "admin", "role": "editor", "name": "ci"})

    response = admin.get("/api/v1/tokens")

    assert response.status_code == 200
    for created in (sdk, editor):
        assert created["token"] not in response.text
        assert created["token"][:-4] not in response.text
    by_name = {t["name"]: t for t in response.json()["tokens"]}
    assert set(by_name) == {"bootstrap", "web", "ci"}
    for created in (sdk, editor):
        entry = by_name[created["name"]]
        assert "token" not in entry
        assert entry["id"] == created["id"]
        assert entry["kind"] == created["kind"]
        assert entry["role"] == created["role"]
        assert entry["environment"] == created["environment"]
        visible = entry["hint"].rstrip("…. ")
        assert visible, "the hint should let people recognise the token"
        assert created["token"].startswith(visible)
        assert len(visible) <= 12, f"the hint {entry['hint']!r} gives away too much"
    everything = admin.get("/api/v1/tokens", params={"include_revoked": "true"})
    audit = admin.get("/api/v1/audit", params={"target_type": "token"})
    for created in (sdk, editor):
        assert created["token"] not in everything.text
        assert created["token"] not in audit.text


@pytest.mark.parametrize(
    ("body", "status", "mentions"),
    [
        ({"kind": "admin"}, 422, "role"),
        ({"kind": "sdk"}, 422, "environment"),
        ({"kind": "sdk", "environment": "nowhere"}, 404, "nowhere"),
        ({"kind": "robot", "role": "editor"}, 422, "kind"),
        ({"kind": "admin", "role": "overlord"}, 422, "role"),
        ({"kind": "admin", "role": "editor", "environment": "production"}, 422, "environment"),
        ({"kind": "sdk", "environment": "production", "role": "viewer"}, 422, "role"),
        ({}, 422, "kind"),
    ],
    ids=[
        "admin-without-role",
        "sdk-without-environment",
        "unknown-environment",
        "unknown-kind",
        "unknown-role",
        "admin-with-environment",
        "sdk-with-role",
        "empty",
    ],
)
def test_an_invalid_token_request_is_refused_with_a_clear_message_and_mints_nothing(
    admin: httpx.Client, body: dict[str, Any], status: int, mentions: str
) -> None:
    response = admin.post("/api/v1/tokens", json=body)

    assert response.status_code == status, response.text
    assert "token" not in response.json()
    assert mentions in error_text(response), error_text(response)
    assert [t["name"] for t in listed(admin, include_revoked="true")] == ["bootstrap"]
    created = admin.get("/api/v1/audit", params={"action": "token.create"}).json()["entries"]
    assert [e["actor"] for e in created] == ["system"]


def test_a_revoked_admin_token_is_refused_at_once_even_after_it_was_cached(
    admin: httpx.Client, client_for: ClientFor
) -> None:
    created = mint(admin, {"kind": "admin", "role": "editor"})
    editor = client_for(created["token"])
    assert editor.get("/api/v1/flags").status_code == 200
    assert editor.get("/api/v1/flags").status_code == 200

    revoked = admin.delete(f"/api/v1/tokens/{created['id']}")

    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert created["token"] not in revoked.text
    refused = editor.get("/api/v1/flags")
    assert refused.status_code == 401
    assert "www-authenticate" in refused.headers
    assert editor.put("/api/v1/flags/f", json=boolean_flag(10)).status_code == 401
    assert admin.get("/api/v1/flags/f").status_code == 404


def test_a_revoked_sdk_token_is_refused_at_once_even_after_it_was_cached(
    admin: httpx.Client, client_for: ClientFor
) -> None:
    assert admin.put("/api/v1/flags/f", json=boolean_flag(10)).status_code == 201
    created = mint(admin, {"kind": "sdk", "environment": "production"})
    sdk = client_for(created["token"])
    assert sdk.get("/api/v1/sdk/config").status_code == 200
    assert sdk.post("/ofrep/v1/evaluate/flags", json=OFREP_BODY).status_code == 200

    assert admin.delete(f"/api/v1/tokens/{created['id']}").status_code == 200

    assert sdk.get("/api/v1/sdk/config").status_code == 401
    assert sdk.post("/ofrep/v1/evaluate/flags/f", json=OFREP_BODY).status_code == 401
    assert sdk.post("/ofrep/v1/evaluate/flags", json=OFREP_BODY).status_code == 401
    with sdk.stream("GET", "/api/v1/sdk/stream") as stream:
        assert stream.status_code == 401


def test_revoking_leaves_other_tokens_working(
    admin: httpx.Client, make_token: TokenFactory, client_for: ClientFor
) -> None:
    doomed = mint(admin, {"kind": "admin", "role": "viewer"})
    survivor = client_for(make_token(role="viewer"))
    assert survivor.get("/api/v1/flags").status_code == 200

    assert admin.delete(f"/api/v1/tokens/{doomed['id']}").status_code == 200

    assert survivor.get("/api/v1/flags").status_code == 200
    assert client_for(doomed["token"]).get("/api/v1/flags").status_code == 401


def test_revoked_tokens_are_listed_only_when_asked_for(admin: httpx.Client) -> None:
    kept = mint(admin, {"kind": "admin", "role": "viewer", "name": "kept"})
    gone = mint(admin, {"kind": "sdk", "environment": "staging", "name": "gone"})
    assert admin.delete(f"/api/v1/tokens/{gone['id']}").status_code == 200

    assert [t["name"] for t in listed(admin)] == ["bootstrap", "kept"]
    everything = {t["name"]: t for t in listed(admin, include_revoked="true")}
    assert set(everything) == {"bootstrap", "kept", "gone"}
    assert everything["gone"]["revoked_at"] is not None
    assert everything["kept"]["revoked_at"] is None
    assert kept["token"] not in admin.get("/api/v1/tokens", params={"include_revoked": "true"}).text


def test_revoking_is_audited_with_its_reason(admin: httpx.Client) -> None:
    created = mint(admin, {"kind": "admin", "role": "viewer"})
    response = admin.delete(
        f"/api/v1/tokens/{created['id']}", headers={"X-Graylane-Reason": "leaked in a log"}
    )
    assert response.status_code == 200
    entry = admin.get("/api/v1/audit", params={"action": "token.revoke"}).json()["entries"][0]
    assert entry["target_key"] == str(created["id"])
    assert entry["reason"] == "leaked in a log"
    assert created["token"] not in str(entry)


def test_revoking_an_unknown_token_is_404(admin: httpx.Client) -> None:
    response = admin.delete("/api/v1/tokens/9999")
    assert response.status_code == 404
    assert "9999" in response.json()["error"]["message"]


def test_secrets_are_stored_only_as_hashes(admin: httpx.Client, database_url: str) -> None:
    minted = [
        mint(admin, {"kind": "sdk", "environment": "production"})["token"],
        mint(admin, {"kind": "admin", "role": "admin"})["token"],
    ]

    rows = stored_tokens(database_url)

    assert len(rows) == 3
    stored = " ".join(str(value) for row in rows for value in row.values())
    for secret in [ADMIN_TOKEN, *minted]:
        assert secret not in stored
        assert secret.split("_", 1)[1] not in stored
    hashes = [row["secret_hash"] for row in rows]
    assert all(hashes)
    assert len(set(hashes)) == 3


def test_the_bootstrap_token_is_an_admin_token_created_only_in_an_empty_database(
    settings: Settings, database_url: str
) -> None:
    first = LiveServer(settings).start()
    try:
        with httpx.Client(
            base_url=first.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        ) as admin:
            tokens = listed(admin)
            assert [(t["name"], t["kind"], t["role"]) for t in tokens] == [
                ("bootstrap", "admin", "admin")
            ]
            assert ADMIN_TOKEN not in admin.get("/api/v1/tokens").text
    finally:
        first.stop()

    other = "gla_another-bootstrap-token"
    second = LiveServer(
        settings.model_copy(update={"bootstrap_admin_token": SecretStr(other)})
    ).start()
    try:
        with httpx.Client(base_url=second.url, timeout=10) as client:
            refused = client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {other}"})
            assert refused.status_code == 401
            still = client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert still.status_code == 200
            assert [t["name"] for t in still.json()["tokens"]] == ["bootstrap"]
    finally:
        second.stop()
    assert len(stored_tokens(database_url)) == 1


def test_bearer_and_x_api_key_both_carry_a_token(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory
) -> None:
    assert admin.put("/api/v1/flags/f", json=boolean_flag(10)).status_code == 201
    sdk_token = make_token(sdk="production")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for headers in (
            {"Authorization": f"Bearer {ADMIN_TOKEN}"},
            {"Authorization": f"bearer {ADMIN_TOKEN}"},
            {"X-API-Key": ADMIN_TOKEN},
        ):
            assert client.get("/api/v1/flags", headers=headers).status_code == 200, headers
        for headers in (
            {"Authorization": f"Bearer {sdk_token}"},
            {"X-API-Key": sdk_token},
        ):
            assert client.get("/api/v1/sdk/config", headers=headers).status_code == 200, headers
            ofrep = client.post("/ofrep/v1/evaluate/flags/f", json=OFREP_BODY, headers=headers)
            assert ofrep.status_code == 200, headers


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic xyz",
        "Basic " + ADMIN_TOKEN,
        "Bearer",
        "Token " + ADMIN_TOKEN,
        ADMIN_TOKEN,
    ],
)
def test_a_malformed_authorization_header_is_401(server: LiveServer, authorization: str) -> None:
    response = httpx.get(
        f"{server.url}/api/v1/flags", headers={"Authorization": authorization}, timeout=10
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer gla_never-issued"},
        {"Authorization": "Bearer gls_never-issued"},
        {"X-API-Key": "gls_never-issued"},
        {"Authorization": "Bearer " + ADMIN_TOKEN + "x"},
    ],
    ids=["none", "unknown-admin", "unknown-sdk", "unknown-api-key", "almost-right"],
)
def test_a_missing_or_unknown_token_is_401_with_a_challenge(
    server: LiveServer, headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        for method, path in (("GET", "/api/v1/flags"), ("GET", "/api/v1/sdk/config")):
            response = client.request(method, path)
            assert response.status_code == 401, (method, path)
            assert "www-authenticate" in response.headers
        evaluated = client.post("/ofrep/v1/evaluate/flags", json=OFREP_BODY)
        assert evaluated.status_code == 401
