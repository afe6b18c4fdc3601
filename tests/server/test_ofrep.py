"""OFREP: the official OpenFeature Python SDK with its OFREP provider gets what the
contract says, and the raw endpoints answer in the shapes of the OFREP 0.3.0 spec."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import mmh3
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from graylane import Client
from tests.server.conftest import TokenFactory
from tests.server.documents import document
from tests.support.servers import LiveServer, wait_until

ClientFactory = Callable[[str], httpx.Client]

SINGLE = "/ofrep/v1/evaluate/flags/{key}"
BULK = "/ofrep/v1/evaluate/flags"

# --- the response schemas of the OFREP 0.3.0 spec (service/openapi.yaml) ------------------
# Transcribed from `components/schemas`. Where the spec's `oneOf` branches overlap (every
# value also matches `codeDefaultFlag`, an integer also matches `floatFlag`), the value's
# type is written as the union it amounts to.
REASONS = ["STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "UNKNOWN"]
METADATA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": ["boolean", "string", "number"]},
}
EVALUATION_SUCCESS: dict[str, Any] = {
    "type": "object",
    "required": ["key", "reason"],
    "properties": {
        "key": {"type": "string"},
        "reason": {"type": "string", "enum": REASONS},
        "variant": {"type": "string"},
        "metadata": METADATA,
        "value": {"type": ["boolean", "string", "number", "object"]},
    },
}
EVALUATION_FAILURE: dict[str, Any] = {
    "type": "object",
    "required": ["key", "errorCode"],
    "properties": {
        "key": {"type": "string"},
        "errorCode": {
            "type": "string",
            "enum": ["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"],
        },
        "errorDetails": {"type": "string"},
        "metadata": METADATA,
    },
}
FLAG_NOT_FOUND: dict[str, Any] = {
    "type": "object",
    "required": ["key", "errorCode"],
    "properties": {
        "key": {"type": "string"},
        "errorCode": {"type": "string", "enum": ["FLAG_NOT_FOUND"]},
        "errorDetails": {"type": "string"},
        "metadata": METADATA,
    },
}
BULK_FAILURE: dict[str, Any] = {
    "type": "object",
    "required": ["errorCode"],
    "properties": {"errorCode": {"type": "string"}, "errorDetails": {"type": "string"}},
}
EVENT_STREAM: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "oneOf": [
        {"required": ["url"], "not": {"required": ["endpoint"]}},
        {"required": ["endpoint"], "not": {"required": ["url"]}},
    ],
    "properties": {
        "type": {"type": "string"},
        "url": {"type": "string"},
        "endpoint": {
            "type": "object",
            "required": ["requestUri"],
            "properties": {
                "origin": {"type": "string"},
                "requestUri": {"type": "string", "pattern": "^/"},
            },
        },
        "inactivityDelaySec": {"type": "integer", "minimum": 1},
    },
}
BULK_SUCCESS: dict[str, Any] = {
    "type": "object",
    "required": ["flags"],
    "properties": {
        "flags": {"type": "array", "items": {"oneOf": [EVALUATION_SUCCESS, EVALUATION_FAILURE]}},
        "metadata": METADATA,
        "eventStreams": {"type": "array", "items": EVENT_STREAM},
    },
}
JSON_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
}


def problems(instance: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """What in `instance` breaks `schema` (the JSON Schema keywords used above)."""
    found: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        fits = any(
            isinstance(instance, JSON_TYPES[name])
            and not (isinstance(instance, bool) and name in ("integer", "number"))
            for name in names
        )
        if not fits:
            return [f"{path}: {instance!r} is not of type {schema['type']}"]
    if "enum" in schema and instance not in schema["enum"]:
        found.append(f"{path}: {instance!r} is not one of {schema['enum']}")
    if "pattern" in schema and not re.search(schema["pattern"], instance):
        found.append(f"{path}: {instance!r} does not match {schema['pattern']}")
    if "minimum" in schema and instance < schema["minimum"]:
        found.append(f"{path}: {instance!r} is below {schema['minimum']}")
    if isinstance(instance, dict):
        required = [key for key in schema.get("required", ()) if key not in instance]
        found += [f"{path}: {key!r} is required" for key in required]
        for key, sub in schema.get("properties", {}).items():
            if key in instance:
                found += problems(instance[key], sub, f"{path}.{key}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in instance.items():
                if key not in schema.get("properties", {}):
                    found += problems(value, extra, f"{path}.{key}")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            found += problems(item, schema["items"], f"{path}[{i}]")
    if "not" in schema and not problems(instance, schema["not"], path):
        found.append(f"{path}: must not match {schema['not']}")
    if "oneOf" in schema:
        matching = sum(not problems(instance, branch, path) for branch in schema["oneOf"])
        if matching != 1:
            found.append(f"{path}: matches {matching} of the oneOf branches, not exactly one")
    return found


def assert_valid(instance: Any, schema: dict[str, Any]) -> None:
    assert problems(instance, schema) == [], json.dumps(instance)


# --- the expected answers, computed from the contract ---------------------------------------


def in_rollout(salt: str, unit: str, percentage: float) -> bool:
    return mmh3.hash(f"{salt}:{unit}", 0, signed=False) % 100_000 < round(percentage * 1000)


UNITS = [f"user-{i}" for i in range(400)]
INSIDE = [u for u in UNITS if in_rollout("new-checkout", u, 10)][:5]
OUTSIDE = [u for u in UNITS if not in_rollout("new-checkout", u, 10)][:5]


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def token(admin: httpx.Client, make_token: TokenFactory, server: LiveServer) -> str:
    """A production SDK token, once production serves the shared document."""
    token = make_token(sdk="production")
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as sdk:
        assert admin.put("/api/v1/state", json=document()).status_code == 200
        wait_until(
            lambda: sdk.post(SINGLE.format(key="theme"), json={"context": {}}).status_code == 200,
            what="the document to be served",
        )
    return token


@pytest.fixture
def ofrep(token: str, client_for: ClientFactory) -> httpx.Client:
    return client_for(token)


@pytest.fixture
def openfeature(server: LiveServer, token: str) -> Iterator[OpenFeatureClient]:
    provider = OFREPProvider(
        server.url, headers_factory=lambda: {"Authorization": f"Bearer {token}"}
    )
    api.set_provider(provider, domain="graylane-tests")
    yield api.get_client(domain="graylane-tests")
    api.clear_providers()
    provider.session.close()


def user(key: str, **attributes: Any) -> EvaluationContext:
    return EvaluationContext(targeting_key=key, attributes=attributes)


# --- through the OpenFeature SDK -----------------------------------------------------------


def test_the_rollout_serves_exactly_the_units_inside_it(openfeature: OpenFeatureClient) -> None:
    assert len(INSIDE) == 5
    assert len(OUTSIDE) == 5
    for unit in INSIDE:
        details = openfeature.get_boolean_details("new-checkout", False, user(unit))
        assert (details.value, details.variant, details.reason) == (True, "on", Reason.SPLIT)
        assert details.error_code is None
    for unit in OUTSIDE:
        details = openfeature.get_boolean_details("new-checkout", True, user(unit))
        assert (details.value, details.variant, details.reason) == (False, "off", Reason.SPLIT)
        assert details.error_code is None


def test_the_staff_rule_is_a_targeting_match(openfeature: OpenFeatureClient) -> None:
    for unit in [*INSIDE[:2], *OUTSIDE[:2]]:
        details = openfeature.get_boolean_details(
            "new-checkout", False, user(unit, email="ann@example.com")
        )
        assert (details.value, details.variant) == (True, "on")
        assert details.reason == Reason.TARGETING_MATCH


def test_no_targeting_key_is_outside_the_rollout_without_an_error(
    openfeature: OpenFeatureClient,
) -> None:
    details = openfeature.get_boolean_details("new-checkout", True, EvaluationContext())
    assert (details.value, details.variant, details.reason) == (False, "off", Reason.SPLIT)
    assert details.error_code is None


def test_every_type_of_flag_resolves(openfeature: OpenFeatureClient) -> None:
    string = openfeature.get_string_details("button-color", "red", user("user-3"))
    assert (string.value, string.variant, string.reason) == ("#2da44e", "green", Reason.STATIC)

    integer = openfeature.get_integer_details("page-size", 0, user("user-3"))
    assert (integer.value, integer.variant, integer.reason) == (10, "small", Reason.STATIC)

    ratio = openfeature.get_float_details("ratio", 0.0, user("user-3"))
    assert (ratio.value, ratio.variant, ratio.reason) == (0.75, "high", Reason.STATIC)

    theme = openfeature.get_object_details("theme", {}, user("user-3"))
    assert theme.value == {"bg": "black", "fg": "white"}
    assert (theme.variant, theme.reason) == ("dark", Reason.STATIC)

    for details in (string, integer, ratio, theme):
        assert details.error_code is None


def test_segment_rules_follow_include_exclude_and_conditions(
    openfeature: OpenFeatureClient,
) -> None:
    cases = [
        (user("user-1"), 50, "large", Reason.TARGETING_MATCH),  # included by key
        (user("user-5", plan="pro"), 50, "large", Reason.TARGETING_MATCH),  # by condition
        (user("user-9", plan="pro"), 10, "small", Reason.STATIC),  # excluded beats condition
        (user("user-5", plan="free"), 10, "small", Reason.STATIC),
    ]
    for context, value, variant, reason in cases:
        details = openfeature.get_integer_details("page-size", 0, context)
        assert (details.value, details.variant, details.reason) == (value, variant, reason), context


def test_a_disabled_flag_serves_its_off_variant(
    openfeature: OpenFeatureClient, admin: httpx.Client, ofrep: httpx.Client
) -> None:
    response = admin.put(
        "/api/v1/flags/new-checkout/environments/production/enabled", json={"enabled": False}
    )
    assert response.status_code == 200
    wait_until(
        lambda: (
            ofrep.post(SINGLE.format(key="new-checkout"), json={"context": {}}).json()["reason"]
            == "DISABLED"
        ),
        what="the kill switch to be served",
    )

    for context in (user(INSIDE[0]), user(OUTSIDE[0], email="ann@example.com")):
        details = openfeature.get_boolean_details("new-checkout", True, context)
        assert (details.value, details.variant, details.reason) == (False, "off", Reason.DISABLED)


def test_an_unknown_flag_gives_the_code_default_and_flag_not_found(
    openfeature: OpenFeatureClient,
) -> None:
    details = openfeature.get_boolean_details("no-such-flag", True, user("user-1"))
    assert details.value is True
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND
    assert details.reason == Reason.ERROR

    text = openfeature.get_string_details("no-such-flag", "fallback", user("user-1"))
    assert text.value == "fallback"
    assert text.error_code == ErrorCode.FLAG_NOT_FOUND


# --- the raw protocol ----------------------------------------------------------------------


def test_a_single_evaluation_has_the_success_shape(ofrep: httpx.Client) -> None:
    response = ofrep.post(
        SINGLE.format(key="new-checkout"),
        json={"context": {"targetingKey": INSIDE[0], "plan": "pro"}},
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_valid(body, EVALUATION_SUCCESS)
    assert {"key", "value", "reason", "variant", "metadata"} <= set(body)
    assert body["key"] == "new-checkout"
    assert (body["value"], body["variant"], body["reason"]) == (True, "on", "SPLIT")

    for key, value in [
        ("button-color", "#2da44e"),
        ("page-size", 10),
        ("ratio", 0.75),
        ("theme", {"bg": "black", "fg": "white"}),
    ]:
        answer = ofrep.post(SINGLE.format(key=key), json={"context": {"targetingKey": "u"}})
        assert answer.status_code == 200
        assert_valid(answer.json(), EVALUATION_SUCCESS)
        assert answer.json()["value"] == value
        assert answer.json()["reason"] == "STATIC"


def test_an_unknown_flag_is_404_flag_not_found(ofrep: httpx.Client) -> None:
    response = ofrep.post(
        SINGLE.format(key="no-such-flag"), json={"context": {"targetingKey": "u"}}
    )

    assert response.status_code == 404
    body = response.json()
    assert_valid(body, FLAG_NOT_FOUND)
    assert body["key"] == "no-such-flag"
    assert body["errorCode"] == "FLAG_NOT_FOUND"
    assert isinstance(body["errorDetails"], str)
    assert body["errorDetails"]
    assert "value" not in body


@pytest.mark.parametrize(
    "payload",
    [
        {"context": "user-1"},
        {"context": ["user-1"]},
        ["not", "an", "object"],
    ],
)
def test_a_context_that_is_not_an_object_is_400_invalid_context(
    ofrep: httpx.Client, payload: Any
) -> None:
    single = ofrep.post(SINGLE.format(key="new-checkout"), json=payload)
    assert single.status_code == 400
    assert_valid(single.json(), EVALUATION_FAILURE)
    assert single.json()["key"] == "new-checkout"
    assert single.json()["errorCode"] == "INVALID_CONTEXT"

    bulk = ofrep.post(BULK, json=payload)
    assert bulk.status_code == 400
    assert_valid(bulk.json(), BULK_FAILURE)
    assert bulk.json()["errorCode"] == "INVALID_CONTEXT"


def test_malformed_json_is_400_parse_error(ofrep: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    single = ofrep.post(
        SINGLE.format(key="new-checkout"), content=b'{"context": {', headers=headers
    )
    assert single.status_code == 400
    assert_valid(single.json(), EVALUATION_FAILURE)
    assert single.json()["errorCode"] == "PARSE_ERROR"
    assert single.json()["errorDetails"]

    bulk = ofrep.post(BULK, content=b"{not json", headers=headers)
    assert bulk.status_code == 400
    assert_valid(bulk.json(), BULK_FAILURE)
    assert bulk.json()["errorCode"] == "PARSE_ERROR"


ODD_TARGETING_KEYS = [1.5, 2.0, True, False, None, [1], {"id": "u"}, 12, -7, 2**62, "12", ""]


@pytest.fixture
def sdk(server: LiveServer, token: str) -> Iterator[Client]:
    client = Client(server.url, token, stream=False, flush_interval=3600)
    client.wait_ready(10)
    yield client
    client.close()


@pytest.mark.parametrize("key", ODD_TARGETING_KEYS, ids=repr)
def test_any_targeting_key_is_answered_as_the_sdk_answers_it(
    ofrep: httpx.Client, sdk: Client, key: Any
) -> None:
    # A key that is not a string or an integer is no unit (contract 2): never a 400.
    context = {"targetingKey": key, "email": "ann@example.org", "plan": "pro"}
    bulk = ofrep.post(BULK, json={"context": context})
    assert bulk.status_code == 200, bulk.text
    served = {f["key"]: f for f in bulk.json()["flags"]}
    assert served
    for flag, answer in served.items():
        single = ofrep.post(SINGLE.format(key=flag), json={"context": context})
        assert single.status_code == 200, single.text
        assert single.json() == answer
        local = sdk.evaluate(flag, context)
        assert local.error_code is None
        assert (answer["value"], answer.get("variant"), answer["reason"]) == (
            local.value,
            local.variant,
            str(local.reason),
        )


def test_if_none_match_star_does_not_stand_for_a_context(ofrep: httpx.Client) -> None:
    for key in (OUTSIDE[0], INSIDE[0]):
        response = ofrep.post(
            BULK, json={"context": {"targetingKey": key}}, headers={"If-None-Match": "*"}
        )
        assert response.status_code == 200
        assert_valid(response.json(), BULK_SUCCESS)


def test_bulk_evaluates_every_flag_and_advertises_the_event_stream(
    ofrep: httpx.Client, admin: httpx.Client, token: str, server: LiveServer
) -> None:
    context = {"targetingKey": "user-1", "email": "ann@example.com"}
    response = ofrep.post(BULK, json={"context": context})

    assert response.status_code == 200
    assert response.headers["etag"]
    body = response.json()
    assert_valid(body, BULK_SUCCESS)
    stored = admin.get("/api/v1/state").json()["flags"]
    assert sorted(f["key"] for f in body["flags"]) == sorted(stored)
    # each flag is what a single evaluation of it answers
    for result in body["flags"]:
        single = ofrep.post(SINGLE.format(key=result["key"]), json={"context": context})
        assert single.json() == result
    by_key = {f["key"]: f for f in body["flags"]}
    assert by_key["new-checkout"]["reason"] == "TARGETING_MATCH"
    assert by_key["page-size"]["value"] == 50

    streams = [s for s in body["eventStreams"] if s["type"] == "sse"]
    assert len(streams) == 1
    stream = streams[0]
    url = stream.get("url") or server.url + stream["endpoint"]["requestUri"]
    # the advertised stream answers the same token with OFREP's change event
    with (
        httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=5) as client,
        client.stream("GET", url) as events,
    ):
        assert events.status_code == 200
        data = next(line for line in events.iter_lines() if line.startswith("data:"))
    assert json.loads(data.removeprefix("data:"))["type"] == "refetchEvaluation"


def test_bulk_etags_cover_the_flags_and_the_context(
    ofrep: httpx.Client, admin: httpx.Client
) -> None:
    context = {"context": {"targetingKey": OUTSIDE[0]}}
    first = ofrep.post(BULK, json=context)
    etag = first.headers["etag"]

    unchanged = ofrep.post(BULK, json=context, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag

    other = ofrep.post(
        BULK, json={"context": {"targetingKey": INSIDE[0]}}, headers={"If-None-Match": etag}
    )
    assert other.status_code == 200
    assert other.headers["etag"] != etag

    # after a change to a flag, the old ETag no longer matches
    config = admin.get("/api/v1/flags/new-checkout/environments/production").json()
    config["fallthrough"]["rollout"]["percentage"] = 100
    version = admin.get("/api/v1/flags/new-checkout").headers["etag"]
    changed = admin.put(
        "/api/v1/flags/new-checkout/environments/production",
        json=config,
        headers={"If-Match": version},
    )
    assert changed.status_code == 200
    wait_until(
        lambda: ofrep.post(BULK, json=context, headers={"If-None-Match": etag}).status_code == 200,
        what="the old bulk ETag to stop matching",
    )
    fresh = ofrep.post(BULK, json=context, headers={"If-None-Match": etag})
    assert fresh.headers["etag"] != etag
    by_key = {f["key"]: f for f in fresh.json()["flags"]}
    assert (by_key["new-checkout"]["value"], by_key["new-checkout"]["reason"]) == (True, "SPLIT")
    assert {f["key"]: f for f in first.json()["flags"]}["new-checkout"]["value"] is False


def test_the_token_can_come_as_an_api_key(server: LiveServer, token: str) -> None:
    with httpx.Client(base_url=server.url, headers={"X-API-Key": token}, timeout=10) as client:
        single = client.post(SINGLE.format(key="ratio"), json={"context": {"targetingKey": "u"}})
        bulk = client.post(BULK, json={"context": {"targetingKey": "u"}})
    assert single.status_code == 200
    assert single.json()["value"] == 0.75
    assert bulk.status_code == 200


def test_evaluation_needs_an_sdk_token(server: LiveServer, admin: httpx.Client) -> None:
    body = {"context": {"targetingKey": "u"}}
    path = SINGLE.format(key="ratio")
    assert httpx.post(f"{server.url}{path}", json=body, timeout=10).status_code == 401
    wrong = httpx.post(
        f"{server.url}{path}", json=body, headers={"X-API-Key": "gls_nope"}, timeout=10
    )
    assert wrong.status_code == 401
    assert admin.post(path, json=body).status_code == 403
    assert admin.post(BULK, json=body).status_code == 403
