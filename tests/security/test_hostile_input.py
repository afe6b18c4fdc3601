"""Hostile input, as properties: JSON past every limit (lone surrogates, NUL, nesting
100,000 levels deep, 5,000-digit integers, NaN written literally), long and
right-to-left text and values of unexpected types, sent to every write endpoint of a
real `graylane-server serve` on a fresh PostgreSQL database with Redis, to OFREP, to SDK
metrics, and to the SDK's `Client` in memory.

Every answer is a 2xx, or a 4xx whose JSON body names the offending path; the process
stays up; whatever was accepted is served to SDKs, exported, listed in the audit log and
survives a restart; a catastrophic `matches` pattern on a long attribute answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from graylane import Client
from graylane.core import Evaluation, parse_document
from graylane_server.db import migrate
from tests.security import hostile
from tests.security.hostile import Deep, Offence, Raw
from tests.server.documents import boolean_flag, document
from tests.support import services
from tests.support.servers import ServerProcess, server_env

ADMIN_TOKEN = "gla_hostile-input-admin-token"
MAX_BODY = 1_048_576
"""The server's default body size limit: a larger body is a 413, before it is read."""

settings.register_profile(
    "hostile",
    max_examples=20,
    derandomize=True,  # the same requests every run: a failure reproduces
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HOSTILE = settings.get_profile("hostile")


# --- the server -------------------------------------------------------------------------


@dataclass
class Server:
    """One `graylane-server serve` process on the module's database, restartable."""

    env: dict[str, str]
    log: Path
    process: ServerProcess = field(init=False)

    def start(self) -> Server:
        self.process = ServerProcess(self.env, self.log).start(timeout=60)
        return self

    @property
    def url(self) -> str:
        return self.process.url

    def client(self, token: str = ADMIN_TOKEN) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def assert_up(self) -> None:
        assert self.process.process is not None
        code = self.process.process.poll()
        assert code is None, f"the server exited ({code}):\n{self.process.log()}"
        assert httpx.get(f"{self.url}/healthz", timeout=10).status_code == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("hostile")
    with services.fresh_postgres_database() as url:
        engine = create_engine(url)
        migrate(engine)
        engine.dispose()
        env = server_env(
            url,
            services.redis_url(),
            ADMIN_TOKEN,
            data_dir=data,
            log_level="warning",
            token_create_max=10_000,
        )
        live = Server(env, data / "server.log").start()
        try:
            with live.client() as admin:
                seeded = admin.put("/api/v1/state", json=document())
                assert seeded.status_code == 200, seeded.text
                ana = {"username": "ana", "password": "correct-horse-battery", "role": "viewer"}
                assert admin.post("/api/v1/users", json=ana).status_code == 201
            yield live
        finally:
            live.process.stop()


@pytest.fixture(scope="module")
def sdk_token(server: Server) -> str:
    with server.client() as admin:
        return mint_sdk_token(admin, "production")


def mint_sdk_token(admin: httpx.Client, environment: str) -> str:
    created = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": environment})
    assert created.status_code == 201, created.text
    token: str = created.json()["token"]
    return token


# --- the endpoints ----------------------------------------------------------------------

HOSTILE_SEGMENTS = ["%00", "a%00b", "%ED%A0%80", "%ff", quote("\u202eevil"), "x" * 300]
"""Path parameters as sent: NUL, a surrogate and a lone byte that are not UTF-8, right-
to-left text, a key longer than any limit."""


def names(*known: str) -> st.SearchStrategy[str]:
    """A path parameter: a known name, a fresh one, or a hostile one."""
    fresh = st.integers(0, 10**9).map(lambda n: f"h{n}")
    return st.one_of(st.sampled_from(known or ("h0",)), fresh, st.sampled_from(HOSTILE_SEGMENTS))


FLAGS = tuple(document()["flags"])
ENVIRONMENTS = ("production", "staging")
NOT_ROW_IDS = st.sampled_from(["0", "-1", "9" * 30, "1e3", "NaN", "%00", "x"])
"""Row ids that are no row: never the tokens and webhooks the suite itself relies on."""
unique = st.integers(0, 10**9)
context = {"targetingKey": "user-1", "email": "ana@example.com", "plan": "pro", "groups": ["a"]}
segment = {
    "include": ["user-1"],
    "exclude": ["user-9"],
    "when": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
}
metrics_report = {
    "config_version": 1,
    "window": {"start": 1_700_000_000.0, "end": 1_700_000_010.0},
    "evaluations": [{"flag": "new-checkout", "variant": "on", "count": 3}],
    "events": [
        {
            "flag": "new-checkout",
            "variant": "on",
            "group": "exposed",
            "event": "request",
            "count": 2,
        }
    ],
    "dropped": 0,
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    """With `{name}` placeholders, filled from `params`."""
    body: st.SearchStrategy[Any] | None
    """A valid body to mutate; None for an endpoint that reads none (it gets any JSON)."""
    params: dict[str, st.SearchStrategy[str]] = field(default_factory=dict)
    sdk: bool = False
    version_of: str | None = None
    """Where the resource's current version is read, to send in If-Match so that a
    replace can succeed."""

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def ofrep(self) -> bool:
        return self.path.startswith("/ofrep/")


ENDPOINTS = [
    Endpoint(
        "PUT",
        "/api/v1/flags/{key}",
        st.just(boolean_flag(10)),
        {"key": names(*FLAGS)},
        version_of="/api/v1/flags/{key}",
    ),
    Endpoint("DELETE", "/api/v1/flags/{key}", None, {"key": names()}),
    Endpoint(
        "PUT",
        "/api/v1/flags/{key}/environments/{environment}",
        st.just(boolean_flag(20)["environments"]["production"]),
        {"key": names(*FLAGS), "environment": names(*ENVIRONMENTS)},
        version_of="/api/v1/flags/{key}",
    ),
    Endpoint(
        "PUT",
        "/api/v1/flags/{key}/environments/{environment}/enabled",
        st.just({"enabled": True}),
        {"key": names(*FLAGS), "environment": names(*ENVIRONMENTS)},
    ),
    Endpoint(
        "PUT",
        "/api/v1/segments/{key}",
        st.just(segment),
        {"key": names("beta-testers")},
        version_of="/api/v1/segments/{key}",
    ),
    Endpoint("DELETE", "/api/v1/segments/{key}", None, {"key": names()}),
    Endpoint(
        "POST",
        "/api/v1/environments",
        unique.map(lambda n: {"key": f"env-{n}", "name": "Env \u202eX", "protected": False}),
    ),
    Endpoint(
        "PATCH",
        "/api/v1/environments/{key}",
        st.just({"name": "Staging", "protected": False}),
        {"key": names("staging", "development")},
    ),
    Endpoint("PUT", "/api/v1/state", st.just(document())),
    Endpoint(
        "POST",
        "/api/v1/tokens",
        st.sampled_from(
            [
                {"kind": "admin", "name": "ci", "role": "viewer"},
                {"kind": "sdk", "name": "app", "environment": "staging"},
            ]
        ),
    ),
    Endpoint("DELETE", "/api/v1/tokens/{token_id}", None, {"token_id": NOT_ROW_IDS}),
    Endpoint(
        "POST",
        "/api/v1/users",
        unique.map(
            lambda n: {
                "username": f"user-{n}",
                "password": "correct-horse-battery",
                "role": "viewer",
            }
        ),
    ),
    Endpoint(
        "PATCH",
        "/api/v1/users/{username}",
        st.just({"role": "editor", "disabled": False}),
        {"username": names("ana")},
    ),
    Endpoint("DELETE", "/api/v1/users/{username}", None, {"username": names()}),
    Endpoint(
        "POST",
        "/api/v1/flags/{key}/environments/{environment}/ramp/{action}",
        None,
        {
            "key": names(*FLAGS),
            "environment": names(*ENVIRONMENTS),
            "action": names("start", "advance", "pause", "resume", "rollback", "restart"),
        },
    ),
    Endpoint(
        "POST",
        "/api/v1/guards/alerts/{name}",
        st.just(
            {
                "status": "firing",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "HighErrors"},
                        "annotations": {"summary": "errors are up"},
                    }
                ],
            }
        ),
        {"name": names("checkout-errors")},
    ),
    Endpoint(
        "POST",
        "/api/v1/environments/{environment}/emergency-stop",
        st.just({"reason": "incident drill"}),
        {"environment": names("staging")},
    ),
    Endpoint(
        "POST",
        "/api/v1/webhooks",
        st.just({"url": "http://127.0.0.1:9/hook", "events": ["ramp.start"]}),
    ),
    Endpoint("DELETE", "/api/v1/webhooks/{webhook_id}", None, {"webhook_id": NOT_ROW_IDS}),
    Endpoint(
        "POST",
        "/api/v1/evaluate",
        st.just({"environment": "production", "context": context, "flag": "new-checkout"}),
    ),
    Endpoint(
        "POST",
        "/ofrep/v1/evaluate/flags/{key}",
        st.just({"context": context}),
        {"key": names(*FLAGS)},
        sdk=True,
    ),
    Endpoint("POST", "/ofrep/v1/evaluate/flags", st.just({"context": context}), sdk=True),
    Endpoint("POST", "/api/v1/sdk/metrics", st.just(metrics_report), sdk=True),
]


