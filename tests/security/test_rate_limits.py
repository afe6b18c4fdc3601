"""Rate limits on the token endpoints: failed authentication per client address, and token
creation per caller. Valid tokens are never throttled.

Requests come from distinct loopback addresses (127.0.0.0/8 all reach the server on
127.0.0.1), so each test controls exactly which address has failed how often.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import httpx
import pytest

from graylane_server.settings import Settings
from tests.server.conftest import ADMIN_TOKEN
from tests.server.documents import document
from tests.support.servers import LiveServer

MAX_FAILURES = 3
MAX_CREATIONS = 3
OFREP_BODY = {"context": {"targetingKey": "user-1"}}
_addresses = itertools.count(2)

ClientFactory = Callable[..., httpx.Client]


@pytest.fixture
def limited(settings: Settings) -> Iterator[LiveServer]:
    """A server with small limits, so a test reaches them in a few requests."""
    live = LiveServer(
        settings.model_copy(
            update={
                "auth_max_failures": MAX_FAILURES,
                "auth_window_seconds": 600,
                "token_create_max": MAX_CREATIONS,
                "token_create_window_seconds": 600,
            }
        )
    ).start()
    yield live
    live.stop()


@pytest.fixture
def client_from(limited: LiveServer) -> Iterator[ClientFactory]:
    """`client_from(address, token=..., api_key=...)`: a client whose requests leave from
    `address` (a loopback address), with the token as bearer or `X-API-Key`."""
    clients: list[httpx.Client] = []

    def make(address: str, *, token: str | None = None, api_key: str | None = None) -> httpx.Client:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if api_key is not None:
            headers["X-API-Key"] = api_key
        client = httpx.Client(
            base_url=limited.url,
            headers=headers,
            timeout=10,
            transport=httpx.HTTPTransport(local_address=address),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def fresh_address() -> str:
    return f"127.0.0.{next(_addresses)}"


def assert_rate_limited(response: httpx.Response, window: float = 600) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.json()["error"]["message"]
    assert 1 <= int(response.headers["retry-after"]) <= window


def test_bad_tokens_from_one_address_are_refused_with_429_after_the_limit(
    client_from: ClientFactory,
) -> None:
    address = fresh_address()
    wrong_admin = client_from(address, token="gla_never-issued")
    wrong_sdk = client_from(address, token="gls_never-issued")
    wrong_key = client_from(address, api_key="gls_never-issued-either")
    # Admin and SDK tokens, bearer or API key, on admin, SDK and OFREP routes: all count.
    first = [
        wrong_admin.get("/api/v1/flags"),
        wrong_sdk.get("/api/v1/sdk/config"),
        wrong_key.post("/ofrep/v1/evaluate/flags", json=OFREP_BODY),
    ]
    assert [r.status_code for r in first] == [401] * MAX_FAILURES
    for response in (
        wrong_admin.get("/api/v1/flags"),
        wrong_sdk.get("/api/v1/sdk/config"),
        wrong_key.post("/ofrep/v1/evaluate/flags/new-checkout", json=OFREP_BODY),
        client_from(address, token="gla_another-guess").post("/api/v1/tokens", json={}),
    ):
        assert_rate_limited(response)
    # No credentials at all is not a guess: still a plain 401 with its challenge.
    anonymous = client_from(address).get("/api/v1/flags")
    assert anonymous.status_code == 401
    assert "www-authenticate" in anonymous.headers
    # Another address has its own count.
    assert (
        client_from(fresh_address(), token="gla_never-issued").get("/api/v1/flags").status_code
        == 401
    )


def test_valid_tokens_are_never_throttled_even_from_a_limited_address(
    client_from: ClientFactory,
) -> None:
    address = fresh_address()
    admin = client_from(address, token=ADMIN_TOKEN)
    assert admin.put("/api/v1/state", json=document()).status_code == 200
    sdk_token = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": "production"})
    assert sdk_token.status_code == 201
    sdk = client_from(address, token=sdk_token.json()["token"])
    sdk_by_key = client_from(address, api_key=sdk_token.json()["token"])
    # Many successful requests count for nothing...
    for _ in range(10 * MAX_FAILURES):
        assert admin.get("/api/v1/flags").status_code == 200
        assert sdk.get("/api/v1/sdk/config").status_code == 200
        assert sdk_by_key.post("/ofrep/v1/evaluate/flags/theme", json=OFREP_BODY).status_code == 200
    # ...so the address still has all its failures left, and then it is limited.
    wrong = client_from(address, token="gla_never-issued")
    assert [wrong.get("/api/v1/flags").status_code for _ in range(MAX_FAILURES)] == [401] * 3
    assert_rate_limited(wrong.get("/api/v1/flags"))
    # The limited address keeps working with valid tokens, admin and SDK alike.
    assert admin.get("/api/v1/flags").status_code == 200
    assert sdk.get("/api/v1/sdk/config").status_code == 200
    assert sdk_by_key.post("/ofrep/v1/evaluate/flags", json=OFREP_BODY).status_code == 200
    assert admin.post("/api/v1/tokens", json={"kind": "admin", "role": "viewer"}).status_code == 201
    # A token that is refused for its role (403) is a valid token, not a failure.
    assert sdk.get("/api/v1/flags").status_code == 403


def test_token_creation_is_limited_per_caller(client_from: ClientFactory) -> None:
    address = fresh_address()
    bootstrap = client_from(address, token=ADMIN_TOKEN)
    second = bootstrap.post("/api/v1/tokens", json={"kind": "admin", "role": "admin"})
    assert second.status_code == 201
    for _ in range(MAX_CREATIONS - 1):
        created = bootstrap.post("/api/v1/tokens", json={"kind": "sdk", "environment": "staging"})
        assert created.status_code == 201, created.text
    before = bootstrap.get("/api/v1/tokens").json()["tokens"]
    refused = bootstrap.post("/api/v1/tokens", json={"kind": "sdk", "environment": "staging"})
    assert_rate_limited(refused)
    assert "token" not in refused.json()
    # Nothing was created, and the caller can still do everything else.
    assert bootstrap.get("/api/v1/tokens").json()["tokens"] == before
    assert bootstrap.get("/api/v1/flags").status_code == 200
    # Another caller, from the same address, has its own allowance.
    other = client_from(address, token=second.json()["token"])
    for _ in range(MAX_CREATIONS):
        created = other.post("/api/v1/tokens", json={"kind": "sdk", "environment": "staging"})
        assert created.status_code == 201, created.text
    assert_rate_limited(other.post("/api/v1/tokens", json={"kind": "admin", "role": "viewer"}))
