"""Helpers the SDK tests share: contract 2 computed on its own, flag documents, and
small wrappers over the admin API and the server's Prometheus text."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import httpx
import mmh3

PRODUCTION = "production"


# --- contract 2, written out again from DESIGN.md (not imported from the SDK) ----------


def bucket(salt: str, unit: str) -> int:
    return mmh3.hash(salt + ":" + unit, 0, signed=False) % 100_000


def threshold(percentage: float) -> int:
    return round(Decimal(str(percentage)) * 1000)


def expected_variant(
    salt: str,
    unit: str | None,
    percentage: float,
    variants: dict[str, float],
    otherwise: str,
) -> str:
    """The variant contract 2 gives `unit` for a fallthrough rollout."""
    if unit is None:
        return next(iter(variants)) if percentage == 100 else otherwise
    if bucket(salt, unit) >= threshold(percentage):
        return otherwise
    running = Decimal(0)
    for name, weight in variants.items():
        running += Decimal(str(weight))
        if bucket(salt + ":variant", unit) < round(running * 1000):
            return name
    raise AssertionError(f"weights {variants} do not cover bucket of {unit!r}")


def exposed(salt: str, unit: str, percentage: float) -> bool:
    return bucket(salt, unit) < threshold(percentage)


# --- flag documents --------------------------------------------------------------------


def unique(prefix: str) -> str:
    """A flag key no earlier run used: SDK counts live in Redis across runs."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def rollout_flag(
    percentage: float,
    *,
    enabled: bool = True,
    salt: str | None = None,
    ramp: bool = False,
    env: str = PRODUCTION,
) -> dict[str, Any]:
    """A boolean flag: `on` for units inside the fallthrough rollout, `off` outside."""
    config: dict[str, Any] = {
        "enabled": enabled,
        "fallthrough": {
            "rollout": {"percentage": percentage, "variants": {"on": 100}},
            "otherwise": "off",
        },
    }
    if ramp:
        config["ramp"] = {"stages": [1, 10, 50, 100]}
    flag: dict[str, Any] = {
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": {env: config},
    }
    if salt is not None:
        flag["salt"] = salt
    return flag


def static_flag(variants: dict[str, Any], serve: str, *, off: str | None = None) -> dict[str, Any]:
    return {
        "variants": variants,
        "off_variant": off or serve,
        "environments": {PRODUCTION: {"enabled": True, "fallthrough": {"variant": serve}}},
    }


# --- the admin API ---------------------------------------------------------------------


def put_flag(admin: httpx.Client, key: str, definition: dict[str, Any]) -> int:
    """Create or replace a flag; returns its new version."""
    current = admin.get(f"/api/v1/flags/{key}")
    headers = {"If-Match": current.headers["etag"]} if current.status_code == 200 else {}
    response = admin.put(f"/api/v1/flags/{key}", json=definition, headers=headers)
    assert response.status_code in (200, 201), response.text
    return int(response.headers["etag"].strip('"'))


def set_enabled(admin: httpx.Client, key: str, enabled: bool, env: str = PRODUCTION) -> None:
    response = admin.put(
        f"/api/v1/flags/{key}/environments/{env}/enabled", json={"enabled": enabled}
    )
    assert response.status_code == 200, response.text


def sdk_token(admin: httpx.Client, env: str = PRODUCTION) -> str:
    response = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": env})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def usage(admin: httpx.Client, key: str, **params: float) -> dict[str, Any]:
    response = admin.get(f"/api/v1/flags/{key}/environments/{PRODUCTION}/metrics", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def prometheus_value(base_url: str, name: str, labels: str = "") -> float:
    """One sample from the server's `GET /metrics`; 0 when the series is absent."""
    text = httpx.get(f"{base_url}/metrics", timeout=5).text
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)}\s+(\S+)$", re.MULTILINE)
    found = pattern.search(text)
    return float(found.group(1)) if found else 0.0


def streams_open(base_url: str) -> int:
    return int(prometheus_value(base_url, "graylane_sse_streams"))
