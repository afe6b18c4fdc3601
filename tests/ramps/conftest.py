"""Fixtures and helpers for ramp tests: the server fixtures of tests/server (fresh
PostgreSQL, real Redis, a live server per test), with a controller that only acts when a
test calls `tick(now=...)`, and with the ramp controller's own tables cleared too. SDK
counts are posted as an SDK reports them: for a window, made at a rollout percentage,
split over unit clusters."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from graylane.core import compile_document, evaluate, parse_document
from graylane_server.ramps.observations import CLUSTERS
from graylane_server.settings import Settings
from tests.server.conftest import *  # noqa: F403 - the server fixtures, shared as they are
from tests.server.conftest import ADMIN_TOKEN, reset_database
from tests.support.servers import wait_until

CONTROLLER_INTERVAL = 3600.0
"""The live server's controller ticks once at start, then sleeps this long: tests drive
it with `tick(now=...)`. Its lease lives three intervals."""

SDK_CONFIG = "/api/v1/sdk/config"
BUCKET_SECONDS = 10


def clear_ramp_tables(url: str) -> None:
    """What `reset_database` leaves behind and a ramp test must not inherit: the
    controller's lease (held for hours by the last test's server), tripped alerts,
    webhooks and their deliveries, and counts of the embedded store."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE leases, guard_alerts, webhooks, metric_counts RESTART IDENTITY CASCADE")
        )
    engine.dispose()


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    reset_database(database_url)
    clear_ramp_tables(database_url)
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path,
        bootstrap_admin_token=SecretStr(ADMIN_TOKEN),
        migrate_on_start=False,
        reconcile_interval=1.0,
        stream_heartbeat=1.0,
        controller_interval=CONTROLLER_INTERVAL,
        log_level="error",
    )


# --- documents ----------------------------------------------------------------------------


