"""Fixtures for fault-injection tests: a fresh database per test (on the shared
PostgreSQL, or on a private cluster a test may stop), a private Redis a test may stop,
and `graylane-server serve` replicas that are killed after the test whatever happened."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from graylane_server.db import migrate
from tests.faults.helpers import ADMIN_TOKEN
from tests.support import services
from tests.support.faults import PrivatePostgres
from tests.support.servers import ServerProcess, server_env


def _migrated(url: str) -> str:
    engine = create_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture
def shared_database() -> Iterator[str]:
    """A new database on the machine's PostgreSQL, migrated, dropped after the test."""
    with services.fresh_postgres_database() as url:
        yield _migrated(url)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        yield cluster.start()
    finally:
        cluster.close()


@pytest.fixture
def private_database(private_postgres: PrivatePostgres) -> str:
    """A migrated database on the private cluster."""
    engine = create_engine(private_postgres.url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("CREATE DATABASE graylane"))
    engine.dispose()
    return _migrated(private_postgres.url("graylane"))


StartServer = Callable[..., ServerProcess]
StartServers = Callable[..., list[ServerProcess]]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """`start_server(name, database_url, redis_url, **settings)`: a server process with
    the bootstrap admin token; extra keyword settings become GRAYLANE_* variables."""
    started: list[ServerProcess] = []

    def start(name: str, database_url: str, redis_url: str, **settings: object) -> ServerProcess:
        env = server_env(
            database_url,
            redis_url,
            ADMIN_TOKEN,
            **{
                "reconcile_interval": 60,
                "stream_heartbeat": 0.5,
                "token_cache_ttl": 600,
                "data_dir": tmp_path / name,
                "log_level": "info",
                **settings,
            },
        )
        server = ServerProcess(env, tmp_path / f"{name}.log")
        started.append(server)
        return server.start(timeout=60)

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def start_servers(start_server: StartServer) -> StartServers:
    """`start_servers(names, database_url, redis_url, **settings)`: replicas started side
    by side, since each takes seconds to import and warm up."""

    def start(names: Sequence[str], *args: object, **settings: object) -> list[ServerProcess]:
        with ThreadPoolExecutor(len(names)) as pool:
            futures = [pool.submit(start_server, name, *args, **settings) for name in names]
            return [future.result() for future in futures]

    return start
