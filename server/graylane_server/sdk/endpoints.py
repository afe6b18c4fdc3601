"""What SDKs call: their environment's config, and a stream that says when it changed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from graylane_server.configs.http import config_response
from graylane_server.configs.store import ServedConfig
from graylane_server.deps import RuntimeDep, SdkClient, runtime_of, sdk_client
from graylane_server.direct_routes import DirectRoutes
from graylane_server.errors import Unavailable, responses
from graylane_server.runtime import Runtime

router = APIRouter(prefix="/api/v1/sdk", tags=["sdk"])
direct = DirectRoutes()
"""The config, polled by every SDK: served ahead of FastAPI's routing."""


def served(runtime: Runtime, environment: str | None) -> ServedConfig:
    assert environment is not None
    config = runtime.store.get(environment)
    if config is None:
        raise Unavailable(f"the configuration of {environment!r} is not loaded yet")
    return config


@direct.route(
    router,
    "GET",
    "/config",
    responses={
        **responses(Unavailable),
        200: {"description": "The resolved flag document for the token's environment."},
        304: {"description": "Unchanged since the ETag in `If-None-Match`."},
    },
)
async def get_config(request: Request) -> Response:
    """The flag document resolved for the SDK token's environment, with a strong ETag
    (`If-None-Match` answers 304) and gzip on request. Served from memory."""
    client = await sdk_client(request)
    return config_response(request, served(runtime_of(request), client.environment))


def change_event(config: ServedConfig) -> ServerSentEvent:
    # OFREP's event format, so generic OFREP providers can listen too.
    data = {
        "type": "refetchEvaluation",
        "etag": config.etag,
        "environment": config.environment,
        "version": config.version,
    }
    return ServerSentEvent(data=json.dumps(data), id=str(config.version))


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={
        **responses(Unavailable),
        200: {
            "description": "A stream of change notices, OFREP's `refetchEvaluation` events.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
)
async def stream(request: Request, client: SdkClient, runtime: RuntimeDep) -> EventSourceResponse:
    """Server-sent events: one at once with the current version, then one for every new
    version of the environment's config. Comment pings keep idle connections alive."""
    environment = client.environment
    assert environment is not None
    current = served(runtime, environment)
    queue = runtime.store.subscribe(environment)

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            yield change_event(current)
            while True:
                yield change_event(await queue.get())
        finally:
            runtime.store.unsubscribe(environment, queue)

    return EventSourceResponse(
        events(),
        ping=runtime.settings.stream_heartbeat,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
