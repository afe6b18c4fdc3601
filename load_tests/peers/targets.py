"""What is compared: each endpoint of each server as locust calls it (route, headers,
request bodies, the status that counts as success) and the server process answering it.

    config      Unleash GET /api/client/features   vs  Graylane GET /api/v1/sdk/config
    config 304  the same with If-None-Match: <the ETag each server gave>
    evaluate    Unleash POST /api/frontend          vs  Graylane POST /ofrep/v1/evaluate/flags
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bench.servers import Server
from shared_flags import make_contexts
from unleash_server import UnleashServer

ENDPOINTS = ("config", "config 304", "evaluate")
APP = "graylane-peers-bench"
CONTEXTS = 1000
"""Distinct evaluation contexts the load cycles through."""


@dataclass
class Target:
    """One endpoint of one server, as locust calls it."""

    server: str
    endpoint: str
    url: str
    method: str
    path: str
    headers: dict[str, str]
    bodies: list[str] = field(default_factory=list)
    expect: int = 200
    pid: int = 0


def make_targets(
    unleash: UnleashServer, graylane: Server, tokens: dict[str, str], sdk_key: str
) -> dict[tuple[str, str], Target]:
    contexts = make_contexts(CONTEXTS)
    gzip = {"Accept-Encoding": "gzip"}
    sdk_headers = {
        "UNLEASH-APPNAME": APP,
        "UNLEASH-INSTANCEID": "peers-bench-1",
        "Unleash-Client-Spec": "5.2.0",
    }
    json_type = {"Content-Type": "application/json"}
    graylane_auth = {"Authorization": f"Bearer {sdk_key}", **gzip}
    targets = {}
    for endpoint in ("config", "config 304"):
        targets["Unleash", endpoint] = Target(
            "Unleash", endpoint, unleash.url, "GET", "/api/client/features",
            {"Authorization": tokens["backend"], **sdk_headers, **gzip},
            expect=200 if endpoint == "config" else 304,
        )  # fmt: skip
        targets["Graylane", endpoint] = Target(
            "Graylane", endpoint, graylane.url, "GET", "/api/v1/sdk/config", dict(graylane_auth),
            expect=200 if endpoint == "config" else 304,
        )  # fmt: skip
    targets["Unleash", "evaluate"] = Target(
        "Unleash", "evaluate", unleash.url, "POST", "/api/frontend",
        {"Authorization": tokens["frontend"], **json_type, **gzip},
        bodies=[json.dumps(c.unleash()) for c in contexts],
    )  # fmt: skip
    targets["Graylane", "evaluate"] = Target(
        "Graylane", "evaluate", graylane.url, "POST", "/ofrep/v1/evaluate/flags",
        {**graylane_auth, **json_type}, bodies=[json.dumps(c.ofrep()) for c in contexts],
    )  # fmt: skip
    for target in targets.values():
        process = unleash.process if target.server == "Unleash" else graylane.process
        assert process is not None
        target.pid = process.pid
    return targets
