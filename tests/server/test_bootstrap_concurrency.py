"""The bootstrap admin token when several processes start at once on an empty database:
exactly one of them makes it, and none fails."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, func, select, text

from graylane_server import db
from graylane_server.models import TokenRow
from graylane_server.tokens import service as tokens
from tests.support import services

WORKERS = 8
ROUNDS = 5


@pytest.fixture(scope="module")
def empty_database() -> Iterator[str]:
    """A database of its own: the test empties its tokens table between rounds."""
    with services.fresh_postgres_database() as url:
        engine = create_engine(url)
        db.migrate(engine)
        engine.dispose()
        yield url


def bootstrap_at_once(factory: db.SessionFactory) -> tuple[list[bool], list[BaseException]]:
    """`tokens.bootstrap` from WORKERS threads released together: what each returned, and
    what any raised."""
    start = threading.Barrier(WORKERS)
    made: list[bool] = []
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            with db.transaction(factory) as session:
                made.append(tokens.bootstrap(session, "gla_bootstrap-secret"))
        except BaseException as exc:  # noqa: BLE001 - every failure is the finding
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return made, failures


def test_workers_bootstrapping_at_once_make_exactly_one_admin_token(empty_database: str) -> None:
    engine = create_engine(empty_database, pool_size=WORKERS)
    factory = db.session_factory(engine)
    try:
        for _ in range(ROUNDS):
            with engine.begin() as connection:
                connection.execute(text("TRUNCATE tokens, audit_log RESTART IDENTITY CASCADE"))
            made, failures = bootstrap_at_once(factory)
            assert failures == []
            assert sorted(made) == [False] * (WORKERS - 1) + [True]
            with factory() as session:
                assert session.scalar(select(func.count()).select_from(TokenRow)) == 1
    finally:
        engine.dispose()
