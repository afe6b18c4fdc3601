"""`POST /api/v1/sdk/metrics`: counts stored exactly (Redis and the embedded SQL store),
answered ahead of FastAPI's routing with the same documentation and the same errors as
a FastAPI body parameter."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis
from pydantic import SecretStr

from graylane_server.settings import Settings
from graylane_server.usage.endpoints import direct
from graylane_server.usage.store import (
    RETENTION_SECONDS,
    RedisUsageStore,
    bucket_of,
    evaluation_series,
    event_series,
)
from tests.server.conftest import ADMIN_TOKEN, TokenFactory
from tests.support.servers import LiveServer

PATH = "/api/v1/sdk/metrics"


def unique(prefix: str = "metrics") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def post(url: str, token: str | None, body: bytes, content_type: str | None) -> httpx.Response:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if content_type is not None:
        headers["Content-Type"] = content_type
    return httpx.post(f"{url}{PATH}", content=body, headers=headers, timeout=10)


def read(admin: httpx.Client, flag: str) -> dict[str, Any]:
    now = time.time()
    response = admin.get(
        f"/api/v1/flags/{flag}/environments/production/metrics",
        params={"since": now - 60, "until": now + 10},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def report(flag: str, other: str) -> dict[str, Any]:
    """Two flags, with the same (flag, variant) and event twice: the server adds them up."""
    return {
        "config_version": 4,
        "window": {"start": time.time() - 10, "end": time.time()},
        "evaluations": [
            {"flag": flag, "variant": "on", "count": 3},
            {"flag": flag, "variant": "off", "count": 5},
            {"flag": flag, "variant": "on", "count": 4},
            {"flag": other, "variant": "blue", "count": 1},
        ],
        "events": [
            {"flag": flag, "variant": "on", "group": "exposed", "event": "request", "count": 9},
            {"flag": flag, "variant": "on", "group": "exposed", "event": "request", "count": 1},
            {"flag": flag, "variant": "off", "group": "unexposed", "event": "error", "count": 0},
        ],
        "dropped": 0,
    }


def assert_stored(admin: httpx.Client, flag: str, other: str) -> None:
    usage = read(admin, flag)
    assert usage["evaluations"] == {"on": 7, "off": 5}
    assert usage["events"] == {"exposed/request": {"on": 10}, "unexposed/error": {"off": 0}}
    assert read(admin, other)["evaluations"] == {"blue": 1}


def test_counts_are_added_up_and_stored_in_redis_before_the_answer(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory, redis_url: str
) -> None:
    token = make_token(sdk="production")
    flag, other = unique(), unique()
    response = httpx.post(
        f"{server.url}{PATH}",
        json=report(flag, other),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert (response.status_code, response.json()) == (202, {"accepted": 7})
    assert_stored(admin, flag, other)
    # Every hash written expires with the retention, counted from its last write.
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(f"graylane:usage:production:{flag}:*")
    assert keys
    assert all(RETENTION_SECONDS - 60 < client.ttl(key) <= RETENTION_SECONDS for key in keys)
    client.close()


def test_counts_are_stored_in_the_embedded_database(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        bootstrap_admin_token=SecretStr(ADMIN_TOKEN),
        log_level="critical",
    )
    live = LiveServer(settings).start()
    try:
        with httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        ) as admin:
            minted = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": "production"})
            token = minted.json()["token"]
            flag, other = unique(), unique()
            for _ in range(2):
                response = httpx.post(
                    f"{live.url}{PATH}",
                    json=report(flag, other),
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )
                assert response.status_code == 202, response.text
            usage = read(admin, flag)
            assert usage["evaluations"] == {"on": 14, "off": 10}
            assert usage["events"]["exposed/request"] == {"on": 20}
    finally:
        live.stop()


def test_the_redis_store_keeps_every_count_exact(redis_url: str) -> None:
    store = RedisUsageStore(redis_url)
    environment = unique("environment")
    flag = 'checkout ✓ \u0000 | "quoted" \\ é'
    at = time.time()
    big = 10**12
    series = {
        evaluation_series("on"): big,
        evaluation_series("ünïcode 🚀"): 1,
        event_series("exposed", "on", "error"): 0,
    }
    # One record per event loop (each gets its own asyncio client), then three in one.
    for _ in range(2):
        asyncio.run(store.record(environment, at, {flag: dict(series)}))
    asyncio.run(store.record(environment, at, {flag: {s: n * 3 for s, n in series.items()}}))
    # 2 + 3 reports of 10**12 per bucket: past what a double holds exactly.
    many = {f"f{i}": {evaluation_series("on"): 9 * 10**15 + i} for i in range(3)}
    asyncio.run(store.record(environment, at, many))
    asyncio.run(store.record(environment, at, many))

    found = store.read(environment, flag, at - 10, at + 10)
    assert found == {bucket_of(at): {s: n * 5 for s, n in series.items()}}
    for i in range(3):
        counts = store.read(environment, f"f{i}", at - 10, at + 10)[bucket_of(at)]
        assert counts[evaluation_series("on")] == 2 * (9 * 10**15 + i)


# --- errors, as a FastAPI body parameter gives them ---------------------------------------

JSON = "application/json"
NOT_AN_OBJECT = "Input should be a valid dictionary or object to extract fields from"


def problems(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid"
    return [(p["path"], p["message"]) for p in error["problems"]]


def test_an_invalid_body_is_answered_with_its_problems_by_path(
    server: LiveServer, make_token: TokenFactory
) -> None:
    token = make_token(sdk="production")
    body = (
        b'{"evaluations": [{"flag": "", "variant": "v", "count": -1, "extra": 1}, 5],'
        b' "events": [{"flag": "f", "variant": "v", "group": "nope", "event": "e", "count": 1}],'
        b' "dropped": "x"}'
    )
    assert problems(post(server.url, token, body, JSON)) == [
        ("evaluations[0].flag", "String should have at least 1 character"),
        ("evaluations[0].count", "Input should be greater than or equal to 0"),
        ("evaluations[0].extra", "Extra inputs are not permitted"),
        ("evaluations[1]", NOT_AN_OBJECT),
        ("events[0].group", "Input should be 'exposed', 'unexposed' or 'targeted'"),
        ("dropped", "Input should be a valid integer, unable to parse string as an integer"),
    ]
    response = post(server.url, token, b'{"x": 1}', "application/json; charset=utf-8")
    assert problems(response) == [("x", "Extra inputs are not permitted")]
    assert problems(post(server.url, token, b'{"evaluations": [', JSON)) == [
        ("[17]", "JSON decode error")
    ]
    assert problems(post(server.url, token, b"", JSON)) == [("", "Field required")]
    # A body under /api/ is JSON whatever its declared type (`curl -d` declares a form).
    for declared in ("text/plain", "application/x-www-form-urlencoded", None):
        undeclared = post(server.url, token, b'{"x": 1}', declared)
        assert problems(undeclared) == [("x", "Extra inputs are not permitted")]
    assert problems(post(server.url, token, b"[]", JSON)) == [("", NOT_AN_OBJECT)]
    # Bytes that are not UTF-8 are named where they sit.
    assert problems(post(server.url, token, b'{"a": "\xff"}', JSON)) == [
        ("a", "is not valid UTF-8")
    ]


def test_the_body_is_parsed_before_the_token_is_checked_and_validated_after(
    server: LiveServer,
) -> None:
    assert problems(post(server.url, None, b"{", JSON)) == [("[1]", "JSON decode error")]
    for body in (b'{"x": 1}', b"", b"{}"):
        response = post(server.url, None, body, JSON)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="graylane"'
    refused = post(server.url, ADMIN_TOKEN, b'{"x": 1}', JSON)
    assert refused.status_code == 403


def test_the_endpoint_is_served_directly_and_documented_as_before(server: LiveServer) -> None:
    assert {(r.method, r.path) for r in direct.routes} == {("POST", PATH)}
    document = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    operation = document["paths"][PATH]["post"]
    assert operation["operationId"] == "post_metrics_api_v1_sdk_metrics_post"
    assert operation["requestBody"] == {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MetricsReport"}}},
        "required": True,
    }
    assert operation["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Accepted"
    }
    assert {"400", "401", "403", "413", "422", "429"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    assert {"MetricsReport", "EvaluationCount", "EventCount", "Window"} <= set(schemas)
