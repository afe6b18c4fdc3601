"""Every JSON body is checked against the edge limits at one door, ahead of every endpoint:
text that is not valid Unicode, NUL, NaN, huge integers and deep nesting are refused with
their paths (OFREP in its own error shape), and the server keeps answering."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from graylane.core.limits import MAX_DEPTH
from tests.server.conftest import TokenFactory
from tests.server.documents import boolean_flag, document
from tests.support.servers import LiveServer, wait_until

SINGLE = "/ofrep/v1/evaluate/flags/new-checkout"
BULK = "/ofrep/v1/evaluate/flags"
JSON = {"Content-Type": "application/json"}


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.fixture
def sdk(server: LiveServer, admin: httpx.Client, make_token: TokenFactory) -> httpx.Client:
    token = make_token(sdk="production")
    client = httpx.Client(base_url=server.url, headers={"X-API-Key": token}, timeout=30)
    assert admin.put("/api/v1/state", json=document()).status_code == 200
    wait_until(
        lambda: client.post(SINGLE, json={"context": {}}).status_code == 200,
        what="production to serve the document",
    )
    return client


def assert_alive(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def problems(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(p["path"], p["message"]) for p in response.json()["error"]["problems"]]


# Bodies as raw text, since a JSON encoder would never write most of them.
OFREP_CONTEXTS = [
    pytest.param(
        r'{"context": {"targetingKey": "\ud800"}}', "context.targetingKey", id="surrogate"
    ),
    pytest.param(r'{"context": {"email": "a\udfffb"}}', "context.email", id="low-surrogate"),
    pytest.param(r'{"context": {"\ud800": "x"}}', r"context.\ud800", id="surrogate-key"),
    pytest.param(r'{"context": {"groups": ["a", "\u0000"]}}', "context.groups[1]", id="nul"),
    pytest.param('{"context": {"n": NaN}}', "context.n", id="nan"),
    pytest.param('{"context": {"n": -Infinity}}', "context.n", id="infinity"),
    pytest.param('{"context": {"n": 1e999}}', "context.n", id="overflowing-float"),
    pytest.param('{"context": {"n": ' + "9" * 5000 + "}}", "context.n", id="5000-digits"),
    pytest.param('{"context": {"n": ' + str(2**63) + "}}", "context.n", id="past-int64"),
    pytest.param(
        json.dumps({"context": nested(MAX_DEPTH)}), "context" + ".a" * (MAX_DEPTH - 1), id="deep"
    ),
]


@pytest.mark.parametrize(("body", "path"), OFREP_CONTEXTS)
def test_ofrep_refuses_a_context_past_the_edge_limits_naming_its_path(
    server: LiveServer, sdk: httpx.Client, body: str, path: str
) -> None:
    for url, key in ((SINGLE, "new-checkout"), (BULK, None)):
        refused = sdk.post(url, content=body.encode(), headers=JSON)
        assert refused.status_code == 400, refused.text
        answer = refused.json()
        assert answer["errorCode"] == "INVALID_CONTEXT"
        assert answer.get("key") == key
        assert answer["errorDetails"].startswith(path + " "), answer
    assert_alive(server)
    assert sdk.post(SINGLE, json={"context": {"targetingKey": "u"}}).status_code == 200


def test_ofrep_refuses_a_context_nested_100000_deep(server: LiveServer, sdk: httpx.Client) -> None:
    body = '{"context": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001
    for url in (SINGLE, BULK):
        refused = sdk.post(url, content=body.encode(), headers=JSON)
        assert refused.status_code == 400, refused.text
        assert refused.json()["errorCode"] == "INVALID_CONTEXT"
        assert f"deeper than {MAX_DEPTH} levels" in refused.json()["errorDetails"]
    assert_alive(server)


def test_server_side_evaluation_refuses_a_context_that_is_not_unicode(
    server: LiveServer, admin: httpx.Client
) -> None:
    admin.put("/api/v1/flags/f", json=boolean_flag())
    body = r'{"environment": "production", "flag": "f", "context": {"targetingKey": "\ud800"}}'
    refused = admin.post("/api/v1/evaluate", content=body.encode(), headers=JSON)
    assert problems(refused) == [
        ("context.targetingKey", "is not valid Unicode (it holds a lone UTF-16 surrogate)")
    ]
    assert_alive(server)


def _with(path: list[str | int], value: str) -> str:
    """The shared document as JSON text, with `value` (raw JSON text) written at `path`."""
    marker = "@@MARK@@"
    doc: Any = document()
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = marker
    return json.dumps(doc).replace(json.dumps(marker), value)


STORED = [
    pytest.param(["flags", "new-checkout", "variants", "on"], "flags.new-checkout.variants.on"),
    pytest.param(["flags", "new-checkout", "salt"], "flags.new-checkout.salt"),
    pytest.param(["flags", "new-checkout", "description"], "flags.new-checkout.description"),
    pytest.param(
        ["flags", "new-checkout", "environments", "production", "rules", 0, "when", 0, "values", 0],
        "flags.new-checkout.environments.production.rules[0].when[0].values[0]",
    ),
    pytest.param(["segments", "beta-testers", "include", 0], "segments.beta-testers.include[0]"),
]


@pytest.mark.parametrize(("where", "path"), STORED)
def test_a_document_holding_text_that_is_not_unicode_is_refused_and_nothing_changes(
    admin: httpx.Client, where: list[str | int], path: str
) -> None:
    assert admin.put("/api/v1/state", json=document()).status_code == 200
    before = admin.get("/api/v1/state").json()
    refused = admin.put("/api/v1/state", content=_with(where, r'"x\ud800"').encode(), headers=JSON)
    assert problems(refused) == [(path, "is not valid Unicode (it holds a lone UTF-16 surrogate)")]
    assert admin.get("/api/v1/state").json() == before
    for readable in ("/api/v1/flags", "/api/v1/segments", "/api/v1/audit"):
        assert admin.get(readable).status_code == 200


def test_a_segment_key_that_is_not_unicode_is_refused(admin: httpx.Client) -> None:
    body = json.dumps(document()).replace('"beta-testers": {', r'"beta\udc00": {', 1)
    refused = admin.put("/api/v1/state", content=body.encode(), headers=JSON)
    assert problems(refused)[0][0] == r"segments.beta\udc00"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NaN", "is not a finite number (NaN or infinity)"),
        ("9" * 5000, "is an integer outside the signed 64-bit range"),
        (json.dumps(nested(480)), f"nests deeper than {MAX_DEPTH} levels"),
    ],
    ids=["nan", "5000-digits", "480-deep"],
)
def test_a_flag_past_the_edge_limits_is_refused_naming_its_path(
    admin: httpx.Client, value: str, message: str
) -> None:
    body = json.dumps(boolean_flag()).replace("true", value, 1)
    refused = admin.put("/api/v1/flags/f", content=body.encode(), headers=JSON)
    (path, said), *_ = problems(refused)
    assert path.startswith("variants.on")
    assert said == message
    assert admin.get("/api/v1/flags/f").status_code == 404


def test_a_variant_as_deep_as_the_limit_allows_is_readable_everywhere(
    admin: httpx.Client,
) -> None:
    # A variant value sits 4 levels down in the whole document (flags.<key>.variants.<name>),
    # where the depth limit applies: this is the deepest value accepted.
    deep = nested(MAX_DEPTH - 4, "leaf")
    shallow = nested(MAX_DEPTH - 4, "other")
    flag = {
        "variants": {"on": deep, "off": shallow},
        "off_variant": "off",
        "environments": {"production": {"enabled": True, "fallthrough": {"variant": "on"}}},
    }
    created = admin.put("/api/v1/flags/deep", json=flag)
    assert created.status_code == 201, created.text
    flag["variants"]["on"] = nested(MAX_DEPTH - 4, "changed")
    changed = admin.put("/api/v1/flags/deep", json=flag, headers={"If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    for readable in (
        "/api/v1/flags",
        "/api/v1/flags/deep",
        "/api/v1/state",
        "/api/v1/audit",
        "/api/v1/audit?flag=deep",
    ):
        response = admin.get(readable)
        assert response.status_code == 200, (readable, response.text)
    assert admin.put("/api/v1/state", json=admin.get("/api/v1/state").json()).status_code == 200


def test_sdk_metrics_refuse_text_that_is_not_unicode_by_path(
    server: LiveServer, make_token: TokenFactory
) -> None:
    token = make_token(sdk="production")
    body = r'{"evaluations": [{"flag": "f\ud800", "variant": "on", "count": 1}]}'
    refused = httpx.post(
        f"{server.url}/api/v1/sdk/metrics",
        content=body.encode(),
        headers={**JSON, "Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert problems(refused) == [
        ("evaluations[0].flag", "is not valid Unicode (it holds a lone UTF-16 surrogate)")
    ]


def test_form_posts_and_bodies_that_are_not_json_reach_their_endpoint(
    server: LiveServer, admin: httpx.Client
) -> None:
    # Not JSON at all: the endpoint answers in its own words, as before.
    broken = admin.put("/api/v1/flags/f", content=b'{"variants": ', headers=JSON)
    assert broken.status_code == 422
    assert broken.json()["error"]["problems"][0]["message"] == "JSON decode error"
    # A form is not read as JSON, whatever its text (the sign-in page takes one).
    form = httpx.post(
        f"{server.url}/ui/login",
        content=rb'{"a": "\ud800"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code != 422
    assert "problems" not in form.text
