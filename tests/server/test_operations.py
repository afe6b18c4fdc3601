"""Operating the server: health and readiness, Prometheus metrics, the OpenAPI document,
one shape for every error, and logs that are JSON and never carry a token."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.server.documents import boolean_flag
from tests.support.servers import LiveServer, ServerProcess, server_env, wait_until

FLAG_ROUTE = "/api/v1/flags/{key}"
ERROR_BODY_REF = "#/components/schemas/ErrorBody"
TokenFactory = Callable[..., str]


def scrape(server: LiveServer) -> list[Sample]:
    """Every sample `/metrics` reports right now."""
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """The value of the one series with exactly these labels, or None when there is none."""
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) <= 1, found
    return found[0] if found else None


def sample_value(server: LiveServer, name: str, **labels: str) -> float | None:
    return value(scrape(server), name, **labels)


# --- health ------------------------------------------------------------------------------


def test_healthz_says_the_process_is_alive_without_credentials(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_database_and_the_configs_ok(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/readyz", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["configs"] == "ok"


# --- metrics -----------------------------------------------------------------------------


def test_metrics_are_prometheus_text(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "graylane_http_requests",
        "graylane_http_request_duration_seconds",
        "graylane_config_version",
        "graylane_sse_streams",
    } <= names
    assert "# TYPE graylane_http_requests_total counter" in response.text
    assert "# TYPE graylane_http_request_duration_seconds histogram" in response.text


def test_requests_are_counted_by_route_template_not_by_raw_path(
    server: LiveServer, admin: httpx.Client
) -> None:
    for key in ("checkout", "search"):
        assert admin.put(f"/api/v1/flags/{key}", json=boolean_flag(10)).status_code == 201
        assert admin.get(f"/api/v1/flags/{key}").status_code == 200

    samples = scrape(server)
    counted = "graylane_http_requests_total"
    assert value(samples, counted, route=FLAG_ROUTE, method="GET", status="200") == 2
    assert value(samples, counted, route=FLAG_ROUTE, method="PUT", status="201") == 2
    routes = {s.labels["route"] for s in samples if s.name == counted}
    assert not any("checkout" in route or "search" in route for route in routes), routes
    timed = "graylane_http_request_duration_seconds"
    assert value(samples, f"{timed}_count", route=FLAG_ROUTE, method="GET") == 2
    assert value(samples, f"{timed}_bucket", route=FLAG_ROUTE, method="GET", le="+Inf") == 2
    assert value(samples, f"{timed}_count", route=FLAG_ROUTE, method="PUT") == 2


def test_the_config_version_gauge_follows_the_served_config(
    server: LiveServer, admin: httpx.Client, make_token: TokenFactory
) -> None:
    assert admin.put("/api/v1/flags/checkout", json=boolean_flag(10)).status_code == 201
    version = admin.get("/api/v1/environments/production").json()["config_version"]
    assert version > 1
    sdk = httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {make_token(sdk='production')}"},
        timeout=10,
    )
    with sdk:
        wait_until(
            lambda: sdk.get("/api/v1/sdk/config").headers["x-graylane-version"] == str(version),
            what=f"production config version {version} to be served",
        )
    assert sample_value(server, "graylane_config_version", environment="production") == version


def test_the_stream_gauge_counts_connected_sdk_streams(
    server: LiveServer, make_token: TokenFactory
) -> None:
    assert sample_value(server, "graylane_sse_streams") == 0
    headers = {"Authorization": f"Bearer {make_token(sdk='production')}"}
    with (
        httpx.Client(base_url=server.url, headers=headers, timeout=10) as sdk,
        sdk.stream("GET", "/api/v1/sdk/stream") as stream,
    ):
        assert stream.status_code == 200
        # Hold on to the iterator: a dropped one is closed, and the connection with it.
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        assert sample_value(server, "graylane_sse_streams") == 1
    wait_until(
        lambda: sample_value(server, "graylane_sse_streams") == 0,
        what="the closed stream to be forgotten",
    )


# --- OpenAPI -----------------------------------------------------------------------------


def test_openapi_documents_the_errors_of_writing_a_flag(server: LiveServer) -> None:
    document = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    responses = document["paths"][FLAG_ROUTE]["put"]["responses"]
    for status in ("401", "403", "412", "422", "428"):
        assert status in responses, f"PUT {FLAG_ROUTE} does not document {status}"
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": ERROR_BODY_REF}, (status, schema)
        assert responses[status]["description"]
    schemas = document["components"]["schemas"]
    assert schemas["ErrorBody"]["required"] == ["error"]
    detail = schemas["ErrorBody"]["properties"]["error"]["$ref"].rsplit("/", 1)[-1]
    assert set(schemas[detail]["required"]) == {"code", "message"}


def test_the_docs_page_is_html(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/docs", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_every_asset_from_the_server_itself(
    server: LiveServer, page: str
) -> None:
    html = httpx.get(f"{server.url}{page}", timeout=10).text
    # Nothing from another host: no absolute URL in any src or href.
    referenced = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert referenced
    assert [url for url in referenced if "//" in url] == []
    assert "cdn" not in html.lower()
    scripts = [url for url in referenced if url.endswith(".js")]
    assert scripts
    for url in referenced:
        asset = httpx.get(f"{server.url}{url}", timeout=10)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url


# --- one error shape ---------------------------------------------------------------------


class Api:
    """What the error cases need: the server, the admin client, and token minting."""

    def __init__(self, server: LiveServer, admin: httpx.Client, make_token: TokenFactory) -> None:
        self.url = server.url
        self.admin = admin
        self.make_token = make_token

    def as_token(self, token: str | None) -> httpx.Client:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def existing_flag(self) -> str:
        assert self.admin.put("/api/v1/flags/f", json=boolean_flag(10)).status_code == 201
        return "/api/v1/flags/f"


def _no_token(api: Api) -> httpx.Response:
    with api.as_token(None) as client:
        return client.get("/api/v1/flags")


def _unknown_token(api: Api) -> httpx.Response:
    with api.as_token("gla_not-a-token") as client:
        return client.get("/api/v1/flags")


def _role_too_low(api: Api) -> httpx.Response:
    with api.as_token(api.make_token(role="viewer")) as client:
        return client.put("/api/v1/flags/f", json=boolean_flag(10))


def _sdk_token_on_admin_api(api: Api) -> httpx.Response:
    with api.as_token(api.make_token(sdk="production")) as client:
        return client.get("/api/v1/flags")


def _no_such_flag(api: Api) -> httpx.Response:
    return api.admin.get("/api/v1/flags/no-such-flag")


def _duplicate_environment(api: Api) -> httpx.Response:
    return api.admin.post("/api/v1/environments", json={"key": "production"})


def _stale_version(api: Api) -> httpx.Response:
    return api.admin.put(api.existing_flag(), json=boolean_flag(20), headers={"If-Match": '"7"'})


def _invalid_flag(api: Api) -> httpx.Response:
    return api.admin.put("/api/v1/flags/f", json={"variants": "not an object"})


def _missing_version(api: Api) -> httpx.Response:
    return api.admin.put(api.existing_flag(), json=boolean_flag(20))


def _entity_tag_not_a_version(api: Api) -> httpx.Response:
    return api.admin.put(api.existing_flag(), json=boolean_flag(20), headers={"If-Match": "abc"})


def _unrouted_path(api: Api) -> httpx.Response:
    return api.admin.get("/api/v1/no-such-thing")


def _unsupported_method(api: Api) -> httpx.Response:
    return api.admin.patch("/api/v1/flags/f", json={})


ERROR_CASES = [
    pytest.param(_no_token, 401, "unauthorized", id="401-no-token"),
    pytest.param(_unknown_token, 401, "unauthorized", id="401-unknown-token"),
    pytest.param(_role_too_low, 403, "forbidden", id="403-viewer-writes"),
    pytest.param(_sdk_token_on_admin_api, 403, "forbidden", id="403-sdk-token-on-admin-api"),
    pytest.param(_no_such_flag, 404, "not_found", id="404-no-such-flag"),
    pytest.param(_duplicate_environment, 409, "conflict", id="409-duplicate-environment"),
    pytest.param(_stale_version, 412, "version_mismatch", id="412-stale-version"),
    pytest.param(_invalid_flag, 422, "invalid", id="422-invalid-flag"),
    pytest.param(_missing_version, 428, "version_required", id="428-missing-version"),
    pytest.param(_entity_tag_not_a_version, 412, "version_mismatch", id="412-if-match-no-version"),
    pytest.param(_unrouted_path, 404, "not_found", id="404-unrouted-path"),
    pytest.param(_unsupported_method, 405, None, id="405-unsupported-method"),
]


@pytest.mark.parametrize(("call", "status", "code"), ERROR_CASES)
def test_every_error_answers_with_a_code_and_a_message(
    server: LiveServer,
    admin: httpx.Client,
    make_token: TokenFactory,
    call: Callable[[Api], httpx.Response],
    status: int,
    code: str | None,
) -> None:
    response = call(Api(server, admin, make_token))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "problems"}, error
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if status == 422:
        assert error["problems"]
        assert all(set(p) == {"path", "message"} for p in error["problems"])
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_405_allows_every_method_the_path_answers(
    server: LiveServer, admin: httpx.Client
) -> None:
    paths = httpx.get(f"{server.url}/openapi.json", timeout=10).json()["paths"]
    documented = {method.upper() for method in paths[FLAG_ROUTE]}
    assert len(documented) > 1
    refused = admin.post("/api/v1/flags/f", json={})
    assert refused.status_code == 405
    allowed = {m.strip() for m in refused.headers["allow"].split(",")}
    assert allowed == documented

    ofrep = admin.get("/ofrep/v1/evaluate/flags")
    assert ofrep.status_code == 405
    assert ofrep.headers["allow"] == "POST"
    assert set(ofrep.json()) == {"errorCode", "errorDetails"}


# --- logs --------------------------------------------------------------------------------


@pytest.mark.usefixtures("settings")  # empties the database, so the bootstrap token is minted
def test_logs_are_json_lines_and_never_contain_a_token(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    admin_token = f"gla_log-admin-{uuid.uuid4().hex}"
    wrong_token = f"gla_log-wrong-{uuid.uuid4().hex}"
    log_path = tmp_path / "server.log"
    process = ServerProcess(
        server_env(database_url, redis_url, admin_token, log_json="true", log_level="debug"),
        log_path,
    )
    try:
        process.start()
        with httpx.Client(
            base_url=process.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=10
        ) as admin:
            assert admin.put("/api/v1/flags/f", json=boolean_flag(10)).status_code == 201
            created = admin.post(
                "/api/v1/tokens", json={"kind": "sdk", "environment": "production"}
            )
            assert created.status_code == 201
            sdk_token = created.json()["token"]
            assert admin.get("/api/v1/flags/f").status_code == 200
        with httpx.Client(base_url=process.url, headers={"X-API-Key": sdk_token}) as sdk:
            assert sdk.get("/api/v1/sdk/config").status_code == 200
            evaluated = sdk.post(
                "/ofrep/v1/evaluate/flags/f", json={"context": {"targetingKey": "u"}}
            )
            assert evaluated.status_code == 200
            assert sdk.get("/api/v1/flags").status_code == 403
        wrong = httpx.get(
            f"{process.url}/api/v1/flags",
            headers={"Authorization": f"Bearer {wrong_token}"},
            timeout=10,
        )
        assert wrong.status_code == 401
    finally:
        process.stop()

    log = log_path.read_text()
    events = []
    for line in log.splitlines():
        if line.strip().startswith("{"):
            entry = json.loads(line)
            assert {"event", "level", "timestamp"} <= set(entry), line
            events.append(entry["event"])
    assert "server.started" in events, log
    assert "tokens.bootstrapped" in events, log
    for secret in (admin_token, sdk_token, wrong_token):
        assert secret not in log
