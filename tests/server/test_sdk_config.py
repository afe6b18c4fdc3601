"""`GET /api/v1/sdk/config`: the flag document resolved for the SDK token's environment,
with a strong ETag, 304 on `If-None-Match`, gzip on request, and a new ETag exactly when
what that environment's SDKs see changes."""

from __future__ import annotations

import copy
import gzip
import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx
import pytest

from graylane.core import parse_document
from graylane_server import catalog
from tests.server.conftest import TokenFactory
from tests.server.documents import boolean_flag, document
from tests.support.servers import LiveServer, wait_until

ClientFactory = Callable[[str], httpx.Client]

CONFIG = "/api/v1/sdk/config"
STRONG_ETAG = re.compile(r'^"[\x21\x23-\x7e]+"$')
IDENTITY = {"Accept-Encoding": "identity"}
SDK_FIELDS = {"salt", "variants", "off_variant", "environments"}
FIRST_RELEASE_RAMP_FIELDS = {
    "stages",
    "min_stage_duration",
    "min_samples",
    "guards",
    "auto_advance",
    "on_breach",
}
"""The ramp fields the first SDK release's parser accepts; it refuses any other."""
PLAN: dict[str, Any] = {
    "stages": [1, 10, 50, 100],
    "min_samples": 100,
    "guards": [
        {"kind": "relative", "metric": "error_rate", "max": 0.5},
        {"metric": "error_rate", "max": 0.2},
        {"kpi": "latency"},
    ],
    "approval_above": 50,
    "watch_completed": "30m",
}
"""A plan with fields newer than the first SDK release."""


class Config(NamedTuple):
    etag: str
    version: int
    body: dict[str, Any]


def fetch(sdk: httpx.Client) -> Config:
    """The uncompressed config as an SDK sees it now."""
    response = sdk.get(CONFIG, headers=IDENTITY)
    assert response.status_code == 200, response.text
    assert "content-encoding" not in response.headers
    return Config(
        response.headers["etag"], int(response.headers["x-graylane-version"]), response.json()
    )


def wait_for_new_config(sdk: httpx.Client, old_etag: str, what: str) -> Config:
    wait_until(lambda: fetch(sdk).etag != old_etag, timeout=10, what=what)
    return fetch(sdk)


def put_environment(admin: httpx.Client, flag: str, environment: str, config: object) -> None:
    """Replace one environment's configuration of a flag, at the flag's current version."""
    version = admin.get(f"/api/v1/flags/{flag}").headers["etag"]
    response = admin.put(
        f"/api/v1/flags/{flag}/environments/{environment}",
        json=config,
        headers={"If-Match": version},
    )
    assert response.status_code == 200, response.text


def flags_document() -> dict[str, Any]:
    """The shared document, plus a tagged flag and one configured for staging only."""
    doc = document()
    doc["flags"]["new-checkout"]["tags"] = ["payments"]
    doc["flags"]["staging-only"] = boolean_flag(50, env="staging") | {"tags": ["beta"]}
    return doc


@pytest.fixture
def applied(admin: httpx.Client, make_token: TokenFactory, server: LiveServer) -> str:
    """The document applied and served to production; returns a production SDK token."""
    token = make_token(sdk="production")
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as sdk:
        before = fetch(sdk)
        response = admin.put("/api/v1/state", json=flags_document())
        assert response.status_code == 200, response.text
        wait_for_new_config(sdk, before.etag, "production to serve the applied document")
    return token


@pytest.fixture
def sdk(applied: str, client_for: ClientFactory) -> httpx.Client:
    return client_for(applied)


