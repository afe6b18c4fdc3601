"""Stored data one environment's config cannot be built from (planted in the database,
past every check of the API) stops only that environment: the others keep propagating,
the replica says it is not ready and why, and a restarted replica still starts."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from graylane_server.settings import Settings
from tests.server.conftest import TokenFactory
from tests.support.servers import LiveServer, wait_until


def string_flag(value: str, environments: tuple[str, ...]) -> dict[str, Any]:
    return {
        "variants": {"a": value, "b": "other"},
        "off_variant": "b",
        "environments": {
            env: {
                "enabled": True,
                "rules": [
                    {
                        "name": "staff",
                        "when": [{"attribute": "email", "op": "ends_with", "values": ["@x.io"]}],
                        "serve": {"variant": "b"},
                    }
                ],
                "fallthrough": {"variant": "a"},
            }
            for env in environments
        },
    }


def served(sdk: httpx.Client) -> tuple[int, dict[str, Any]]:
    response = sdk.get("/api/v1/sdk/config")
    assert response.status_code == 200, response.text
    return int(response.headers["x-graylane-version"]), response.json()


def value_of(document: dict[str, Any], flag: str, env: str) -> object:
    definition = document["flags"][flag]
    return definition["variants"][definition["environments"][env]["fallthrough"]["variant"]]


def plant(definition: dict[str, Any], how: str) -> str:
    """The definition as JSON text, its production rule broken `how`. Written as text:
    PostgreSQL's `json` type keeps escapes (a lone surrogate) as they are written."""
    doc = json.loads(json.dumps(definition))
    rule = doc["environments"]["production"]["rules"][0]
    if how == "surrogate":
        rule["when"][0]["values"] = ["@@PLANT@@"]
        return json.dumps(doc).replace('"@@PLANT@@"', r'"\ud800"')
    rule["serve"] = {"variant": "no-such-variant"}
    return json.dumps(doc)


BROKEN = [
    pytest.param("surrogate", id="lone-surrogate-in-a-rule-value"),
    pytest.param("variant", id="rule-serving-an-unknown-variant"),
]


@pytest.fixture
def sdks(server: LiveServer, make_token: TokenFactory, client_for: Any) -> dict[str, httpx.Client]:
    return {env: client_for(make_token(sdk=env)) for env in ("staging", "production")}


@pytest.mark.parametrize("planted", BROKEN)
def test_a_config_that_cannot_be_built_stops_only_its_environment(
    server: LiveServer,
    admin: httpx.Client,
    sdks: dict[str, httpx.Client],
    database_url: str,
    settings: Settings,
    planted: str,
) -> None:
    # Given a flag in both environments, served in both
    both = string_flag("one", ("staging", "production"))
    assert admin.put("/api/v1/flags/both", json=both).status_code == 201
    wait_until(
        lambda: all("both" in served(sdk)[1]["flags"] for sdk in sdks.values()),
        what="both environments to serve the flag",
    )
    production_before, _ = served(sdks["production"])

    # When its production rule is broken in the database, behind the API's back
    broken = plant(both, planted)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE flags SET definition = CAST(:d AS json), version = version + 1 "
                "WHERE key = 'both'"
            ),
            {"d": broken},
        )
        connection.execute(text("UPDATE environments SET config_version = config_version + 1"))
    engine.dispose()

    # Then the replica says it is not ready, naming production
    def not_ready() -> bool:
        return httpx.get(f"{server.url}/readyz", timeout=5).status_code == 503

    wait_until(not_ready, what="/readyz to report the broken config")
    checks = httpx.get(f"{server.url}/readyz", timeout=5).json()["checks"]
    assert checks["configs"].startswith("production: version ")
    assert "staging" not in checks["configs"]
    assert checks["database"] == "ok"

    # and later changes still reach staging, the kill switch included
    assert (
        admin.put("/api/v1/flags/later", json=string_flag("two", ("staging",))).status_code == 201
    )
    wait_until(
        lambda: "later" in served(sdks["staging"])[1]["flags"],
        what="staging to get a change made after the broken one",
    )
    off = admin.put("/api/v1/flags/later/environments/staging/enabled", json={"enabled": False})
    assert off.status_code == 200, off.text
    _, staging = served(sdks["staging"])
    assert staging["flags"]["later"]["environments"]["staging"]["enabled"] is False
    # while production keeps serving its last good config
    version, production = served(sdks["production"])
    assert version == production_before
    assert value_of(production, "both", "production") == "one"

    # And a replica started now starts, serves staging and is not ready
    restarted = LiveServer(settings).start()
    try:
        assert httpx.get(f"{restarted.url}/readyz", timeout=5).status_code == 503
        token = sdks["staging"].headers["authorization"]
        fresh = httpx.get(
            f"{restarted.url}/api/v1/sdk/config", headers={"Authorization": token}, timeout=5
        )
        assert fresh.status_code == 200
        assert "later" in fresh.json()["flags"]
    finally:
        restarted.stop()
