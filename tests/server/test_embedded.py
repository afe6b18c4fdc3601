"""The embedded default: `graylane-server serve` with no database or Redis configured runs
on a SQLite file and an in-process bus, and is a whole working server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from tests.server.documents import boolean_flag, document
from tests.support.servers import ServerProcess, wait_until

ADMIN_TOKEN = "gla_embedded-bootstrap-admin-token"
SQLITE_HEADER = b"SQLite format 3\x00"


class EmbeddedServer(ServerProcess):
    """`graylane-server serve` run in `cwd`, with none of the test's GRAYLANE_* settings:
    only those given in `env`."""

    def __init__(self, cwd: Path, env: Mapping[str, str], log_path: Path) -> None:
        super().__init__(env, log_path)
        self.cwd = cwd
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("GRAYLANE_")}
        self._env.update(env)
        assert "GRAYLANE_DATABASE_URL" not in self._env
        assert "GRAYLANE_REDIS_URL" not in self._env

    def start(self, timeout: float = 30.0) -> EmbeddedServer:
        with self._log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "graylane_server", "serve", "--port", str(self.port)],
                cwd=self.cwd,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self.ready, timeout=timeout, what=f"{self.url}/readyz")
        return self


StartServer = Callable[..., EmbeddedServer]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "workdir"
    path.mkdir()
    return path


@pytest.fixture
def start_server(workdir: Path, tmp_path: Path) -> Iterator[StartServer]:
    """Start servers in `workdir`, each stopped at the end of the test.

    The periodic version check is pushed out of reach so that every change a test sees
    in a served config arrived through the in-process bus."""
    started: list[EmbeddedServer] = []

    def start(**env: str) -> EmbeddedServer:
        settings = {
            "GRAYLANE_BOOTSTRAP_ADMIN_TOKEN": ADMIN_TOKEN,
            "GRAYLANE_RECONCILE_INTERVAL": "3600",
        }
        log_path = tmp_path / f"server-{len(started)}.log"
        server = EmbeddedServer(workdir, settings | env, log_path)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def embedded(start_server: StartServer) -> EmbeddedServer:
    return start_server()


def admin_client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    )


def sdk_client(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": token}, timeout=10)


def mint_sdk_token(admin: httpx.Client, environment: str = "production") -> str:
    response = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": environment})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def served_flags(sdk: httpx.Client) -> dict[str, object]:
    response = sdk.get("/api/v1/sdk/config")
    assert response.status_code == 200, response.text
    flags: dict[str, object] = response.json()["flags"]
    return flags


def served_version(sdk: httpx.Client) -> int:
    return int(sdk.get("/api/v1/sdk/config").headers["x-graylane-version"])


def version_of(admin: httpx.Client, environment: str = "production") -> int:
    version: int = admin.get(f"/api/v1/environments/{environment}").json()["config_version"]
    return version


def wait_until_served(admin: httpx.Client, sdk: httpx.Client) -> None:
    """A change is served within moments of its write (milliseconds, measured), and long
    before the periodic check, which the servers here never reach."""
    wanted = version_of(admin)
    wait_until(
        lambda: served_version(sdk) == wanted,
        timeout=10,
        what=f"config version {wanted} to be served",
    )


def ofrep(sdk: httpx.Client, key: str, context: dict[str, object]) -> httpx.Response:
    return sdk.post(f"/ofrep/v1/evaluate/flags/{key}", json={"context": context})


def test_with_nothing_configured_it_keeps_a_sqlite_file_under_dot_graylane(
    embedded: EmbeddedServer, workdir: Path
) -> None:
    database = workdir / ".graylane" / "graylane.db"
    assert database.is_file()
    assert database.read_bytes()[: len(SQLITE_HEADER)] == SQLITE_HEADER
    ready = httpx.get(f"{embedded.url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["configs"] == "ok"
    started = [
        json.loads(line)
        for line in embedded.log().splitlines()
        if line.startswith("{") and '"server.started"' in line
    ]
    assert [(e["database"], e["bus"]) for e in started] == [("sqlite", "in-process")]


def test_the_data_dir_setting_decides_where_the_sqlite_file_lives(
    start_server: StartServer, workdir: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(GRAYLANE_DATA_DIR=str(data_dir))
    assert (data_dir / "graylane.db").is_file()
    assert not (workdir / ".graylane").exists()
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200


def test_the_bootstrap_token_is_an_admin_token(embedded: EmbeddedServer) -> None:
    with admin_client(embedded) as admin:
        tokens = admin.get("/api/v1/tokens")
        assert tokens.status_code == 200
        assert [(t["name"], t["kind"], t["role"]) for t in tokens.json()["tokens"]] == [
            ("bootstrap", "admin", "admin")
        ]
        listed = admin.get("/api/v1/environments").json()["environments"]
        assert [e["key"] for e in listed] == ["development", "staging", "production"]
    wrong = httpx.get(
        f"{embedded.url}/api/v1/tokens", headers={"Authorization": "Bearer gla_wrong"}, timeout=10
    )
    assert wrong.status_code == 401


def test_an_applied_document_is_served_to_sdks_and_evaluated_over_ofrep(
    embedded: EmbeddedServer,
) -> None:
    with admin_client(embedded) as admin:
        applied = admin.put("/api/v1/state", json=document())
        assert applied.status_code == 200, applied.text
        assert sorted(applied.json()["flags"]["created"]) == sorted(document()["flags"])
        with sdk_client(embedded, mint_sdk_token(admin)) as sdk:
            wait_until_served(admin, sdk)

            config = sdk.get("/api/v1/sdk/config")
            assert config.status_code == 200
            assert set(config.json()["flags"]) == set(document()["flags"])
            unchanged = sdk.get(
                "/api/v1/sdk/config", headers={"If-None-Match": config.headers["etag"]}
            )
            assert unchanged.status_code == 304
            assert unchanged.content == b""

            color = ofrep(sdk, "button-color", {"targetingKey": "user-5"})
            assert color.status_code == 200
            assert color.json() == {
                "key": "button-color",
                "value": "#2da44e",
                "variant": "green",
                "reason": "STATIC",
                "metadata": {},
            }
            beta = ofrep(sdk, "page-size", {"targetingKey": "user-1"}).json()
            assert (beta["value"], beta["reason"]) == (50, "TARGETING_MATCH")
            missing = ofrep(sdk, "no-such-flag", {"targetingKey": "user-1"})
            assert missing.status_code == 404
            assert missing.json()["errorCode"] == "FLAG_NOT_FOUND"

            bulk = sdk.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "u"}})
            assert bulk.status_code == 200
            assert {f["key"] for f in bulk.json()["flags"]} == set(document()["flags"])
            again = sdk.post(
                "/ofrep/v1/evaluate/flags",
                json={"context": {"targetingKey": "u"}},
                headers={"If-None-Match": bulk.headers["etag"]},
            )
            assert again.status_code == 304


def test_a_flag_change_reaches_the_served_config_through_the_in_process_bus(
    embedded: EmbeddedServer,
) -> None:
    with admin_client(embedded) as admin:
        assert admin.put("/api/v1/flags/new-checkout", json=boolean_flag(100)).status_code == 201
        with sdk_client(embedded, mint_sdk_token(admin)) as sdk:
            wait_until_served(admin, sdk)
            before = sdk.get("/api/v1/sdk/config")
            assert ofrep(sdk, "new-checkout", {"targetingKey": "u"}).json()["value"] is True

            killed = admin.put(
                "/api/v1/flags/new-checkout/environments/production/enabled",
                json={"enabled": False},
            )
            assert killed.status_code == 200

            wait_until_served(admin, sdk)
            after = sdk.get("/api/v1/sdk/config", headers={"If-None-Match": before.headers["etag"]})
            assert after.status_code == 200
            assert after.headers["etag"] != before.headers["etag"]
            assert (
                after.json()["flags"]["new-checkout"]["environments"]["production"]["enabled"]
                is False
            )
            evaluated = ofrep(sdk, "new-checkout", {"targetingKey": "u"}).json()
            assert (evaluated["value"], evaluated["reason"]) == (False, "DISABLED")


def test_flags_and_tokens_survive_a_restart_on_the_same_data_dir(
    start_server: StartServer,
) -> None:
    first = start_server()
    with admin_client(first) as admin:
        assert admin.put("/api/v1/state", json=document()).status_code == 200
        exported = admin.get("/api/v1/state").json()
        sdk_token = mint_sdk_token(admin)
        with sdk_client(first, sdk_token) as sdk:
            wait_until_served(admin, sdk)
            config = sdk.get("/api/v1/sdk/config")
    first.stop()

    second = start_server()
    with admin_client(second) as admin:
        assert admin.get("/api/v1/state").json() == exported
        assert admin.get("/api/v1/flags/new-checkout").headers["etag"] == '"1"'
        # the bootstrap token was not minted a second time
        names = [t["name"] for t in admin.get("/api/v1/tokens").json()["tokens"]]
        assert sorted(names) == ["bootstrap", "sdk-production"]
    with sdk_client(second, sdk_token) as sdk:
        # same version, same bytes: SDKs holding the old ETag need not download again
        assert (
            sdk.get(
                "/api/v1/sdk/config", headers={"If-None-Match": config.headers["etag"]}
            ).status_code
            == 304
        )
        assert ofrep(sdk, "button-color", {"targetingKey": "u"}).json()["value"] == "#2da44e"
