"""Real PostgreSQL and Redis for the suite. Missing services fail the run, never skip it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def postgres_admin_url() -> URL:
    raw = os.environ.get("GRAYLANE_TEST_DATABASE_URL", DEFAULT_POSTGRES)
    url = make_url(raw)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def redis_url() -> str:
    url = os.environ.get("GRAYLANE_TEST_REDIS_URL", DEFAULT_REDIS)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {url} ({exc}); `make test` starts it", pytrace=False
        )
    return url


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database for this run, dropped afterwards."""
    admin = postgres_admin_url()
    name = f"graylane_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is fatal for the run
        pytest.fail(
            f"PostgreSQL is not reachable at {admin.render_as_string(hide_password=True)} "
            f"({type(exc).__name__}: {exc}); `make test` starts it",
            pytrace=False,
        )
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