def unique_key(prefix: str) -> str:
    """Flag keys unique to one test: SDK counts live in a shared Redis under the flag's key,
    so a key reused by another test (or another run) could lend it counts."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ramp_block(
    *,
    stages: Sequence[float] = (1, 10, 50, 100),
    min_stage_duration: str = "10m",
    min_samples: int = 1000,
    guards: list[dict[str, Any]] | None = None,
    auto_advance: bool = True,
    on_breach: str | None = None,
    approval_above: float | None = None,
    watch: str | None = None,
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "stages": list(stages),
        "min_stage_duration": min_stage_duration,
        "min_samples": min_samples,
        "guards": guards if guards is not None else [{"metric": "error_rate", "max": 0.01}],
        "auto_advance": auto_advance,
    }
    if on_breach is not None:
        block["on_breach"] = on_breach
    if approval_above is not None:
        block["approval_above"] = approval_above
    if watch is not None:
        block["watch_completed"] = watch
    return block


def ramped_flag(
    environments: Sequence[str] = ("production",),
    *,
    percentage: float = 0,
    enabled: bool = True,
    **ramp: Any,
) -> dict[str, Any]:
    """A boolean flag whose fallthrough rollout is driven by a ramp in each environment."""
    config = {
        "enabled": enabled,
        "fallthrough": {
            "rollout": {"percentage": percentage, "variants": {"on": 100}},
            "otherwise": "off",
        },
        "ramp": ramp_block(**ramp),
    }
    return {
        "description": "A change ramped by a plan",
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": {env: dict(config) for env in environments},
    }


def create_flag(admin: httpx.Client, key: str, definition: dict[str, Any]) -> None:
    response = admin.put(f"/api/v1/flags/{key}", json=definition)
    assert response.status_code == 201, response.text


def create_ramped_flag(
    admin: httpx.Client,
    environments: Sequence[str] = ("production",),
    *,
    prefix: str = "checkout",
    **plan: Any,
) -> str:
    """A new flag, under a key of its own, as `ramped_flag(environments, **plan)` builds
    it; returns the key."""
    key = unique_key(prefix)
    create_flag(admin, key, ramped_flag(environments, **plan))
    return key


# --- tokens and clients -------------------------------------------------------------------


def named_token(admin: httpx.Client, name: str, role: str) -> str:
    """An admin token with a name, so the audit log names its actor `token:<name>`."""
    response = admin.post("/api/v1/tokens", json={"kind": "admin", "role": role, "name": name})
    assert response.status_code == 201, response.text
    secret: str = response.json()["token"]
    return secret


# --- ramps --------------------------------------------------------------------------------


def ramp_path(key: str, environment: str = "production") -> str:
    return f"/api/v1/flags/{key}/environments/{environment}/ramp"


def get_ramp(client: httpx.Client, key: str, environment: str = "production") -> dict[str, Any]:
    response = client.get(ramp_path(key, environment))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def act(
    client: httpx.Client,
    key: str,
    action: str,
    *,
    environment: str = "production",
    version: int | None = None,
    reason: str | None = None,
) -> httpx.Response:
    headers = {}
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    if reason is not None:
        headers["X-Graylane-Reason"] = reason
    return client.post(f"{ramp_path(key, environment)}/{action}", headers=headers)


def act_ok(
    client: httpx.Client, key: str, action: str, *, environment: str = "production", **kw: Any
) -> dict[str, Any]:
    """An action that must succeed; `advance` and `restart` send the current version."""
    if action in ("advance", "restart") and "version" not in kw:
        kw["version"] = get_ramp(client, key, environment)["version"]
    response = act(client, key, action, environment=environment, **kw)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stored_percentage(admin: httpx.Client, key: str, environment: str = "production") -> float:
    definition = admin.get(f"/api/v1/flags/{key}").json()
    percentage: float = definition["environments"][environment]["fallthrough"]["rollout"][
        "percentage"
    ]
    return percentage


def audit_entries(admin: httpx.Client, key: str) -> list[dict[str, Any]]:
    """Entries about a flag, oldest first."""
    response = admin.get("/api/v1/audit", params={"flag": key, "limit": 500})
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["entries"]))


# --- what SDKs see ------------------------------------------------------------------------


def sdk_config(sdk: httpx.Client) -> dict[str, Any]:
    response = sdk.get(SDK_CONFIG, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sdk_flag(sdk: httpx.Client, key: str, environment: str) -> dict[str, Any]:
    config: dict[str, Any] = sdk_config(sdk)["flags"][key]["environments"][environment]
    return config


def sdk_percentage(sdk: httpx.Client, key: str, environment: str = "production") -> float:
    percentage: float = sdk_flag(sdk, key, environment)["fallthrough"]["rollout"]["percentage"]
    return percentage


def wait_for_sdk_percentage(
    sdk: httpx.Client, key: str, percentage: float, environment: str = "production"
) -> None:
    wait_until(
        lambda: sdk_percentage(sdk, key, environment) == percentage,
        timeout=20,
        what=f"SDKs of {environment} to see {key} at {percentage}%",
    )


def exposed_units(
    sdk: httpx.Client, key: str, environment: str, units: int = 5000
) -> frozenset[str]:
    """The targeting keys (of `user-0` .. `user-<units-1>`) that the SDK config, evaluated
    by the same core every SDK uses, serves the ramped variant."""
    snapshot = compile_document(parse_document(sdk_config(sdk)), environment)
    return frozenset(
        unit
        for unit in (f"user-{i}" for i in range(units))
        if evaluate(snapshot, key, {"targetingKey": unit}).variant == "on"
    )


# --- SDK counts and time ------------------------------------------------------------------


def spread(count: int) -> list[int]:
    """`count` split as evenly as it goes over the unit clusters, as many units would."""
    share, rest = divmod(count, CLUSTERS)
    return [share + (1 if cluster < rest else 0) for cluster in range(CLUSTERS)]


def event(
    flag: str, group: str, name: str, count: int, percentage: float, variant: str = "on"
) -> dict[str, Any]:
    """One SDK-reported count, made at rollout `percentage`, split over unit clusters."""
    return {
        "flag": flag,
        "variant": variant,
        "group": group,
        "event": name,
        "count": count,
        "percentage": percentage,
        "clusters": spread(count),
    }


def traffic(
    flag: str,
    percentage: float,
    *,
    exposed: tuple[int, int] = (0, 0),
    unexposed: tuple[int, int] = (0, 0),
) -> list[dict[str, Any]]:
    """SDK-shaped counts made while the flag served `percentage`: (requests, errors) for
    the exposed and the unexposed group."""
    out = []
    for group, (requests, errors), variant in (
        ("exposed", exposed, "on"),
        ("unexposed", unexposed, "off"),
    ):
        if requests:
            out.append(event(flag, group, "request", requests, percentage, variant))
        if errors:
            out.append(event(flag, group, "error", errors, percentage, variant))
    return out


def split_traffic(
    flag: str, percentage: float, requests: int, errors: float = 0.0
) -> list[dict[str, Any]]:
    """`requests` split between the groups as the rollout splits units (no sample-ratio
    mismatch), each group failing `errors` of the time."""
    exposed = round(requests * percentage / 100)
    unexposed = requests - exposed
    return traffic(
        flag,
        percentage,
        exposed=(exposed, round(exposed * errors)),
        unexposed=(unexposed, round(unexposed * errors)),
    )


def post_counts(
    sdk: httpx.Client,
    events: list[dict[str, Any]],
    since: datetime,
    until: datetime | None = None,
) -> float:
    """Report `events` as counted by an SDK from `since` until now, or until `until` once
    the clock has passed it (the server files a report by the end of its window and takes
    no window from the future). Returns the window's end, Unix seconds."""
    floor = since.timestamp() + 0.001 if until is None else until.timestamp()
    # A report is filed in the bucket of its window's end, and a slice is known by its
    # bucket's start: end the window in the first bucket that starts inside the stage.
    boundary = math.ceil(since.timestamp() / BUCKET_SECONDS) * BUCKET_SECONDS + 0.001
    end = max(time.time(), floor, boundary)
    wait_until(lambda: time.time() >= end, timeout=30, interval=0.01, what="the window to end")
    window = {"start": since.timestamp(), "end": end}
    response = sdk.post("/api/v1/sdk/metrics", json={"window": window, "events": events})
    assert response.status_code == 202, response.text
    return end


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
