"""`graylane-server token create`, run as an operator runs it: a real process against the
database a live server uses, whose tokens then work over HTTP."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.server.documents import boolean_flag
from tests.support.servers import LiveServer, cli_env, run_cli

ClientFor = Callable[[str], httpx.Client]


@pytest.fixture
def graylane_server(
    database_url: str, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `graylane-server ARGS` configured for the test database, and nothing else."""
    env = cli_env({"GRAYLANE_DATABASE_URL": database_url})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(tmp_path, *args, env=env)

    return run


def printed_token(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"expected the token alone on stdout, got {result.stdout!r}"
    return lines[0].strip()


def token_names(admin: httpx.Client) -> list[str]:
    response = admin.get("/api/v1/tokens", params={"include_revoked": "true"})
    assert response.status_code == 200, response.text
    return [t["name"] for t in response.json()["tokens"]]


def test_an_editor_token_made_on_the_command_line_works_against_the_server(
    server: LiveServer,
    admin: httpx.Client,
    client_for: ClientFor,
    graylane_server: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    token = printed_token(graylane_server("token", "create", "--role", "editor", "--name", "ci"))

    assert token.startswith("gla_")
    editor = client_for(token)
    assert editor.put("/api/v1/flags/f", json=boolean_flag(10)).status_code == 201
    assert editor.get("/api/v1/tokens").status_code == 403
    listed = {t["name"]: t for t in admin.get("/api/v1/tokens").json()["tokens"]}
    assert listed["ci"]["kind"] == "admin"
    assert listed["ci"]["role"] == "editor"
    assert token not in admin.get("/api/v1/tokens").text


def test_an_sdk_token_made_on_the_command_line_reads_its_environment(
    server: LiveServer,
    admin: httpx.Client,
    client_for: ClientFor,
    graylane_server: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    assert admin.put("/api/v1/flags/f", json=boolean_flag(100)).status_code == 201

    token = printed_token(graylane_server("token", "create", "--sdk", "--env", "production"))

    assert token.startswith("gls_")
    sdk = client_for(token)
    config = sdk.get("/api/v1/sdk/config")
    assert config.status_code == 200
    assert config.headers["x-graylane-environment"] == "production"
    evaluated = sdk.post("/ofrep/v1/evaluate/flags/f", json={"context": {"targetingKey": "u"}})
    assert evaluated.status_code == 200
    assert evaluated.json()["value"] is True
    assert sdk.get("/api/v1/flags").status_code == 403


def test_each_run_prints_a_new_token(
    server: LiveServer, graylane_server: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    first = printed_token(graylane_server("token", "create", "--role", "viewer"))
    second = printed_token(graylane_server("token", "create", "--role", "viewer"))
    assert first != second


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--sdk"], "--env"),
        (["--role", "editor", "--sdk", "--env", "production"], "--role"),
        (["--role", "editor", "--sdk"], "--role"),
        ([], "--role"),
        (["--role", "overlord"], "overlord"),
    ],
    ids=["sdk-without-env", "role-and-sdk", "role-and-sdk-without-env", "neither", "unknown-role"],
)
def test_a_contradictory_or_incomplete_command_fails_with_a_message_and_mints_nothing(
    server: LiveServer,
    admin: httpx.Client,
    graylane_server: Callable[..., subprocess.CompletedProcess[str]],
    args: list[str],
    mentions: str,
) -> None:
    result = graylane_server("token", "create", *args)

    assert result.returncode != 0
    assert mentions in result.stderr, result.stderr
    assert "gla_" not in result.stdout
    assert "gls_" not in result.stdout
    assert "Traceback" not in result.stderr
    assert token_names(admin) == ["bootstrap"]


def test_an_unknown_environment_fails_with_exit_1_and_a_message(
    server: LiveServer,
    admin: httpx.Client,
    graylane_server: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    result = graylane_server("token", "create", "--sdk", "--env", "nowhere")

    assert result.returncode == 1
    assert "nowhere" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == ""
    assert token_names(admin) == ["bootstrap"]


def test_an_admin_token_with_an_environment_is_refused_as_the_api_refuses_it(
    server: LiveServer,
    admin: httpx.Client,
    graylane_server: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    api = admin.post(
        "/api/v1/tokens", json={"kind": "admin", "role": "editor", "environment": "production"}
    )
    assert api.status_code == 422

    result = graylane_server("token", "create", "--role", "editor", "--env", "production")

    assert result.returncode != 0, f"minted {result.stdout.strip()!r}"
    assert "--env" in result.stderr
    assert token_names(admin) == ["bootstrap"]
