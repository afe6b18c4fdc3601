"""`DirectDispatch`: the hot endpoints answered ahead of FastAPI's routing, with the same
routes, documentation, error handling and route labels as FastAPI would give them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from graylane_server.direct_routes import DirectDispatch, DirectRoutes
from graylane_server.evaluation.ofrep import direct as ofrep_direct
from graylane_server.sdk.endpoints import direct as sdk_direct
from graylane_server.usage.endpoints import direct as usage_direct


class Refused(Exception):
    pass


def build() -> tuple[FastAPI, list[tuple[str, str]]]:
    """An app with two direct endpoints; returns it and the route each request got."""
    router = APIRouter(prefix="/things", tags=["things"])
    table = DirectRoutes()
    seen: list[tuple[str, str]] = []

    @table.route(router, "GET", "/{name}", responses={404: {"description": "None such."}})
    async def get_thing(name: str, request: Request) -> Response:
        """One thing."""
        if name == "refused":
            raise Refused
        if name == "broken":
            raise RuntimeError("unexpected")
        return JSONResponse({"name": name, "params": request.path_params})

    @table.route(router, "POST", "")
    async def add_thing(request: Request) -> Response:
        return PlainTextResponse((await request.body()).decode(), status_code=201)

    class RouteLabel:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)
            seen.append((scope["method"], getattr(scope.get("route"), "path", "unmatched")))

    app = FastAPI()
    app.include_router(router)
    app.add_middleware(DirectDispatch, tables=(table,))
    app.add_middleware(RouteLabel)

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"error": "refused"}, status_code=403)

    return app, seen


def call(app: FastAPI, method: str, path: str, body: bytes = b"") -> httpx.Response:
    async def send() -> httpx.Response:
        # An unexpected error still answers 500 (from the error middleware) but is re-raised.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, content=body)

    return asyncio.run(send())


def test_matching_requests_reach_the_endpoint_with_their_path_parameters() -> None:
    app, seen = build()
    found = call(app, "GET", "/things/a%20b").json()
    assert found == {"name": "a b", "params": {"name": "a b"}}
    created = call(app, "POST", "/things", b"hello")
    assert (created.status_code, created.text) == (201, "hello")
    assert seen == [("GET", "/things/{name}"), ("POST", "/things")]


def test_other_methods_and_paths_go_on_to_fastapi() -> None:
    app, seen = build()
    assert call(app, "DELETE", "/things/a").status_code == 405
    assert call(app, "GET", "/things/a/b").status_code == 404
    assert seen == [("DELETE", "/things/{name}"), ("GET", "unmatched")]


def test_errors_are_answered_by_the_apps_handlers_or_left_to_the_error_middleware() -> None:
    app, _ = build()
    refused = call(app, "GET", "/things/refused")
    assert (refused.status_code, refused.json()) == (403, {"error": "refused"})
    assert call(app, "GET", "/things/broken").status_code == 500


def test_direct_routes_are_documented_like_any_other() -> None:
    app, _ = build()
    paths: dict[str, Any] = app.openapi()["paths"]
    assert paths["/things/{name}"]["get"]["description"] == "One thing."
    assert "404" in paths["/things/{name}"]["get"]["responses"]
    assert [p["name"] for p in paths["/things/{name}"]["get"]["parameters"]] == ["name"]
    assert "post" in paths["/things"]


def test_an_endpoint_with_dependencies_cannot_be_served_directly() -> None:
    table = DirectRoutes()
    with pytest.raises(TypeError, match="served directly"):

        @table.route(APIRouter(), "GET", "/x")
        async def needs_more(request: Request, other: int) -> Response:
            return Response()


def test_the_servers_direct_routes() -> None:
    routes = {
        (r.method, r.path) for t in (sdk_direct, ofrep_direct, usage_direct) for r in t.routes
    }
    assert routes == {
        ("GET", "/api/v1/sdk/config"),
        ("POST", "/api/v1/sdk/metrics"),
        ("POST", "/ofrep/v1/evaluate/flags"),
        ("POST", "/ofrep/v1/evaluate/flags/{key}"),
    }