def test_production_gets_only_its_own_configuration_with_a_strong_etag(
    sdk: httpx.Client, admin: httpx.Client
) -> None:
    response = sdk.get(CONFIG, headers=IDENTITY)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    etag = response.headers["etag"]
    assert STRONG_ETAG.match(etag), f"not a strong entity tag: {etag!r}"
    assert not etag.startswith("W/")
    assert response.headers["x-graylane-environment"] == "production"
    version = int(response.headers["x-graylane-version"])
    assert version >= 2  # the applied document moved production past its first version

    body = response.json()
    parsed = parse_document(body)  # a valid flag document
    stored = admin.get("/api/v1/state").json()
    assert set(parsed.flags) == set(stored["flags"])
    for key, definition in stored["flags"].items():
        served = body["flags"][key]
        # only what evaluation needs: no descriptions, no tags
        assert set(served) <= SDK_FIELDS, key
        assert "description" not in served
        assert "tags" not in served
        assert served["variants"] == definition["variants"]
        assert served["off_variant"] == definition["off_variant"]
        production = definition["environments"].get("production")
        expected = {} if production is None else {"production": production}
        assert served["environments"] == expected, key
        assert set(parsed.flags[key].environments) == set(expected)
    # a flag with no production configuration is still there, with no environments
    assert body["flags"]["staging-only"]["environments"] == {}
    assert "staging" not in body["flags"]["button-color"]["environments"]
    assert body["segments"] == stored["segments"]


def test_the_same_etag_in_if_none_match_gets_304_without_a_body(sdk: httpx.Client) -> None:
    current = fetch(sdk)

    response = sdk.get(CONFIG, headers={**IDENTITY, "If-None-Match": current.etag})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == current.etag
    # an entity tag the server never gave out does not match
    other = sdk.get(CONFIG, headers={**IDENTITY, "If-None-Match": '"not-the-current-one"'})
    assert other.status_code == 200
    assert other.json() == current.body


def test_gzip_is_served_on_request_and_has_its_own_etag(sdk: httpx.Client) -> None:
    plain = sdk.get(CONFIG, headers=IDENTITY)

    with sdk.stream("GET", CONFIG, headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())

    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in response.headers["vary"].lower()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == plain.content
    assert json.loads(gzip.decompress(raw)) == plain.json()
    gzip_etag = response.headers["etag"]
    assert STRONG_ETAG.match(gzip_etag), f"not a strong entity tag: {gzip_etag!r}"
    # a strong validator names one representation: the gzip bytes are not the plain bytes
    assert gzip_etag != plain.headers["etag"]
    assert response.headers["x-graylane-version"] == plain.headers["x-graylane-version"]

    with sdk.stream(
        "GET", CONFIG, headers={"Accept-Encoding": "gzip", "If-None-Match": gzip_etag}
    ) as unchanged:
        unchanged_raw = b"".join(unchanged.iter_raw())
    assert unchanged.status_code == 304
    assert unchanged_raw == b""
    assert unchanged.headers["etag"] == gzip_etag


def test_a_production_change_gives_a_new_etag_and_the_new_configuration(
    sdk: httpx.Client, admin: httpx.Client
) -> None:
    before = fetch(sdk)
    config = admin.get("/api/v1/flags/new-checkout/environments/production").json()
    config["fallthrough"]["rollout"]["percentage"] = 50

    put_environment(admin, "new-checkout", "production", config)

    after = wait_for_new_config(sdk, before.etag, "the production ETag to change")
    assert after.version == before.version + 1
    served = after.body["flags"]["new-checkout"]["environments"]["production"]
    assert served["fallthrough"]["rollout"]["percentage"] == 50
    # the rest of the document is as it was
    assert {k: v for k, v in after.body["flags"].items() if k != "new-checkout"} == {
        k: v for k, v in before.body["flags"].items() if k != "new-checkout"
    }
    # the old ETag no longer matches
    stale = sdk.get(CONFIG, headers={**IDENTITY, "If-None-Match": before.etag})
    assert stale.status_code == 200
    assert stale.headers["etag"] == after.etag


