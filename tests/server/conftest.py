"""Fixtures for server tests: a fresh PostgreSQL database per run, migrated from scratch,
real Redis, and a live server per test reached over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from graylane_server.db import migrate
from graylane_server.settings import Settings
from tests.support import services
from tests.support.servers import LiveServer

ADMIN_TOKEN = "gla_test-bootstrap-admin-token"
DEFAULT_ENVIRONMENTS = ("development", "staging", "production")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with services.fresh_postgres_database() as url:
        engine = create_engine(url)
        migrate(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return services.redis_url()


def reset_database(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE flags, segments, tokens, users, audit_log RESTART IDENTITY CASCADE")
        )
        connection.execute(
            text(
                "DELETE FROM environments WHERE key NOT IN ('development', 'staging', 'production')"
            )
        )
        connection.execute(
            text(
                "UPDATE environments SET config_version = 1, name = initcap(key),"
                " protected = (key = 'production')"
            )
        )
    engine.dispose()


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    reset_database(database_url)
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path,
        bootstrap_admin_token=SecretStr(ADMIN_TOKEN),
        migrate_on_start=False,
        reconcile_interval=1.0,
        stream_heartbeat=1.0,
        log_level="warning",
    )


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    live = LiveServer(settings).start()
    yield live
    live.stop()


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ) as client:
        yield client


TokenFactory = Callable[..., str]


@pytest.fixture
def make_token(admin: httpx.Client) -> TokenFactory:
    """Mint a token through the API: `make_token(role="editor")`, `make_token(sdk="production")`."""

    def make(*, role: str | None = None, sdk: str | None = None) -> str:
        body = {"kind": "sdk", "environment": sdk} if sdk else {"kind": "admin", "role": role}
        response = admin.post("/api/v1/tokens", json=body)
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token

    return make


@pytest.fixture
def client_for(server: LiveServer) -> Iterator[Callable[[str], httpx.Client]]:
    """HTTP clients authenticated with a given token."""
    clients: list[httpx.Client] = []

    def make(token: str) -> httpx.Client:
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