def bodies(endpoint: Endpoint) -> st.SearchStrategy[Any]:
    """Any JSON at all (a wrong type included), or the endpoint's own body with a few
    values replaced: such a body reaches validation, and storage when it passes."""
    if endpoint.body is None:
        return st.one_of(st.none(), hostile.values)
    template = endpoint.body
    return st.sampled_from(["retexted", "replaced", "any", "valid"]).flatmap(
        lambda how: {
            "valid": template,
            "retexted": template.flatmap(hostile.retexted),
            "replaced": template.flatmap(hostile.replaced),
            "any": hostile.values,
        }[how]
    )


# --- the property -----------------------------------------------------------------------


def not_text(raw: str) -> bool:
    """Whether a parameter as sent percent-decodes to NUL or to bytes that are not UTF-8."""
    decoded = unquote_to_bytes(raw)
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return b"\x00" in decoded


def path_offences(params: dict[str, str]) -> list[Offence]:
    """Path parameters that decode to no text a key may hold: NUL, or bytes that are not
    UTF-8 (which the server would otherwise read as U+FFFD)."""
    return [Offence(f"path.{name}") for name, raw in params.items() if not_text(raw)]


def named_paths(response: httpx.Response, *, ofrep: bool) -> list[str] | str:
    """The paths a 4xx names: the problems' paths, or OFREP's errorDetails text."""
    body = response.json()
    if ofrep:
        assert isinstance(body.get("errorCode"), str), body
        details: str = body["errorDetails"]
        return details
    error = body["error"]
    assert isinstance(error["code"], str), body
    assert isinstance(error["message"], str), body
    return [problem["path"] for problem in error.get("problems") or []]


