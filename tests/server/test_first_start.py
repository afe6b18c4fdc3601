"""A newcomer's first steps with `graylane-server`, run as they run them: a first start that
says how to get an admin, `user create` prompting for the password, and `serve --workers`
saying where it listens."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ServerProcess, cli_env, free_port, run_cli, wait_until


def logged_events(log: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


@pytest.fixture
def first_start(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server started on an empty embedded database with no bootstrap token."""
    env = {"GRAYLANE_DATA_DIR": str(tmp_path / "data"), "GRAYLANE_LOG_JSON": "true"}
    process = ServerProcess(env, tmp_path / "server.log")
    process.start(timeout=60)
    yield process
    process.stop()


def test_a_first_start_with_no_admin_says_how_to_get_one(first_start: ServerProcess) -> None:
    hints = [e for e in logged_events(first_start.log()) if e["event"] == "server.no_admin"]
    assert len(hints) == 1
    hint = str(hints[0]["hint"])
    assert "GRAYLANE_BOOTSTRAP_ADMIN_TOKEN" in hint
    assert "graylane-server token create --role admin" in hint
    assert hints[0]["level"] == "warning"


def test_a_start_with_a_bootstrap_token_gives_no_such_hint(tmp_path: Path) -> None:
    env = {
        "GRAYLANE_DATA_DIR": str(tmp_path / "data"),
        "GRAYLANE_LOG_JSON": "true",
        "GRAYLANE_BOOTSTRAP_ADMIN_TOKEN": "gla_first-start-bootstrap",
    }
    process = ServerProcess(env, tmp_path / "server.log")
    try:
        process.start(timeout=60)
        events = {e["event"] for e in logged_events(process.log())}
    finally:
        process.stop()
    assert "server.started" in events
    assert "server.no_admin" not in events


def test_user_create_does_not_mark_the_prompted_password_required(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "user", "create", "--help")
    assert result.returncode == 0, result.stderr
    password = next(line for line in result.stdout.splitlines() if "--password" in line)
    assert "required" not in password
    assert "prompted" in password


def test_user_create_prompts_for_the_password_when_it_is_not_given(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path,
        "user",
        "create",
        "--username",
        "ana",
        "--role",
        "admin",
        stdin="a-long-enough-password\na-long-enough-password\n",
    )
    assert result.returncode == 0, result.stderr
    assert "created admin ana" in result.stdout
    assert "a-long-enough-password" not in result.stdout + result.stderr


def test_serve_with_workers_says_where_it_listens(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = cli_env({"GRAYLANE_DATA_DIR": str(tmp_path / "data")})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "graylane_server", "serve", "--workers=2", f"--port={port}"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def ready() -> bool:
            assert process.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=90, what="the server with two workers")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    output = log_path.read_text()
    assert re.search(rf"listening on http://127\.0\.0\.1:{port} \(2 workers\)", output), output
