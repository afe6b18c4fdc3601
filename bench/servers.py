"""`graylane-server serve` subprocesses, the CPU they use, and throwaway PostgreSQL
databases for the benchmarks that measure a running server (propagation, emergency stop,
metrics ingest, sign-in flood)."""

from __future__ import annotations

import contextlib
import math
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def raise_file_limit(wanted: int) -> int:
    """Raise the soft open-files limit (inherited by the servers and clients this process
    starts) towards `wanted`, as far as the hard limit allows; returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def server_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any GRAYLANE_ setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAYLANE_")}
    # Room for a --flags document in one PUT /api/v1/state.
    return {**env, "GRAYLANE_LOG_LEVEL": "warning", "GRAYLANE_MAX_BODY_BYTES": "67108864", **extra}


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of a process (this one by default; another from /proc, NaN once
    it is gone)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """`graylane-server serve` in a subprocess, on a free port of 127.0.0.1."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Server:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "graylane_server", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"the server did not become ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def streams(self) -> int:
        """Connected SDK streams, from the server's Prometheus gauge."""
        body = httpx.get(f"{self.url}/metrics", timeout=5).text
        found = re.search(r"^graylane_sse_streams (\S+)$", body, re.MULTILINE)
        return int(float(found.group(1))) if found else -1


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this run, dropped afterwards."""
    admin = make_url(admin_url)
    if admin.drivername in ("postgresql", "postgres"):
        admin = admin.set(drivername="postgresql+psycopg")
    name = f"graylane_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "graylane_server", "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def postgres_env(
    admin_url: str, token: str, data_dir: Path, redis_url: str | None = None
) -> Iterator[dict[str, str]]:
    """A server's environment on a new, migrated PostgreSQL database (dropped afterwards),
    with `token` as its bootstrap admin token, and on Redis when `redis_url` is given."""
    with fresh_database(admin_url) as database_url:
        settings = {
            "GRAYLANE_DATABASE_URL": database_url,
            "GRAYLANE_MIGRATE_ON_START": "false",
            "GRAYLANE_BOOTSTRAP_ADMIN_TOKEN": token,
            "GRAYLANE_DATA_DIR": str(data_dir),
        }
        if redis_url is not None:
            settings["GRAYLANE_REDIS_URL"] = redis_url
        env = server_env(settings)
        migrate(env)
        yield env


@contextlib.contextmanager
def serving(env: dict[str, str], log_path: Path) -> Iterator[Server]:
    """A started server, stopped afterwards; the tail of its log is printed if the run
    fails."""
    server = Server(env, log_path).start()
    try:
        yield server
    except Exception:
        print(f"--- server log (tail) ---\n{server.log()}")
        raise
    finally:
        server.stop()


@contextlib.contextmanager
def postgres_server(
    admin_url: str, token: str, redis_url: str, prefix: str = "graylane-bench-"
) -> Iterator[Server]:
    """One server on Redis and a new, migrated PostgreSQL database (`postgres_env`), its
    files in a temporary directory; all of it gone afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp_name:
        tmp = Path(tmp_name)
        with (
            postgres_env(admin_url, token, tmp / "data", redis_url) as env,
            serving(env, tmp / "server.log") as server,
        ):
            yield server


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
