"""With Redis stopped, SDK metric reports are answered 503 with `Retry-After` (the SDK
keeps its counts and sends them again), and the outage is logged once, not per report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from graylane_server.settings import Settings
from tests.server.conftest import ADMIN_TOKEN
from tests.support.faults import PrivateRedis
from tests.support.servers import ServerProcess, server_env

PATH = "/api/v1/sdk/metrics"


@pytest.fixture
def replica(
    settings: Settings, private_redis: PrivateRedis, tmp_path: Path
) -> Iterator[ServerProcess]:
    assert settings.database_url is not None
    env = server_env(
        settings.database_url,
        private_redis.url,
        ADMIN_TOKEN,
        data_dir=tmp_path / "data",
        log_level="info",
        log_json="true",
    )
    process = ServerProcess(env, tmp_path / "server.log")
    try:
        yield process.start(timeout=60)
    finally:
        process.kill()


def report() -> dict[str, object]:
    now = time.time()
    return {
        "window": {"start": now - 10, "end": now},
        "evaluations": [{"flag": "f", "variant": "on", "count": 3}],
        "events": [],
    }


def test_metrics_answer_503_with_retry_after_while_redis_is_down_and_log_it_once(
    replica: ServerProcess, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    with httpx.Client(
        base_url=replica.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ) as admin:
        minted = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": "production"})
        assert minted.status_code == 201, minted.text
    headers = {"Authorization": f"Bearer {minted.json()['token']}"}
    with httpx.Client(base_url=replica.url, headers=headers, timeout=10) as sdk:
        assert sdk.post(PATH, json=report()).status_code == 202

        private_redis.stop()
        for _ in range(5):
            refused = sdk.post(PATH, json=report())
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["retry-after"]) > 0
            assert refused.json()["error"]["code"] == "unavailable"
        # The server itself is fine: config is served from memory.
        assert sdk.get("/api/v1/sdk/config").status_code == 200

    log = replica.log()
    assert log.count('"redis.unavailable"') == 1, log
    assert "Traceback" not in log
    assert '"request.failed"' not in log
