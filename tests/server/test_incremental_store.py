"""The served config is rebuilt from the previous one after each change (only changed rows
are read, parsed, compiled and encoded again). After any series of edits it must be
exactly what a store starting from nothing builds from the same database."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from graylane.core import evaluate
from graylane_server.configs.store import ConfigStore
from tests.server.documents import boolean_flag
from tests.support.servers import LiveServer

ENVIRONMENT = "production"
CONTEXTS = [
    {"targetingKey": f"user-{i}", "email": f"u{i}@example.com" if i % 3 == 0 else f"u{i}@x.io"}
    | ({"plan": "pro"} if i % 2 else {})
    for i in range(40)
]


def segment(*, members: list[str], plan: str) -> dict[str, Any]:
    return {
        "include": members,
        "when": [{"attribute": "plan", "op": "in", "values": [plan]}],
    }


def flag_using(segment_key: str, percentage: float) -> dict[str, Any]:
    flag = boolean_flag(percentage)
    flag["environments"][ENVIRONMENT]["rules"].append(
        {"name": "segment", "segment": segment_key, "serve": {"variant": "on"}}
    )
    return flag


def put(admin: httpx.Client, kind: str, key: str, definition: dict[str, Any]) -> None:
    current = admin.get(f"/api/v1/{kind}/{key}")
    headers = {"If-Match": current.headers["etag"]} if current.status_code == 200 else {}
    response = admin.put(f"/api/v1/{kind}/{key}", json=definition, headers=headers)
    assert response.status_code in (200, 201), response.text


def delete(admin: httpx.Client, kind: str, key: str) -> None:
    current = admin.get(f"/api/v1/{kind}/{key}")
    if current.status_code == 200:
        response = admin.delete(
            f"/api/v1/{kind}/{key}", headers={"If-Match": current.headers["etag"]}
        )
        assert response.status_code in (200, 204), response.text


def assert_same_as_from_scratch(server: LiveServer) -> None:
    fresh = ConfigStore(server.runtime.sessions)
    asyncio.run(fresh.refresh())
    built, served = fresh.get(ENVIRONMENT), server.runtime.store.get(ENVIRONMENT)
    assert built is not None
    assert served is not None
    assert served.version == built.version
    assert served.body == built.body
    assert served.etag == built.etag
    assert served.gzipped == built.gzipped
    for key in built.snapshot.flags:
        for context in CONTEXTS:
            assert evaluate(served.snapshot, key, context) == evaluate(
                built.snapshot, key, context
            ), (key, context)


def test_after_random_edits_the_served_config_equals_one_built_from_nothing(
    server: LiveServer, admin: httpx.Client
) -> None:
    rng = random.Random(20261122)
    segments = ["beta", "staff"]
    flags = [f"flag-{i}" for i in range(6)]
    for key in segments:
        put(admin, "segments", key, segment(members=["user-1"], plan="pro"))
    for index, key in enumerate(flags):
        put(admin, "flags", key, flag_using(segments[index % 2], 10))
    assert_same_as_from_scratch(server)

    for _ in range(25):
        action = rng.choice(["flag", "flag", "delete", "segment", "toggle"])
        key = rng.choice(flags)
        if action == "flag":
            put(admin, "flags", key, flag_using(rng.choice(segments), rng.choice([0, 5, 50])))
        elif action == "delete":
            delete(admin, "flags", key)
        elif action == "segment":
            members = [f"user-{rng.randrange(40)}" for _ in range(3)]
            put(
                admin,
                "segments",
                rng.choice(segments),
                segment(members=members, plan=rng.choice(["pro", "free"])),
            )
        else:
            current = admin.get(f"/api/v1/flags/{key}")
            if current.status_code == 200:
                definition = current.json()
                config = definition["environments"][ENVIRONMENT]
                config["enabled"] = not config["enabled"]
                put(admin, "flags", key, definition)
        assert_same_as_from_scratch(server)
