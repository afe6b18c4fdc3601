"""HTTP hardening: oversized bodies get a clear 413 before they are read, and the admin
UI's error pages (500 included) carry the same security headers as its other pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from graylane_server.db import migrate
from graylane_server.settings import Settings
from graylane_server.ui.security import HEADERS
from tests.server.conftest import ADMIN_TOKEN
from tests.server.documents import boolean_flag
from tests.support import services
from tests.support.servers import LiveServer
from tests.ui.conftest import sign_in

LIMIT = 4096


@pytest.fixture
def small_bodies(settings: Settings) -> Iterator[LiveServer]:
    live = LiveServer(settings.model_copy(update={"max_body_bytes": LIMIT})).start()
    yield live
    live.stop()


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert str(LIMIT) in error["message"]


def test_a_body_over_the_limit_is_refused_with_413_and_changes_nothing(
    small_bodies: LiveServer,
) -> None:
    oversized = boolean_flag()
    oversized["description"] = "x" * (LIMIT + 1)
    with httpx.Client(
        base_url=small_bodies.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ) as admin:
        # Declared too large in Content-Length: refused before the body is read.
        assert_too_large(admin.put("/api/v1/flags/big", json=oversized))

        # No Content-Length (chunked): refused once the body read so far passes the limit.
        def chunks() -> Iterator[bytes]:
            yield b'{"description": "'
            for _ in range(LIMIT // 512 + 2):
                yield b"y" * 512
            yield b'"}'

        assert_too_large(
            admin.put(
                "/api/v1/flags/big", content=chunks(), headers={"Content-Type": "application/json"}
            )
        )
        # The same on SDK routes, and before authentication: no token is needed to be refused.
        for path in ("/api/v1/sdk/metrics", "/api/v1/tokens"):
            assert_too_large(
                httpx.post(f"{small_bodies.url}{path}", content=b"{" + b" " * LIMIT + b"}")
            )
        # OFREP's in its own error shape, naming the flag where the path does.
        for path, key in (("/ofrep/v1/evaluate/flags", None), ("/ofrep/v1/evaluate/flags/f", "f")):
            refused = httpx.post(f"{small_bodies.url}{path}", content=b"{" + b" " * LIMIT + b"}")
            assert refused.status_code == 413
            expected = {"errorCode": "GENERAL", "errorDetails": refused.json()["errorDetails"]}
            assert refused.json() == (expected if key is None else {"key": key, **expected})
            assert str(LIMIT) in refused.json()["errorDetails"]
        assert admin.get("/api/v1/flags/big").status_code == 404
        # Just under the limit is read and handled as usual.
        fits = boolean_flag()
        fits["description"] = "x" * 1000
        assert admin.put("/api/v1/flags/big", json=fits).status_code == 201


@pytest.fixture
def own_database(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of its own, which the test may break."""
    with services.fresh_postgres_database() as url:
        engine = create_engine(url)
        migrate(engine)
        engine.dispose()
        yield url


def breakable_server(
    database_url: str, redis_url: str, data_dir: Path, **settings: Any
) -> LiveServer:
    """A server on a database the test may break, logging nothing it expects to fail."""
    return LiveServer(
        Settings(
            database_url=database_url,
            redis_url=redis_url,
            data_dir=data_dir,
            migrate_on_start=False,
            log_level="critical",
            **settings,
        )
    ).start()


def test_the_ui_error_page_for_an_unexpected_failure_carries_the_security_headers(
    own_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    live = breakable_server(
        own_database,
        redis_url,
        tmp_path_factory.mktemp("data"),
        bootstrap_admin_token=SecretStr(ADMIN_TOKEN),
    )
    engine = create_engine(own_database)
    try:
        with httpx.Client(base_url=live.url, timeout=10) as client:
            created = client.post(
                "/api/v1/users",
                json={"username": "ana", "password": "correct-horse-battery", "role": "viewer"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert created.status_code == 201, created.text
            assert sign_in(client, "ana", "correct-horse-battery").status_code == 303
            assert client.get("/ui/audit").status_code == 200
            # Break the database under the page: the audit page now fails unexpectedly.
            with engine.begin() as connection:
                connection.execute(text("DROP TABLE audit_log CASCADE"))
            page = client.get("/ui/audit")
        assert page.status_code == 500
        assert page.headers["content-type"].startswith("text/html")
        assert "Something went wrong" in page.text
        assert "Traceback" not in page.text
        for name, value in HEADERS.items():
            assert page.headers.get(name) == value, name
        assert page.headers["cache-control"] == "no-store"
    finally:
        engine.dispose()
        live.stop()


def test_an_unexpected_failure_on_ofrep_answers_in_ofreps_error_shape(
    own_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    live = breakable_server(own_database, redis_url, tmp_path_factory.mktemp("data"))
    engine = create_engine(own_database)
    try:
        # Break the database under authentication: looking up a new token fails unexpectedly.
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE tokens CASCADE"))
        for path in ("/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags/f"):
            failed = httpx.post(
                f"{live.url}{path}", json={"context": {}}, headers={"X-API-Key": "gls_unknown"}
            )
            assert failed.status_code == 500
            assert failed.json() == {"errorDetails": "an unexpected error occurred"}
            assert "Traceback" not in failed.text
    finally:
        engine.dispose()
        live.stop()
