"""SIGKILL during `PUT /api/v1/state` of a large document.

The apply writes thousands of flags and audit entries in one transaction, so it takes a
measurable time. The server is killed at several points of it, found by watching the
transaction's progress in PostgreSQL (the flags table grows as rows are written, before
anything commits), and once right after the commit. After each kill a fresh server
process reads the database: it holds the whole new document or exactly the old one, and
the audit log agrees, with all of the apply's entries or none.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from tests.faults.conftest import StartServer
from tests.faults.helpers import http, string_flag
from tests.support.faults import PrivateRedis
from tests.support.servers import ServerProcess, wait_until

FLAGS = 1500
DELETED = 100
CREATED = 100
CHANGES = FLAGS + CREATED
"""Updated (FLAGS - DELETED), deleted and created flags: one audit entry each."""
KILL_AT = (0.25, 0.75)
"""Shares of the apply's table growth at which the server is killed mid-transaction."""
APPLY_BOUND = 120.0
VERSIONS = "SELECT array_agg(config_version ORDER BY key) FROM environments"


def old_document() -> dict[str, Any]:
    return {"flags": {f"f-{i:04d}": string_flag(f"old-{i}") for i in range(FLAGS)}}


def new_document() -> dict[str, Any]:
    flags = {f"f-{i:04d}": string_flag(f"new-{i}") for i in range(FLAGS - DELETED)}
    flags |= {f"g-{i:04d}": string_flag(f"new-g-{i}") for i in range(CREATED)}
    return {"flags": flags}


@pytest.fixture
def engine(shared_database: str) -> Iterator[Engine]:
    engine = create_engine(shared_database, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def scalar(engine: Engine, sql: str, **params: object) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar_one()


def table_bytes(engine: Engine) -> int:
    """Grows as the apply writes rows, committed or not."""
    return int(scalar(engine, "SELECT pg_relation_size('flags') + pg_relation_size('audit_log')"))


def classify(export: dict[str, Any], old_export: dict[str, Any], new: dict[str, Any]) -> str:
    """`old`, `new` (every flag of the new document with its new variants, nothing
    else), or `mixed`."""
    if export == old_export:
        return "old"
    flags = export["flags"]
    if sorted(flags) == sorted(new["flags"]) and all(
        flags[k]["variants"] == d["variants"] for k, d in new["flags"].items()
    ):
        return "new"
    return "mixed"


def committed_entries(engine: Engine, reason: str) -> int:
    return int(scalar(engine, "SELECT count(*) FROM audit_log WHERE reason = :r", r=reason))


class Apply:
    """`PUT /api/v1/state` in a thread; the server may die under it."""

    def __init__(self, server: ServerProcess, document: dict[str, Any], reason: str) -> None:
        self.response: httpx.Response | None = None
        self.error: Exception | None = None
        self._thread = threading.Thread(
            target=self._run, args=(server, document, reason), daemon=True
        )
        self._thread.start()

    def _run(self, server: ServerProcess, document: dict[str, Any], reason: str) -> None:
        try:
            with http(server, timeout=APPLY_BOUND) as admin:
                self.response = admin.put(
                    "/api/v1/state", json=document, headers={"X-Graylane-Reason": reason}
                )
        except httpx.HTTPError as exc:
            self.error = exc

    def join(self) -> None:
        self._thread.join(APPLY_BOUND)
        assert not self._thread.is_alive(), "the apply did not finish"


def test_a_killed_apply_leaves_the_whole_new_document_or_exactly_the_old_one(
    shared_database: str,
    private_redis: PrivateRedis,
    start_server: StartServer,
    engine: Engine,
) -> None:
    limits = {"max_body_bytes": 64 * 1024 * 1024}
    server = start_server("server", shared_database, private_redis.url, **limits)
    old, new = old_document(), new_document()

    start = table_bytes(engine)
    applied = Apply(server, old, "old")
    applied.join()
    assert applied.response is not None
    assert applied.response.status_code == 200, applied.response.text
    growth = table_bytes(engine) - start  # what an apply of this size writes
    with http(server) as admin:
        old_export = admin.get("/api/v1/state").json()
    old_audit = int(scalar(engine, "SELECT count(*) FROM audit_log"))
    old_versions = scalar(engine, VERSIONS)

    with ThreadPoolExecutor(1) as successors:
        for index, share in enumerate([*KILL_AT, None]):
            # The server that comes up after the kill, started alongside to save time: it
            # shares nothing with the killed one but the database, as a restarted one would.
            successor = successors.submit(
                start_server, f"server-{index + 1}", shared_database, private_redis.url, **limits
            )
            reason = f"attempt-{index}"
            base = table_bytes(engine)
            attempt = Apply(server, new, reason)
            if share is None:  # right after the commit, before the server answers
                wait_until(
                    lambda reason=reason: committed_entries(engine, reason) > 0,  # type: ignore[misc]
                    timeout=APPLY_BOUND,
                    what="the apply to commit",
                )
            else:
                wait_until(
                    lambda share=share, base=base: table_bytes(engine) - base >= share * growth,  # type: ignore[misc]
                    timeout=APPLY_BOUND,
                    what=f"the apply to write {share:.0%} of its rows",
                )
            server.kill()
            attempt.join()
            server = successor.result()

            with http(server) as admin:
                export = admin.get("/api/v1/state").json()
            outcome = classify(export, old_export, new)
            entries = committed_entries(engine, reason)
            # Kills inside the transaction roll all of it back; the one after the commit keeps
            # all of it.
            assert outcome == ("old" if share is not None else "new"), f"killed at {share}"
            if outcome == "old":
                assert entries == 0, f"{entries} audit entries of an apply that left no change"
                assert scalar(engine, "SELECT count(*) FROM audit_log") == old_audit
                assert scalar(engine, VERSIONS) == old_versions
            else:
                assert entries == CHANGES, f"{entries} audit entries for {CHANGES} changes"
                assert scalar(engine, "SELECT count(*) FROM audit_log") == old_audit + CHANGES