def test_a_staging_change_leaves_the_production_config_alone(
    sdk: httpx.Client, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    staging = client_for(make_token(sdk="staging"))
    production_before = fetch(sdk)
    staging_before = fetch(staging)

    put_environment(
        admin, "button-color", "staging", {"enabled": True, "fallthrough": {"variant": "green"}}
    )

    # Once staging serves the change, the server has processed it...
    staging_after = wait_for_new_config(staging, staging_before.etag, "staging to change")
    assert staging_after.body["flags"]["button-color"]["environments"]["staging"][
        "fallthrough"
    ] == {"variant": "green"}
    # ...and production is byte for byte what it was.
    production_after = fetch(sdk)
    assert production_after == production_before
    unchanged = sdk.get(CONFIG, headers={**IDENTITY, "If-None-Match": production_before.etag})
    assert unchanged.status_code == 304


def test_a_staging_token_gets_the_staging_configuration(
    sdk: httpx.Client, admin: httpx.Client, make_token: TokenFactory, client_for: ClientFactory
) -> None:
    staging = client_for(make_token(sdk="staging"))

    response = staging.get(CONFIG, headers=IDENTITY)

    assert response.status_code == 200
    assert response.headers["x-graylane-environment"] == "staging"
    assert response.headers["etag"] != fetch(sdk).etag
    body = response.json()
    parse_document(body)
    stored = admin.get("/api/v1/state").json()["flags"]
    for key, definition in stored.items():
        config = definition["environments"].get("staging")
        assert body["flags"][key]["environments"] == ({} if config is None else {"staging": config})
    assert body["flags"]["button-color"]["environments"]["staging"]["fallthrough"] == {
        "variant": "blue"
    }
    assert body["flags"]["new-checkout"]["environments"] == {}
    assert "production" not in json.dumps(body["flags"])


def test_only_sdk_tokens_get_a_config(server: LiveServer, admin: httpx.Client) -> None:
    assert httpx.get(f"{server.url}{CONFIG}", timeout=10).status_code == 401
    unknown = httpx.get(
        f"{server.url}{CONFIG}", headers={"Authorization": "Bearer gls_nope"}, timeout=10
    )
    assert unknown.status_code == 401
    # an admin token names no environment
    assert admin.get(CONFIG).status_code == 403


def test_sdks_are_served_a_ramp_as_its_stages_only(sdk: httpx.Client, admin: httpx.Client) -> None:
    before = fetch(sdk)
    config = admin.get("/api/v1/flags/new-checkout/environments/production").json()
    config["ramp"] = PLAN

    put_environment(admin, "new-checkout", "production", config)

    after = wait_for_new_config(sdk, before.etag, "production to serve the ramped flag")
    served = after.body["flags"]["new-checkout"]["environments"]["production"]
    assert served["ramp"] == {"stages": [1, 10, 50, 100]}
    assert set(served["ramp"]) <= FIRST_RELEASE_RAMP_FIELDS
    # the plan is stored whole, and the rest of the configuration is served as stored
    stored = admin.get("/api/v1/flags/new-checkout/environments/production").json()
    assert stored["ramp"]["guards"][0] == {"kind": "relative", "metric": "error_rate", "max": 0.5}
    assert stored["ramp"]["watch_completed"] == "30m"
    assert {k: v for k, v in served.items() if k != "ramp"} == {
        k: v for k, v in stored.items() if k != "ramp"
    }
    # an SDK parses the served document and sees that the flag is under a ramp
    parsed = parse_document(after.body)
    assert parsed.flags["new-checkout"].environments["production"].ramp is not None
    # the server's own evaluation reads the flag as before
    evaluated = sdk.post(
        "/ofrep/v1/evaluate/flags/new-checkout", json={"context": {"email": "a@example.com"}}
    )
    assert evaluated.status_code == 200, evaluated.text
    assert evaluated.json()["value"] is True


def test_a_change_to_a_ramps_guards_alone_is_no_change_for_sdks() -> None:
    before = boolean_flag(10) | {"environments": {"production": {"enabled": True, "ramp": PLAN}}}
    guards = copy.deepcopy(before)
    guards["environments"]["production"]["ramp"]["guards"] = [{"metric": "error_rate", "max": 0.1}]
    stages = copy.deepcopy(before)
    stages["environments"]["production"]["ramp"]["stages"] = [5, 100]

    assert catalog.affected_environments(before, guards, ["production", "staging"]) == []
    assert catalog.affected_environments(before, stages, ["production", "staging"]) == [
        "production"
    ]
