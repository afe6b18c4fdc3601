"""Rate limits: failed token authentication per client address, token creation per caller
(through the API and the admin UI alike), and failed admin UI sign-ins per client address
whatever the usernames. Valid tokens are never throttled.

Requests come from distinct loopback addresses (127.0.0.0/8 all reach the server on
127.0.0.1), so each test controls exactly which address has failed how often.
"""

from __future__ import annotations

import itertools
import random
import re
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from graylane_server.settings import Settings
from tests.server.conftest import ADMIN_TOKEN
from tests.server.documents import document
from tests.support.servers import LiveServer

MAX_FAILURES = 3
MAX_CREATIONS = 3
MAX_SIGN_IN_FAILURES = 2
MAX_SIGN_IN_FAILURES_PER_ADDRESS = 4
PASSWORD = "correct-horse-battery"
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
                "login_max_failures": MAX_SIGN_IN_FAILURES,
                "login_max_failures_per_address": MAX_SIGN_IN_FAILURES_PER_ADDRESS,
                "login_window_seconds": 600,
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


def unused_address() -> str:
    """A loopback address no earlier run has used: sign-in failures are counted in Redis,
    which outlives a run."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def ui_sign_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    form = client.get("/ui/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert found is not None, form.text
    return client.post(
        "/ui/login",
        data={"username": username, "password": password, "csrf_token": found.group(1)},
    )


def ui_client(
    client_from: ClientFactory, admin: httpx.Client, role: str, address: str
) -> httpx.Client:
    """A client from `address`, signed in to the admin UI as a new user with `role`."""
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    created = admin.post(
        "/api/v1/users", json={"username": name, "password": PASSWORD, "role": role}
    )
    assert created.status_code == 201, created.text
    client = client_from(address)
    assert ui_sign_in(client, name, PASSWORD).status_code == 303
    return client


def assert_rate_limited(response: httpx.Response, window: float = 600) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/json")
    # OFREP defines no body for 429, so OFREP routes answer in the API's shape too.
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


def test_ui_token_creation_is_limited_per_user_like_the_api(client_from: ClientFactory) -> None:
    admin = client_from(fresh_address(), token=ADMIN_TOKEN)
    browser = ui_client(client_from, admin, "admin", unused_address())
    form = browser.get("/ui/tokens")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None

    def create() -> httpx.Response:
        return browser.post(
            "/ui/tokens",
            data={"kind": "sdk", "environment": "staging", "csrf_token": csrf.group(1)},
        )

    for _ in range(MAX_CREATIONS):
        assert create().status_code == 201
    before = admin.get("/api/v1/tokens").json()["tokens"]
    refused = create()
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 600
    assert f"at most {MAX_CREATIONS} tokens" in refused.text
    assert "new-token-secret" not in refused.text
    assert admin.get("/api/v1/tokens").json()["tokens"] == before
    # The allowance is the user's: the bootstrap token still has all of its own.
    created = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": "staging"})
    assert created.status_code == 201


def test_failed_sign_ins_from_one_address_are_refused_with_429_whatever_the_usernames(
    client_from: ClientFactory,
) -> None:
    admin = client_from(fresh_address(), token=ADMIN_TOKEN)
    known = f"known-{uuid.uuid4().hex[:8]}"
    response = admin.post(
        "/api/v1/users", json={"username": known, "password": PASSWORD, "role": "viewer"}
    )
    assert response.status_code == 201
    address = unused_address()
    guesser = client_from(address)
    # A new username every time keeps each username's own count at one...
    for _ in range(MAX_SIGN_IN_FAILURES_PER_ADDRESS):
        wrong = ui_sign_in(guesser, f"guess-{uuid.uuid4().hex[:8]}", "not-the-password")
        assert wrong.status_code == 401
    # ...but the address has used its failures: any further attempt waits, even the right
    # password of a real user.
    for username, password in (
        (f"guess-{uuid.uuid4().hex[:8]}", "not-the-password"),
        (known, PASSWORD),
    ):
        limited = ui_sign_in(guesser, username, password)
        assert limited.status_code == 429
        assert "Too many failed sign-ins from your address" in limited.text
        assert 1 <= int(limited.headers["retry-after"]) <= 600
        assert "graylane_session" not in guesser.cookies
    # Another address has its own count and signs in.
    other = client_from(unused_address())
    assert ui_sign_in(other, known, PASSWORD).status_code == 303