def assert_answer(
    response: httpx.Response, sent: bytes, offending: list[Offence], *, ofrep: bool
) -> None:
    """2xx, or a 4xx in the error shape that names the offending paths; never a 5xx."""
    status = response.status_code
    said = f"{response.request.method} {response.request.url} -> {status} {response.text[:800]}"
    assert status < 500, said
    if status < 300:
        assert not offending, f"accepted a value past the limits at {offending}: {said}"
        return
    assert response.headers["content-type"].startswith("application/json"), said
    named = named_paths(response, ofrep=ofrep)
    if status == 413:
        assert len(sent) > MAX_BODY, said
        return
    if not offending:
        return
    if ofrep:
        assert status == 400, said
        assert isinstance(named, str)
        # errorDetails reads "<path> <why>; ...", the whole body being "the body"; a
        # nesting offence may be named at any container on the way down to it.
        if named.startswith("the body "):
            assert any(o.named_by("") for o in offending), said
        else:
            first = named.split(" ", 1)[0]
            assert any(
                named.startswith(f"{o.path} ") or (o.nesting and o.named_by(first))
                for o in offending
            ), said
        return
    assert status == 422, said
    assert named, said
    for path in named:
        assert any(o.named_by(path) for o in offending), f"{path!r} is not offending: {said}"


REASONS = st.one_of(
    st.none(),
    st.sampled_from(["\u202eevil\u202c".encode(), "שלום".encode(), b"\xff\xfe", b"r" * 20_000]),
)
"""`X-Graylane-Reason`, recorded in the audit log: right-to-left text sent as UTF-8, bytes
that are not UTF-8, a reason longer than any form would take."""


