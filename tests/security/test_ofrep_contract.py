"""Schemathesis against the OFREP specification itself (the copy in `specs/`), with our
live server as the implementation: generic OFREP providers rely on the spec, not on our
OpenAPI document. Requests carry an SDK token in `X-API-Key`, as the spec allows; the flags
of every type are seeded, and generated keys are mostly unknown ones."""

from __future__ import annotations

import zlib
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.security.conftest import (
    CHECK_FUNCTIONS,
    SPECS,
    Case,
    load_schema,
    schemathesis_config,
    seed_flags,
)
from tests.server.conftest import TokenFactory
from tests.server.documents import document
from tests.support.servers import LiveServer

MAX_EXAMPLES = 50
FLAG_KEYS = sorted(document()["flags"])


@pytest.fixture
def ofrep_schema(
    request: pytest.FixtureRequest,
    server: LiveServer,
    admin: httpx.Client,
    make_token: TokenFactory,
) -> OpenApiSchema:
    seed_flags(admin)
    token = make_token(sdk="production")
    config = schemathesis_config(server.url, {"X-API-Key": token}, max_examples=MAX_EXAMPLES)
    return load_schema(request, ofrep_specification(), config)


def ofrep_specification() -> dict[str, Any]:
    """The vendored OFREP document, with one correction to its response schemas.

    `evaluationSuccess` says its value matches exactly one (`oneOf`) of the typed flag
    schemas or `codeDefaultFlag`. But `codeDefaultFlag` (`type: object, properties: {}`)
    matches every object, and an integer value is also a `number`, so no answer that carries
    a value could ever match exactly one: the intent, as its descriptions say, is "one of
    these types, or no `value` at all". So: `anyOf`, and `codeDefaultFlag` without `value`.
    """
    spec: dict[str, Any] = yaml.safe_load((SPECS / "ofrep-openapi.yaml").read_text())
    schemas = spec["components"]["schemas"]
    success = schemas["evaluationSuccess"]["allOf"]
    typed = next(part for part in success if "oneOf" in part)
    typed["anyOf"] = typed.pop("oneOf")
    schemas["codeDefaultFlag"]["not"] = {"required": ["value"]}
    return spec


ofrep = schemathesis.pytest.from_fixture("ofrep_schema")


@ofrep.parametrize()
def test_ofrep_answers_as_the_specification_says(case: Case) -> None:
    case.call_and_validate(checks=CHECK_FUNCTIONS)


@ofrep.parametrize()
def test_ofrep_answers_as_the_specification_says_for_real_flags(
    case: Case,
) -> None:
    """The same, with each generated single evaluation aimed at one of the seeded flags."""
    if case.path_parameters is not None and "key" in case.path_parameters:
        case.path_parameters["key"] = FLAG_KEYS[
            zlib.crc32(repr(case.body).encode()) % len(FLAG_KEYS)
        ]
    case.call_and_validate(checks=CHECK_FUNCTIONS)
