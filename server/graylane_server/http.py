"""Small helpers for endpoints that answer with documents and versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Path
from fastapi.responses import JSONResponse

from graylane_server.ops.encoding import SafeJSONResponse
from graylane_server.versioning import etag

JsonObject = dict[str, Any]

MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The numeric id from a listing.")]
"""A row id in a path: out of range is a 422, never a database error."""

DocumentBody = Body(
    ...,
    description="The shape of the flag document (contract 1); validated whole.",
    openapi_examples={},
)


def versioned(body: Any, version: int, *, status_code: int = 200) -> JSONResponse:
    """A JSON answer that carries its version as a strong ETag."""
    return SafeJSONResponse(body, status_code=status_code, headers={"ETag": etag(version)})


def put_answer(body: Any, version: int, *, changed: bool) -> JSONResponse:
    """The answer to a create-or-replace PUT: 201 when it created the resource (a change
    that left it at version 1), else 200; versioned either way."""
    created = changed and version == 1
    return versioned(body, version, status_code=201 if created else 200)