def send(
    http: httpx.Client,
    endpoint: Endpoint,
    params: dict[str, str],
    body: Any,
    reason: bytes | None = None,
) -> tuple[httpx.Response, bytes]:
    url = endpoint.path.format(**params)
    headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
    if reason is not None:
        headers["X-Graylane-Reason"] = reason
    if endpoint.version_of is not None and not path_offences(params):
        current = http.get(endpoint.version_of.format(**params))
        if current.status_code == 200 and "etag" in current.headers:
            headers["If-Match"] = current.headers["etag"]
    raw = b"" if body is None else hostile.encode(body)
    return http.request(endpoint.method, url, content=raw, headers=headers), raw


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_every_write_endpoint_answers_hostile_json_with_2xx_or_a_4xx_naming_its_path(
    server: Server, sdk_token: str, endpoint: Endpoint
) -> None:
    token = sdk_token if endpoint.sdk else ADMIN_TOKEN
    params = st.fixed_dictionaries(endpoint.params)

    with server.client(token) as http:

        @HOSTILE
        @given(params=params, body=bodies(endpoint), reason=REASONS)
        def answers(params: dict[str, str], body: Any, reason: bytes | None) -> None:
            response, raw = send(http, endpoint, params, body, reason)
            # Parameters are checked before the body is read: then only they are named.
            offending = path_offences(params) or ([] if body is None else hostile.offences(body))
            assert_answer(response, raw, offending, ofrep=endpoint.ofrep)
            assert server.process.process is not None
            assert server.process.process.poll() is None, server.process.log()

        answers()
    server.assert_up()


RAW_BODIES = [
    pytest.param(
        b"[" * 100_000 + b"]" * 100_000, [Offence("", nesting=True)], id="arrays-100000-deep"
    ),
    pytest.param(
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        [Offence("", nesting=True)],
        id="objects-100000-deep",
    ),
    pytest.param(b"[" * 100_000, [], id="100000-unclosed-arrays"),
    pytest.param(
        b'{"a": {"n": NaN, "m": -Infinity}}', [Offence("a.n"), Offence("a.m")], id="nan-infinity"
    ),
    pytest.param(b'{"a": ' + b"9" * 5000 + b"}", [Offence("a")], id="5000-digits"),
    pytest.param(b'{"a": ["\xed\xa0\x80"]}', [Offence("a[0]")], id="surrogate-as-utf8"),
    pytest.param(b'{"a": "\\u0000"}', [Offence("a")], id="nul"),
    pytest.param(b'{"a": "\xff"}', [Offence("a")], id="not-utf8"),
    pytest.param(b'{"a": 1, \xff: 2}', [Offence("")], id="not-utf8-outside-a-string"),
]
"""Bodies as sent, and where each offends (nothing named for a body that is not JSON;
the body itself for bytes that are not UTF-8 where no string holds them)."""
FORM = "application/x-www-form-urlencoded"
"""What `curl -d` declares, whatever it sends."""


@pytest.mark.parametrize("content_type", ["application/json", FORM])
@pytest.mark.parametrize(("raw", "offending"), RAW_BODIES)
def test_raw_bodies_past_every_limit_are_refused_by_every_write_endpoint(
    server: Server, sdk_token: str, raw: bytes, offending: list[Offence], content_type: str
) -> None:
    for endpoint in ENDPOINTS:
        if endpoint.method == "DELETE":
            continue  # DELETE reads no body: its answer is about the path alone
        token = sdk_token if endpoint.sdk else ADMIN_TOKEN
        params = {name: "0" if name.endswith("_id") else "h0" for name in endpoint.params}
        with server.client(token) as http:
            response = http.request(
                endpoint.method,
                endpoint.path.format(**params),
                content=raw,
                headers={"Content-Type": content_type},
            )
        assert 400 <= response.status_code < 500, f"{endpoint.id}: {response.text[:500]}"
        assert_answer(response, raw, offending, ofrep=endpoint.ofrep)
    server.assert_up()


# --- parameters, headers and content types ----------------------------------------------

