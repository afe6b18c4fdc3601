"""Small helpers the fault tests share: HTTP clients, flag documents, tokens."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.servers import ServerProcess

ADMIN_TOKEN = "gla_fault-tests-bootstrap-admin-token"
ENV = "production"
IDENTITY = {"Accept-Encoding": "identity"}


def http(
    server: ServerProcess | str, token: str = ADMIN_TOKEN, timeout: float = 10
) -> httpx.Client:
    url = server if isinstance(server, str) else server.url
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)


def sdk_token(admin: httpx.Client, environment: str = ENV) -> str:
    response = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": environment})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def string_flag(value: str, *, description: str = "") -> dict[str, Any]:
    """A flag serving one string in production: easy to change, easy to check."""
    return {
        "description": description,
        "variants": {"value": value, "off": "off"},
        "off_variant": "off",
        "environments": {ENV: {"enabled": True, "fallthrough": {"variant": "value"}}},
    }


def config(sdk: httpx.Client) -> tuple[int, dict[str, Any]]:
    """(version, resolved document) the server serves this SDK token."""
    response = sdk.get("/api/v1/sdk/config", headers=IDENTITY)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return int(response.headers["x-graylane-version"]), body


def served_value(document: dict[str, Any], flag: str) -> object:
    """The value a resolved config serves for a flag with a fixed fallthrough variant."""
    definition = document["flags"][flag]
    environment = definition["environments"][ENV]
    return definition["variants"][environment["fallthrough"]["variant"]]


def put_flag(admin: httpx.Client, key: str, definition: dict[str, Any]) -> httpx.Response:
    """Create the flag, or replace it at the version it has now."""
    current = admin.get(f"/api/v1/flags/{key}")
    headers = {"If-Match": current.headers["etag"]} if current.status_code == 200 else {}
    return admin.put(f"/api/v1/flags/{key}", json=definition, headers=headers)
