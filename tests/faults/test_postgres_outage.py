"""PostgreSQL stopped under a running server (a private cluster, stopped the way a crash
stops it).

While it is down, SDK config and OFREP evaluation are served from memory, and every
write answers 503 with an error body that says what is wrong. When it returns the server
is ready again on its own, writes work, and the database holds exactly what it held
before plus the writes that completed: the failed ones left no change and no audit entry.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.faults.conftest import StartServer
from tests.faults.helpers import IDENTITY, http, put_flag, sdk_token, string_flag
from tests.support.faults import PrivatePostgres, PrivateRedis
from tests.support.servers import wait_until

FAILED_WRITE_BOUND = 5.0
"""Seconds a write may take to fail while the database is down: it must not hang."""
RECOVERY_BOUND = 20.0
TOKEN_CACHE_TTL = 1.0
"""Short, so the outage outlasts it: verified tokens must stay trusted while the
database that would re-verify them is away."""

CONTEXT = {"context": {"targetingKey": "user-1"}}


def snapshot(admin: httpx.Client) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the exported document, every audit entry, oldest first)."""
    state = admin.get("/api/v1/state")
    assert state.status_code == 200, state.text
    audit = admin.get("/api/v1/audit", params={"limit": 500})
    assert audit.status_code == 200, audit.text
    return state.json(), list(reversed(audit.json()["entries"]))


def serves_from_memory(sdk: httpx.Client, served: httpx.Response) -> bool:
    """Config (also conditional) and OFREP, single and bulk, as before the outage."""
    again = sdk.get("/api/v1/sdk/config", headers=IDENTITY)
    assert again.status_code == 200, again.text
    assert (again.content, again.headers["etag"]) == (served.content, served.headers["etag"])
    etag = {**IDENTITY, "If-None-Match": served.headers["etag"]}
    assert sdk.get("/api/v1/sdk/config", headers=etag).status_code == 304
    single = sdk.post("/ofrep/v1/evaluate/flags/greeting", json=CONTEXT)
    assert single.status_code == 200, single.text
    assert single.json()["value"] == "hello"
    bulk = sdk.post("/ofrep/v1/evaluate/flags", json=CONTEXT)
    assert bulk.status_code == 200, bulk.text
    assert {f["key"]: f["value"] for f in bulk.json()["flags"]} == {
        "greeting": "hello",
        "farewell": "bye",
    }
    return True


def failed_writes(admin: httpx.Client, versions: dict[str, str]) -> list[httpx.Response]:
    """One of each kind of write, each of which must fail while the database is down."""
    return [
        admin.put("/api/v1/flags/created-in-outage", json=string_flag("never")),
        admin.put(
            "/api/v1/flags/greeting",
            json=string_flag("lost"),
            headers={"If-Match": versions["greeting"]},
        ),
        admin.delete("/api/v1/flags/farewell", headers={"If-Match": versions["farewell"]}),
        admin.put(
            "/api/v1/flags/greeting/environments/production/enabled", json={"enabled": False}
        ),
        admin.put("/api/v1/state", json={"flags": {"only": string_flag("x")}, "segments": {}}),
        admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": "production"}),
    ]


def test_reads_are_served_from_memory_and_writes_fail_cleanly_while_postgres_is_down(
    private_postgres: PrivatePostgres,
    private_database: str,
    private_redis: PrivateRedis,
    start_server: StartServer,
) -> None:
    server = start_server(
        "server", private_database, private_redis.url, token_cache_ttl=TOKEN_CACHE_TTL
    )
    with http(server) as admin:
        for key, value in (("greeting", "hello"), ("farewell", "bye")):
            assert put_flag(admin, key, string_flag(value)).status_code == 201
        token = sdk_token(admin)
        versions = {
            k: admin.get(f"/api/v1/flags/{k}").headers["etag"] for k in ("greeting", "farewell")
        }
        before_state, before_audit = snapshot(admin)
        with http(server, token) as sdk:
            served = sdk.get("/api/v1/sdk/config", headers=IDENTITY)
            assert served.status_code == 200

            private_postgres.stop("immediate")

            assert server.process is not None
            assert server.process.poll() is None, "the server must outlive its database"
            ready = httpx.get(f"{server.url}/readyz", timeout=5)
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"].startswith("unreachable")

            # Reads: served from memory, unchanged, for longer than tokens are cached.
            stopped = time.monotonic()
            wait_until(
                lambda: (
                    serves_from_memory(sdk, served)
                    and time.monotonic() - stopped > 2 * TOKEN_CACHE_TTL
                ),
                timeout=10 * TOKEN_CACHE_TTL,
                interval=0.2,
                what="reads to keep being served past the token cache's time limit",
            )

            # Writes: refused promptly, with a clear error body.
            started = time.monotonic()
            responses = failed_writes(admin, versions)
            elapsed = time.monotonic() - started
            assert elapsed < FAILED_WRITE_BOUND * len(responses)
            for response in responses:
                request = f"{response.request.method} {response.request.url.path}"
                assert response.status_code == 503, f"{request}: {response.text}"
                error = response.json()["error"]
                assert error["code"] == "unavailable", request
                assert "database" in error["message"], request

            private_postgres.start()

            wait_until(
                lambda: httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200,
                timeout=RECOVERY_BOUND,
                what="the server to be ready again",
            )
            # Nothing half-written: exactly the state and audit log from before.
            assert snapshot(admin) == (before_state, before_audit)

            # Writes work again, and are the only thing that changed.
            updated = put_flag(admin, "greeting", string_flag("hello again"))
            assert updated.status_code == 200, updated.text
            after_state, after_audit = snapshot(admin)
            assert after_state["flags"] == {
                **before_state["flags"],
                "greeting": updated.json(),
            }
            assert after_state["segments"] == before_state["segments"]
            assert after_audit[: len(before_audit)] == before_audit
            added = after_audit[len(before_audit) :]
            assert [(e["action"], e["target_key"]) for e in added] == [("flag.update", "greeting")]
            wait_until(
                lambda: (
                    sdk.post("/ofrep/v1/evaluate/flags/greeting", json=CONTEXT).json()["value"]
                    == "hello again"
                ),
                timeout=10,
                what="evaluation to serve the write made after recovery",
            )