NOT_TEXT_PARAMETERS = [
    pytest.param("GET", "/api/v1/flags/a%00b", "path.key", id="nul-in-path"),
    pytest.param("GET", "/api/v1/flags/%ED%A0%80", "path.key", id="surrogate-bytes-in-path"),
    pytest.param("DELETE", "/api/v1/segments/%FF", "path.key", id="lone-byte-in-path"),
    pytest.param(
        "PUT",
        "/api/v1/flags/new-checkout/environments/%00/enabled",
        "path.environment",
        id="nul-in-second-path-parameter",
    ),
    pytest.param("GET", "/api/v1/nowhere/%00", "path", id="nul-in-unknown-path"),
    pytest.param("GET", "/api/v1/audit?since=%00", "query.since", id="nul-in-query"),
    pytest.param("GET", "/api/v1/audit?actor=a%00b", "query.actor", id="nul-in-text-query"),
    pytest.param("GET", "/api/v1/flags?q=%FF", "query.q", id="lone-byte-in-query"),
    pytest.param("GET", "/api/v1/flags?q=%ED%A0%80", "query.q", id="surrogate-bytes-in-query"),
]


@pytest.mark.parametrize(("method", "url", "named"), NOT_TEXT_PARAMETERS)
def test_parameters_that_decode_to_no_text_are_refused_naming_the_parameter(
    server: Server, method: str, url: str, named: str
) -> None:
    with server.client() as admin:
        response = admin.request(method, url)
    assert response.status_code == 422, response.text
    assert [p["path"] for p in response.json()["error"]["problems"]] == [named], response.text


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("/ofrep/v1/evaluate/flags/a%00b", "path.key"),
        ("/ofrep/v1/evaluate/flags/%FF", "path.key"),
        ("/ofrep/v1/evaluate/flags?x=%00", "query.x"),
    ],
)
def test_ofrep_refuses_parameters_that_decode_to_no_text_in_its_own_shape(
    server: Server, sdk_token: str, url: str, named: str
) -> None:
    with server.client(sdk_token) as sdk:
        response = sdk.post(url, json={"context": context})
    assert response.status_code == 400, response.text
    assert response.json()["errorCode"] == "GENERAL"
    assert response.json()["errorDetails"].startswith(f"{named} "), response.text


def test_text_that_only_looks_odd_in_parameters_is_read_as_sent(server: Server) -> None:
    # U+FFFD sent as UTF-8, and right-to-left text: valid text, looked up as it is.
    with server.client() as admin:
        for key in ("%EF%BF%BD", quote("\u202eevil")):
            missing = admin.get(f"/api/v1/flags/{key}")
            assert missing.status_code == 404, missing.text
        assert admin.get("/api/v1/flags", params={"q": "\u202eevil"}).status_code == 200


def test_json_sent_as_a_form_is_read_as_json_by_ofrep_and_the_admin_api(
    server: Server, sdk_token: str
) -> None:
    # What `curl -d '{...}'` sends: JSON declared as a form.
    form = {"Content-Type": FORM}
    body = b'{"context": {"targetingKey": "user-1"}}'
    with server.client(sdk_token) as sdk:
        single = sdk.post("/ofrep/v1/evaluate/flags/new-checkout", content=body, headers=form)
        assert single.status_code == 200, single.text
        assert single.json()["key"] == "new-checkout"
        bulk = sdk.post("/ofrep/v1/evaluate/flags", content=body, headers=form)
        assert bulk.status_code == 200, bulk.text
    with server.client() as admin:
        url = "/api/v1/flags/button-color/environments/staging/enabled"
        switched = admin.put(url, content=b'{"enabled": false}', headers=form)
        assert switched.status_code == 200, switched.text
        assert switched.json()["enabled"] is False
        refused = admin.put(url, content=b'{"enabled": "\\u0000"}', headers=form)
        assert refused.status_code == 422, refused.text
        assert [p["path"] for p in refused.json()["error"]["problems"]] == ["enabled"]
        assert admin.put(url, json={"enabled": True}).status_code == 200


def test_a_reason_in_utf8_is_audited_as_sent(server: Server) -> None:
    reason = "déploiement 🚀 progressif"
    with server.client() as admin:
        created = admin.put(
            "/api/v1/flags/reason-round-trip",
            json=boolean_flag(0),
            headers={"X-Graylane-Reason": reason.encode()},
        )
        assert created.status_code == 201, created.text
        latest = admin.get("/api/v1/audit", params={"limit": 1})
    assert latest.status_code == 200, latest.text
    assert latest.json()["entries"][0]["reason"] == reason


