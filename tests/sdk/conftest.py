"""Fixtures for SDK tests: the server fixtures of tests/server (fresh PostgreSQL, real
Redis, a live server per test), SDK clients that are closed after each test, a client
serving a document both from a live server and offline, and `graylane-server serve`
processes that a test can kill and start again on the same port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graylane import Client
from graylane_server.settings import Settings
from tests.sdk.support import PRODUCTION
from tests.server.conftest import *  # noqa: F403 - the server fixtures, shared as they are
from tests.server.conftest import ADMIN_TOKEN, TokenFactory, reset_database
from tests.support.servers import LiveServer, ServerProcess, server_env

ClientFactory = Callable[..., Client]


@pytest.fixture
def sdk_key(make_token: TokenFactory) -> str:
    return make_token(sdk=PRODUCTION)


@pytest.fixture
def served_document() -> dict[str, Any]:
    """The flag document `served_client` serves: a test module overrides this."""
    return {"flags": {}}


@pytest.fixture(params=["live-server", "document"])
def served_client(
    request: pytest.FixtureRequest, served_document: dict[str, Any]
) -> Iterator[Client]:
    """A client serving `served_document` for production, once following a live server
    that holds it and once from the document itself, with no server."""
    if request.param == "document":
        with Client.from_document(served_document, PRODUCTION) as offline:
            yield offline
        return
    admin: httpx.Client = request.getfixturevalue("admin")
    response = admin.put("/api/v1/state", json=served_document)
    assert response.status_code == 200, response.text
    clients: ClientFactory = request.getfixturevalue("clients")
    live = clients(request.getfixturevalue("server").url, request.getfixturevalue("sdk_key"))
    live.wait_ready(10)
    yield live


@pytest.fixture
def clients() -> Iterator[ClientFactory]:
    """`clients(url, key, **options)` makes a Client that is closed after the test."""
    made: list[Client] = []

    def make(url: str, key: str, **options: object) -> Client:
        client = Client(url, key, **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


class GraylaneProcess(ServerProcess):
    """A server process with an admin client; `kill()` then `start()` brings it back on
    the same port, as a restarted server would be."""

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        )


StartProcess = Callable[..., GraylaneProcess]


@pytest.fixture
def start_process(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[StartProcess]:
    """Start `graylane-server serve` on the run's PostgreSQL and Redis (stopped after)."""
    reset_database(database_url)
    started: list[GraylaneProcess] = []

    def start(name: str = "server", *, heartbeat: float = 0.2) -> GraylaneProcess:
        env = server_env(
            database_url,
            redis_url,
            ADMIN_TOKEN,
            reconcile_interval=1,
            stream_heartbeat=heartbeat,
            data_dir=tmp_path / name,
            log_level="info",
        )
        process = GraylaneProcess(env, tmp_path / f"{name}.log")
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()


def restart_in_process(previous: LiveServer, settings: Settings) -> LiveServer:
    """A new in-process server on the port a stopped one listened on, as a restart."""
    server = LiveServer(settings)
    server.port, server.url = previous.port, previous.url
    server._server.config.port = previous.port
    return server.start()
