"""Fixtures for admin UI tests: the live server of tests/server (fresh PostgreSQL, real
Redis), people with roles, HTTP clients signed in as them, and Debian's chromium driven by
Playwright for the browser tests."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.server.conftest import *  # noqa: F403 - the server fixtures, shared as they are
from tests.support.servers import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


@pytest.fixture(scope="session", autouse=True)
def no_sign_in_failures_counted(redis_url: str) -> None:
    """Every test here signs in from 127.0.0.1, and failed sign-ins are counted per address
    in Redis, which outlives a run: start each run with none counted."""
    client = redis.Redis.from_url(redis_url)
    for pattern in ("graylane:login-failures:*", "graylane:login-failures-address:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    client.close()


UserFactory = Callable[..., str]


@pytest.fixture
def make_user(admin: httpx.Client) -> UserFactory:
    """`make_user("release_manager")` creates a user with that role and returns its name."""

    def make(role: str, username: str | None = None, password: str = PASSWORD) -> str:
        name = username or f"{role.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
        response = admin.post(
            "/api/v1/users", json={"username": name, "password": password, "role": role}
        )
        assert response.status_code == 201, response.text
        return name

    return make


def sign_in(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    form = client.get("/ui/login")
    return client.post(
        "/ui/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(form.text)},
    )


SignedInFactory = Callable[[str], httpx.Client]


@pytest.fixture
def signed_in(server: LiveServer) -> Iterator[SignedInFactory]:
    """An HTTP client with a UI session for `username` (no redirects followed)."""
    clients: list[httpx.Client] = []

    def make(username: str) -> httpx.Client:
        client = httpx.Client(base_url=server.url, timeout=15)
        clients.append(client)
        response = sign_in(client, username)
        assert response.status_code == 303, response.text
        return client

    yield make
    for client in clients:
        client.close()


def boolean_flag(
    *, percentage: float = 0, ramp: dict[str, Any] | None = None, environment: str = "staging"
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "enabled": True,
        "fallthrough": {
            "rollout": {"percentage": percentage, "variants": {"on": 100}},
            "otherwise": "off",
        },
    }
    if ramp is not None:
        config["ramp"] = ramp
    return {
        "description": "A flag for UI tests",
        "tags": ["ui"],
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": {environment: config},
    }


def plan(**overrides: Any) -> dict[str, Any]:
    return {
        "stages": [5, 25, 50, 100],
        "min_stage_duration": "10m",
        "min_samples": 1000,
        "guards": [{"metric": "error_rate", "max": 0.01}],
        "auto_advance": False,
        **overrides,
    }


# --- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/ensure-chromium (or `make test`)", pytrace=False
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Any, server: LiveServer) -> Iterator[Callable[[], Any]]:
    """Pages in fresh browser contexts (no shared cookies), at the live server."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )
        page.js_errors = errors
        return page

    yield make
    for context in contexts:
        context.close()


def log_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/ui/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/")