@pytest.mark.parametrize(
    ("reason", "why"),
    [
        (b"\xff\xfe", "is not valid UTF-8"),
        (b"\xed\xa0\x80", "is not valid UTF-8"),
        (("é" * 2001).encode(), "is longer than 2000 characters"),
    ],
    ids=["lone-bytes", "surrogate-bytes", "too-long"],
)
def test_a_reason_that_is_no_storable_text_is_refused_naming_the_header(
    server: Server, reason: bytes, why: str
) -> None:
    with server.client() as admin:
        before = admin.get("/api/v1/audit", params={"limit": 1}).json()["entries"]
        refused = admin.put(
            "/api/v1/flags/reason-refused",
            json=boolean_flag(0),
            headers={"X-Graylane-Reason": reason},
        )
        after = admin.get("/api/v1/audit", params={"limit": 1}).json()["entries"]
    assert refused.status_code == 422, refused.text
    problems = refused.json()["error"]["problems"]
    assert problems == [{"path": "header.X-Graylane-Reason", "message": why}]
    assert after == before


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"context": 5}, "context must be an object, not a number"),
        ({"context": []}, "context must be an object, not an array"),
        ({"context": None}, "context must be an object, not null"),
        ([{"context": {}}], 'the body must be {"context": {...}}, not an array'),
    ],
    ids=["number", "array", "null", "body-array"],
)
def test_ofrep_refuses_a_context_that_is_not_an_object_as_invalid_context(
    server: Server, sdk_token: str, body: Any, details: str
) -> None:
    with server.client(sdk_token) as sdk:
        single = sdk.post("/ofrep/v1/evaluate/flags/new-checkout", json=body)
        bulk = sdk.post("/ofrep/v1/evaluate/flags", json=body)
    assert single.status_code == 400, single.text
    expected = {"errorCode": "INVALID_CONTEXT", "errorDetails": details}
    assert single.json() == {"key": "new-checkout", **expected}
    assert bulk.status_code == 400, bulk.text
    assert bulk.json() == expected


# --- a catastrophic pattern -------------------------------------------------------------


def test_a_catastrophic_matches_pattern_on_a_100000_character_attribute_answers(
    server: Server, sdk_token: str
) -> None:
    flag = boolean_flag(0)
    flag["environments"]["production"]["rules"] = [
        {
            "name": "backtracking",
            "when": [{"attribute": "name", "op": "matches", "values": ["^(a+)+$"]}],
            "serve": {"variant": "on"},
        }
    ]
    with server.client() as admin:
        created = admin.put("/api/v1/flags/catastrophic", json=flag)
        assert created.status_code in (200, 201), created.text
    with server.client(sdk_token) as sdk:
        for name in ("a" * 100_000 + "!", "a" * (hostile.MAX_STRING - 1) + "!"):
            body = {"context": {"targetingKey": "user-1", "name": name}}
            for url in ("/ofrep/v1/evaluate/flags/catastrophic", "/ofrep/v1/evaluate/flags"):
                answer = sdk.post(url, json=body)
                assert answer.status_code in (200, 400), answer.text[:500]
            with server.client() as admin:
                evaluated = admin.post(
                    "/api/v1/evaluate",
                    json={"environment": "production", **body, "flag": "catastrophic"},
                )
                assert evaluated.status_code in (200, 422), evaluated.text[:500]
    server.assert_up()


# --- what was accepted stays usable -----------------------------------------------------


def test_everything_accepted_is_served_exported_audited_and_survives_a_restart(
    server: Server,
) -> None:
    with server.client() as admin:
        listed = admin.get("/api/v1/environments")
        assert listed.status_code == 200, listed.text
        environments = [e["key"] for e in listed.json()["environments"]]
        tokens = {key: mint_sdk_token(admin, key) for key in environments}
        served = {key: served_config(server, token) for key, token in tokens.items()}

        exported = admin.get("/api/v1/state")
        assert exported.status_code == 200, exported.text[:500]
        parse_document(exported.json())
        again = admin.put("/api/v1/state", params={"dry_run": "true"}, json=exported.json())
        assert again.status_code == 200, again.text[:500]

        assert_audit_pages(admin)

    server.process.stop()
    server.start()
    for key, token in tokens.items():
        assert served_config(server, token) == served[key]
    with server.client() as admin:
        assert admin.get("/api/v1/state").json() == exported.json()
        assert_audit_pages(admin)
    server.assert_up()


