"""Graylane servers for tests, reached over real HTTP: in a thread of the test process,
or as separate processes (replicas, and servers a test kills)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import uvicorn

from graylane_server.app import create_app
from graylane_server.runtime import Runtime
from graylane_server.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition, timeout: float = 10.0, interval: float = 0.02, what: str = "") -> None:  # type: ignore[no-untyped-def]
    """Poll `condition` until it holds; fail with `what` when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


def server_env(
    database_url: str, redis_url: str, admin_token: str, **settings: object
) -> dict[str, str]:
    """GRAYLANE_* for `graylane-server serve` on the run's migrated database and Redis: it
    never migrates at start and mints `admin_token` on an empty database. Each keyword
    setting becomes GRAYLANE_<NAME> (`data_dir=...` is GRAYLANE_DATA_DIR)."""
    return {
        "GRAYLANE_DATABASE_URL": database_url,
        "GRAYLANE_REDIS_URL": redis_url,
        "GRAYLANE_MIGRATE_ON_START": "false",
        "GRAYLANE_BOOTSTRAP_ADMIN_TOKEN": admin_token,
        **{f"GRAYLANE_{name.upper()}": str(value) for name, value in settings.items()},
    }


def cli_env(settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment `graylane-server` runs in, as at a person's terminal: this process's
    without any GRAYLANE_ setting, plus `settings`, with wide, uncoloured output."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRAYLANE_")}
    return env | {"COLUMNS": "200", "NO_COLOR": "1", **(settings or {})}


def run_cli(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`graylane-server ARGS` in `cwd`, as a person runs it (`env`: `cli_env()` unless
    given); its output captured, its exit status for the test to judge."""
    return subprocess.run(
        [sys.executable, "-m", "graylane_server", *args],
        env=env if env is not None else cli_env(),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


class LiveServer:
    """A server in a thread of this process, on its own port."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def start(self) -> LiveServer:
        self._thread.start()
        wait_until(lambda: self._server.started, timeout=30, what="the server to start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=60)  # a loaded machine can take a while to drain


class ServerProcess:
    """`graylane-server serve` in its own process, configured through the environment."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **env}
        self._log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        log = self._log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "graylane_server", "serve", "--port", str(self.port)],
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.ready, timeout=timeout, what=f"{self.url}/readyz")
        return self

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited early; see {self._log_path}:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
