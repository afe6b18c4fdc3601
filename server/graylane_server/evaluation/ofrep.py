"""The OpenFeature Remote Evaluation Protocol (OFREP) 0.3.0, evaluated on the replica's
in-memory snapshot with the same core the SDK runs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from graylane.core import ErrorCode, Evaluation, evaluate
from graylane.core.operators import describe
from graylane_server.configs.http import etag_matches
from graylane_server.deps import runtime_of, sdk_client
from graylane_server.direct_routes import DirectRoutes
from graylane_server.evaluation.failures import failure
from graylane_server.ops.bodies import PARSED
from graylane_server.sdk.endpoints import served

router = APIRouter(prefix="/ofrep/v1", tags=["ofrep"])
direct = DirectRoutes()
"""Both evaluation endpoints, called on apps' request paths: served ahead of FastAPI's
routing."""
STREAM_PATH = "/api/v1/sdk/stream"


_UNPARSED = object()


class _BadRequest(Exception):
    def __init__(self, code: ErrorCode, details: str) -> None:
        self.code = code
        self.details = details


async def _context(request: Request) -> dict[str, Any]:
    # The body was parsed and checked against the edge limits on its way in (see
    # `ops.bodies`); what is left here is whatever is not JSON at all.
    body = request.scope.get(PARSED, _UNPARSED)
    if body is _UNPARSED:
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise _BadRequest(ErrorCode.PARSE_ERROR, f"the body is not JSON: {exc}") from exc
    # Refusals start with the path they name, as the edge's do (docs/limits.md).
    if not isinstance(body, dict):
        raise _BadRequest(
            ErrorCode.INVALID_CONTEXT,
            f'the body must be {{"context": {{...}}}}, not {describe(body)}',
        )
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise _BadRequest(
            ErrorCode.INVALID_CONTEXT, f"context must be an object, not {describe(context)}"
        )
    # A `targetingKey` that is not a string or an integer is no unit, as in the SDK
    # (contract 2): evaluated like a missing one, never refused, so both answer alike.
    return context


def _failed(result: Evaluation) -> dict[str, Any]:
    assert result.error_code is not None
    return failure(result.flag_key, str(result.error_code), result.error_message or "")


def _answer(result: Evaluation) -> dict[str, Any]:
    return _success(result) if result.error_code is None else _failed(result)


def _success(result: Evaluation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": result.flag_key,
        "reason": str(result.reason),
        "value": result.value,
    }
    if result.variant is not None:
        out["variant"] = result.variant
    out["metadata"] = {} if result.rule is None else {"rule": result.rule}
    return out


@direct.route(
    router,
    "POST",
    "/evaluate/flags/{key}",
    responses={
        200: {"description": "The flag's value, variant and reason."},
        400: {"description": "The request or its context is malformed."},
        404: {"description": "No such flag (`FLAG_NOT_FOUND`)."},
        401: {"description": "No or unknown token."},
        403: {"description": "Not an SDK token."},
    },
)
async def evaluate_flag(key: str, request: Request) -> JSONResponse:
    """Evaluate one flag for the context in the body."""
    client = await sdk_client(request)
    try:
        context = await _context(request)
    except _BadRequest as exc:
        return JSONResponse(failure(key, str(exc.code), exc.details), status_code=400)
    result = evaluate(served(runtime_of(request), client.environment).snapshot, key, context)
    if result.error_code is ErrorCode.FLAG_NOT_FOUND:
        return JSONResponse(
            failure(key, str(ErrorCode.FLAG_NOT_FOUND), f"flag {key!r} was not found"),
            status_code=404,
        )
    if result.error_code is not None:
        return JSONResponse(_failed(result), status_code=400)
    return JSONResponse(_success(result))


@direct.route(
    router,
    "POST",
    "/evaluate/flags",
    responses={
        200: {"description": "Every flag evaluated, with an ETag for `If-None-Match`."},
        304: {"description": "Neither the flags nor the context changed."},
        400: {"description": "The request or its context is malformed."},
        401: {"description": "No or unknown token."},
        403: {"description": "Not an SDK token."},
    },
)
async def evaluate_flags(request: Request) -> Response:
    """Evaluate every flag for the context in the body. The ETag covers the flag
    configuration and the context, so `If-None-Match` answers 304 only when both match."""
    client = await sdk_client(request)
    try:
        context = await _context(request)
    except _BadRequest as exc:
        return JSONResponse(failure(None, str(exc.code), exc.details), status_code=400)
    config = served(runtime_of(request), client.environment)
    digest = hashlib.sha256(config.etag.encode())
    digest.update(json.dumps(context, sort_keys=True, default=str).encode())
    etag = f'"{digest.hexdigest()[:32]}"'
    # `*` names no context, so it cannot say this context's answer is unchanged.
    if etag_matches(request.headers.get("if-none-match"), etag, star=False):
        return Response(status_code=304, headers={"ETag": etag})
    snapshot = config.snapshot
    body = {
        "flags": [_answer(evaluate(snapshot, key, context)) for key in snapshot.flags],
        "metadata": {"version": str(config.version), "environment": config.environment},
        "eventStreams": [{"type": "sse", "endpoint": {"requestUri": STREAM_PATH}}],
    }
    return JSONResponse(body, headers={"ETag": etag})