def served_config(server: Server, token: str) -> dict[str, Any]:
    """The config an SDK is served, checked to load in the SDK's `Client`."""
    with server.client(token) as sdk:
        config = sdk.get("/api/v1/sdk/config")
    assert config.status_code == 200, config.text[:500]
    client = Client(server.url, token, stream=False, flush_interval=3600)
    try:
        client.wait_ready(30)
        assert client.last_error is None, client.last_error
        assert set(client.all_flags({"targetingKey": "user-1"})) == set(config.json()["flags"])
    finally:
        client.close()
    served: dict[str, Any] = config.json()
    return served


def assert_audit_pages(admin: httpx.Client) -> None:
    before: int | None = None
    pages = 0
    while True:
        params: dict[str, int] = {"limit": 100}
        if before is not None:
            params["before"] = before
        page = admin.get("/api/v1/audit", params=params)
        assert page.status_code == 200, page.text[:500]
        pages += 1
        before = page.json()["next_before"]
        if before is None:
            break
    assert pages >= 1


# --- the SDK in memory ------------------------------------------------------------------


def python_value(value: Any) -> Any:
    """A drawn value as the app would hand it to the SDK: NaN as a float, 5,000 digits as
    an int, nesting as real nested objects."""
    if isinstance(value, Raw):
        text = value.text
        if set(text.lstrip("-")) == {"9"} and len(text) > 100:
            magnitude = 10 ** len(text.lstrip("-")) - 1
            return -magnitude if text.startswith("-") else magnitude
        return float(text) if not text.lstrip("-").isdigit() else int(text)
    if isinstance(value, Deep):
        nested: Any = 1
        for _ in range(value.levels):
            nested = [nested] if value.arrays else {"a": nested}
        return nested
    if isinstance(value, dict):
        return {key: python_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [python_value(item) for item in value]
    return value


contexts = st.one_of(
    st.none(),
    hostile.values.map(python_value),
    st.builds(lambda c: {**context, **c}, st.dictionaries(hostile.keys, hostile.values)).map(
        python_value
    ),
)
flag_keys = st.one_of(st.sampled_from([*FLAGS, "catastrophic", "missing"]), hostile.keys)
measurements = st.one_of(
    st.none(), st.floats(), st.integers(), hostile.hostile_numbers.map(python_value)
)


@pytest.fixture(scope="module")
def offline_client() -> Client:
    served = document()
    served["flags"]["catastrophic"] = boolean_flag(50)
    served["flags"]["catastrophic"]["environments"]["production"]["rules"] = [
        {
            "name": "backtracking",
            "when": [{"attribute": "email", "op": "matches", "values": ["^(a+)+$"]}],
            "serve": {"variant": "on"},
        }
    ]
    served["flags"]["catastrophic"]["environments"]["production"]["ramp"] = {"stages": [1, 50, 100]}
    return Client.from_document(served, "production")


@settings(HOSTILE, max_examples=150)
@given(
    key=flag_keys,
    ctx=contexts,
    event=st.one_of(hostile.keys, st.just("request")),
    value=measurements,
    default=st.one_of(st.none(), st.booleans(), st.text(max_size=3)),
)
def test_the_sdk_never_raises_on_hostile_contexts(
    offline_client: Client, key: str, ctx: Any, event: str, value: Any, default: Any
) -> None:
    client = offline_client
    assert isinstance(client.is_enabled(key, ctx), bool)
    client.variant(key, ctx)
    client.value(key, ctx, default)
    assert isinstance(client.resolve(key, ctx), Evaluation)
    assert isinstance(client.evaluate(key, ctx), Evaluation)
    assert isinstance(client.all_flags(ctx), dict)
    client.track(event, ctx, value)
    with client.observe(ctx):
        pass
    with pytest.raises(LookupError), client.observe(ctx):
        raise LookupError("the app's own error goes on")


def test_a_long_attribute_against_a_catastrophic_pattern_is_evaluated_in_memory(
    offline_client: Client,
) -> None:
    for email in ("a" * 100_000 + "!", "a" * (hostile.MAX_STRING - 1) + "!", "a" * 1000):
        result = offline_client.evaluate("catastrophic", {"targetingKey": "u", "email": email})
        assert isinstance(result, Evaluation)
        assert not (
            result.value is True and result.reason.value == "TARGETING_MATCH" and "!" in email
        )
