"""What a `targetingKey` that is not a string means (contract 2): an integer is its decimal
text; a float or a boolean is no key at all, exactly as if it were missing: outside a
rollout below 100% (its `otherwise`, reason SPLIT, no error), in no segment by key. The
client, the OpenFeature provider and the server's OFREP answer the same."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openfeature.evaluation_context import EvaluationContext

from graylane import Client, Reason
from graylane.openfeature import GraylaneProvider
from tests.sdk.conftest import ClientFactory
from tests.sdk.support import PRODUCTION, bucket, rollout_flag
from tests.support.servers import LiveServer

INSIDE = next(n for n in range(1, 10_000) if bucket("half", str(n)) < 50_000)
"""An integer key inside the 50% rollout of `half`."""
NOT_KEYS = [float(INSIDE), True, False, 0.5, float("inf")]

DOCUMENT: dict[str, Any] = {
    "flags": {
        "half": rollout_flag(50),
        "all": rollout_flag(100),
        "beta": {
            "variants": {"on": True, "off": False},
            "off_variant": "off",
            "environments": {
                PRODUCTION: {
                    "enabled": True,
                    "rules": [{"name": "beta", "segment": "testers", "serve": {"variant": "on"}}],
                    "fallthrough": {"variant": "off"},
                }
            },
        },
    },
    # every text a float or a boolean key could be mistaken for
    "segments": {"testers": {"include": ["7", "7.0", "True", "true", "1", "False", "0"]}},
}


@pytest.fixture
def served_document() -> dict[str, Any]:
    return DOCUMENT


@pytest.fixture
def client(served_client: Client) -> Client:
    return served_client


def answer(client: Client, key: str, targeting_key: object) -> tuple[object, ...]:
    details = client.evaluate(key, {"targetingKey": targeting_key})
    return (details.value, details.variant, details.reason, details.error_code, details.bucket)


def test_an_integer_key_is_its_decimal_text(client: Client) -> None:
    assert answer(client, "half", INSIDE) == answer(client, "half", str(INSIDE))
    assert client.evaluate("half", {"targetingKey": INSIDE}).variant == "on"
    assert client.is_enabled("beta", {"targetingKey": 7}) is True
    assert client.is_enabled("beta", {"targetingKey": 1}) is True


@pytest.mark.parametrize("key", NOT_KEYS, ids=repr)
def test_a_float_or_boolean_key_is_treated_as_missing(client: Client, key: object) -> None:
    missing = {"targetingKey": None}

    # below 100%: outside the rollout, no error and no bucket, as with no key at all
    assert answer(client, "half", key) == answer(client, "half", None)
    details = client.evaluate("half", {"targetingKey": key})
    assert (details.variant, details.reason, details.error_code) == ("off", Reason.SPLIT, None)
    assert details.bucket is None
    # at 100% everyone is inside, a unit without a key too
    assert client.evaluate("all", {"targetingKey": key}).variant == "on"
    # and no segment takes it in by key, whatever text it resembles
    assert client.is_enabled("beta", {"targetingKey": key}) is False
    assert client.is_enabled("beta", missing) is False


@pytest.mark.parametrize("key", [INSIDE, *NOT_KEYS], ids=repr)
def test_the_openfeature_provider_answers_as_the_client(key: object) -> None:
    with Client.from_document(DOCUMENT, PRODUCTION) as offline:
        provider = GraylaneProvider(offline)
        for flag in ("half", "all", "beta"):
            got = provider.resolve_boolean_details(
                flag,
                False,
                EvaluationContext(targeting_key=key),  # type: ignore[arg-type]
            )
            want = offline.evaluate(flag, {"targetingKey": key})
            assert (got.value, got.variant, got.reason, got.error_code) == (
                want.value,
                want.variant,
                str(want.reason),
                None,
            )


@pytest.mark.parametrize(
    "key", [INSIDE, float(INSIDE), True, False, 0.5, 2**63 - 1, -(2**63)], ids=repr
)
def test_ofrep_answers_as_the_client(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory, key: object
) -> None:
    assert admin.put("/api/v1/state", json=DOCUMENT).status_code == 200
    client = clients(server.url, sdk_key)
    client.wait_ready(10)
    for flag in ("half", "all", "beta"):
        response = httpx.post(
            f"{server.url}/ofrep/v1/evaluate/flags/{flag}",
            json={"context": {"targetingKey": key}},
            headers={"Authorization": f"Bearer {sdk_key}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        want = client.evaluate(flag, {"targetingKey": key})
        assert (body["value"], body["variant"], body["reason"]) == (
            want.value,
            want.variant,
            str(want.reason),
        )
