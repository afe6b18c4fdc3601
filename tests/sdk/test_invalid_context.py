"""A context holding text that is not valid Unicode (a lone surrogate such as "\\ud800",
which no UTF-8 can encode, so it can be neither hashed nor matched), or an integer outside
the signed 64-bit range, never reaches the app as a crash: every public method answers the
caller's default with INVALID_CONTEXT and logs it once per flag, for a client following a
live server and one serving a document; the server refuses the same context in the same
words."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode as OFErrorCode
from openfeature.flag_evaluation import Reason as OFReason

from graylane import Client, ErrorCode, Reason
from graylane.openfeature import GraylaneProvider
from tests.sdk.support import PRODUCTION, rollout_flag, static_flag
from tests.support.servers import LiveServer

LONE = "\ud800"


def targeted_flag() -> dict[str, Any]:
    """`on` for example.com addresses, a 50% rollout on `account` for everyone else."""
    return {
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": {
            PRODUCTION: {
                "enabled": True,
                "rules": [
                    {
                        "name": "staff",
                        "when": [{"attribute": "email", "op": "ends_with", "values": ["@x.com"]}],
                        "serve": {"variant": "on"},
                    }
                ],
                "fallthrough": {
                    "rollout": {"percentage": 50, "bucket_by": "account", "variants": {"on": 100}},
                    "otherwise": "off",
                },
            }
        },
    }


FLAGS = {
    "checkout": rollout_flag(50),
    "targeted": targeted_flag(),
    "colour": static_flag({"blue": "#00f", "green": "#0f0"}, "green"),
}

# (context, the flag it is invalid for, the path the error names)
BAD_CONTEXTS = [
    pytest.param({"targetingKey": LONE}, "checkout", "context.targetingKey", id="targeting-key"),
    pytest.param({"targetingKey": f"user-{LONE}-1"}, "checkout", "context.targetingKey", id="mid"),
    pytest.param({"email": f"a{LONE}@x.com"}, "targeted", "context.email", id="matched-attribute"),
    pytest.param(
        {"email": "a@y.org", "account": LONE}, "targeted", "context.account", id="bucket-by"
    ),
    # an integer outside the signed 64-bit range, which the server refuses as well
    pytest.param({"targetingKey": 2**63}, "checkout", "context.targetingKey", id="int-2**63"),
    pytest.param(
        {"targetingKey": -(2**63) - 1}, "checkout", "context.targetingKey", id="int-below"
    ),
    pytest.param({"email": 2**64}, "targeted", "context.email", id="int-matched-attribute"),
    pytest.param(
        {"email": "a@y.org", "account": 10**30}, "targeted", "context.account", id="int-bucket-by"
    ),
]


@pytest.fixture
def served_document() -> dict[str, Any]:
    return {"flags": FLAGS}


@pytest.fixture
def client(served_client: Client) -> Client:
    return served_client


def warnings_about(caplog: pytest.LogCaptureFixture, key: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "graylane" and r.levelno >= logging.WARNING and repr(key) in r.getMessage()
    ]


@pytest.mark.parametrize(("context", "key", "path"), BAD_CONTEXTS)
def test_every_method_answers_the_default_with_invalid_context_and_never_raises(
    client: Client, caplog: pytest.LogCaptureFixture, context: dict[str, str], key: str, path: str
) -> None:
    for _ in range(3):
        assert client.is_enabled(key, context, default=True) is True
        assert client.is_enabled(key, context) is False
        assert client.variant(key, context, default="mine") == "mine"
        assert client.value(key, context, "code default") == "code default"
        for details in (client.resolve(key, context), client.evaluate(key, context)):
            assert details.value is None
            assert details.variant is None
            assert details.reason is Reason.ERROR
            assert details.error_code is ErrorCode.INVALID_CONTEXT
            assert path in (details.error_message or "")
        everything = client.all_flags(context)
        assert everything[key].error_code is ErrorCode.INVALID_CONTEXT

    # Then one warning for this flag, however often it was asked, naming the path
    said = warnings_about(caplog, key)
    assert len(said) == 1, said
    assert "INVALID_CONTEXT" in said[0]
    assert path in said[0]
    said[0].encode("utf-8")  # a log line that any handler can write


@pytest.mark.parametrize(("context", "key", "path"), BAD_CONTEXTS)
def test_the_server_refuses_the_same_context_naming_the_same_attribute(
    client: Client,
    server: LiveServer,
    sdk_key: str,
    context: dict[str, object],
    key: str,
    path: str,
) -> None:
    # Given a context the client answers INVALID_CONTEXT for
    details = client.evaluate(key, context)
    assert details.error_code is ErrorCode.INVALID_CONTEXT

    # When the server's OFREP evaluates the same context
    response = httpx.post(
        f"{server.url}/ofrep/v1/evaluate/flags/{key}",
        content=json.dumps({"context": context}),  # ASCII: a lone surrogate as \ud800
        headers={"Authorization": f"Bearer {sdk_key}", "Content-Type": "application/json"},
        timeout=10,
    )

    # Then it answers INVALID_CONTEXT too, in the same words for the same attribute
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errorCode"] == "INVALID_CONTEXT"
    assert body["errorDetails"] == details.error_message
    assert path in body["errorDetails"]


def test_flags_that_do_not_read_the_bad_attribute_still_answer(client: Client) -> None:
    context = {"targetingKey": "user-1", "email": "a@y.org", "nickname": LONE}

    assert client.value("colour", context, "none") == "#0f0"
    assert client.resolve("checkout", context).error_code is None
    assert client.all_flags(context)["targeted"].reason is Reason.SPLIT


def test_valid_text_beyond_ascii_is_evaluated_as_usual(client: Client) -> None:
    for unit in ("josé", "日本語", "emoji-😀", "Ünïcödé"):
        details = client.evaluate("checkout", {"targetingKey": unit})
        assert details.error_code is None
        assert details.reason is Reason.SPLIT


@pytest.mark.parametrize(
    "ask",
    [
        pytest.param(lambda c, ctx: c.get_boolean_details("checkout", True, ctx), id="boolean"),
        pytest.param(lambda c, ctx: c.get_string_details("colour-by-key", "x", ctx), id="string"),
    ],
)
def test_the_openfeature_provider_answers_the_default_with_invalid_context(
    ask: Callable[[Any, EvaluationContext], Any], caplog: pytest.LogCaptureFixture
) -> None:
    flags = {
        "checkout": rollout_flag(50),
        "colour-by-key": {
            **static_flag({"blue": "#00f", "green": "#0f0"}, "green"),
            "environments": {
                PRODUCTION: {
                    "enabled": True,
                    "fallthrough": {
                        "rollout": {"percentage": 100, "variants": {"blue": 50, "green": 50}},
                        "otherwise": "green",
                    },
                }
            },
        },
    }
    api.clear_providers()
    try:
        with Client.from_document({"flags": flags}, PRODUCTION) as offline:
            api.set_provider_and_wait(GraylaneProvider(offline))
            context = EvaluationContext(targeting_key=f"user{LONE}")

            details = ask(api.get_client(), context)
            again = ask(api.get_client(), context)

            assert details.value in (True, "x")
            assert details.reason == OFReason.ERROR
            assert details.error_code == OFErrorCode.INVALID_CONTEXT
            assert "context.targetingKey" in (details.error_message or "")
            assert again.error_code == OFErrorCode.INVALID_CONTEXT
            assert len(warnings_about(caplog, details.flag_key)) == 1
    finally:
        api.shutdown()
