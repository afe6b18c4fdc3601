"""Fixtures for the security checks: the live server of tests/server (fresh PostgreSQL,
real Redis, over real HTTP), a seeded flag document, and schemathesis configured to stay
small and deterministic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.server.conftest import *  # noqa: F403 - the server fixtures, shared as they are
from tests.server.documents import document

SPECS = Path(__file__).parent / "specs"
Case = schemathesis.Case[Any]
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]
CHECK_FUNCTIONS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
"""The same, for `case.call_and_validate(checks=...)`: exactly these, whatever the config."""
SEED = 20240607
"""Fixed, so a run is repeatable: the same requests in the same order every time."""


def schemathesis_config(
    base_url: str, headers: dict[str, str], *, max_examples: int
) -> schemathesis.Config:
    """Deterministic generation, a few examples per operation, no shrinking, no example
    database, and only the conformance checks (each enabled one must pass)."""
    checks: dict[str, Any] = {"enabled": False}
    for name in CHECKS:
        checks[name] = {"enabled": True}
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": base_url,
            "headers": headers,
            "request-timeout": 15,
            "max-stream-events": 2,
            "generation": {
                "max-examples": max_examples,
                "deterministic": True,
                "no-shrink": True,
                "database": "none",
                # Only the token above: no generated credentials in security headers.
                "with-security-parameters": False,
            },
            "phases": {"stateful": {"enabled": False}},
            "checks": checks,
        }
    )


def seed_flags(admin: httpx.Client) -> None:
    """One flag of each JSON type (boolean, string, integer, float, object) and a segment,
    served in production, so evaluations hit real flags as well as unknown keys."""
    response = admin.put("/api/v1/state", json=document())
    assert response.status_code == 200, response.text


def load_schema(
    request: pytest.FixtureRequest, source: str | dict[str, Any], config: schemathesis.Config
) -> OpenApiSchema:
    """The OpenAPI document at `source` (a URL, or the document itself), for a schema
    fixture that a `schemathesis.pytest.from_fixture` test uses."""
    # schemathesis 4.32 names each operation's subtest through `Node._nodeid`, which
    # pytest 9 no longer has: give it the attribute it reads and writes.
    request.node._nodeid = request.node.nodeid
    if isinstance(source, dict):
        return schemathesis.openapi.from_dict(source, config=config)
    return schemathesis.openapi.from_url(source, config=config)
