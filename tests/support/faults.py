"""Services a test may break on purpose: a private Redis, a private PostgreSQL cluster and
a lossy TCP proxy. The machine's shared PostgreSQL and Redis serve everyone's tests and
must never be stopped, so faults are injected only into these. Each cleans up after
itself in `close()`, which the fixtures call even when a test fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
import redis

from tests.support.servers import free_port, wait_until


def postgres_bin() -> Path:
    """Where initdb and pg_ctl live: GRAYLANE_TEST_POSTGRES_BIN, else the newest Debian
    PostgreSQL (`/usr/lib/postgresql/<major>/bin`), whichever version the machine has."""
    configured = os.environ.get("GRAYLANE_TEST_POSTGRES_BIN")
    if configured:
        return Path(configured)
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else -1,
    )
    return installed[-1] if installed else Path("/usr/lib/postgresql/15/bin")


def require_binary(path: str | Path, hint: str) -> str:
    """The binary's path; fails the test (never skips it) when it is missing."""
    found = shutil.which(str(path))
    if found is None:
        pytest.fail(f"{path} is not installed ({hint}); fault tests need it", pytrace=False)
    return found


class PrivateRedis:
    """`redis-server` on its own port, without persistence: stop it and start it again
    on the same port, as an operator's restart would."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_binary("redis-server", "apt-get install redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        log = (self._workdir / f"redis-{self.port}.log").open("ab")
        self._process = subprocess.Popen(
            [
                self.binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self._workdir)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, timeout=10, what=f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()  # abrupt, like a crash: no goodbye to connected clients
            process.wait(timeout=10)

    close = stop


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb into a temp dir) on its own port. Runs as
    the `postgres` user when this process is root, since PostgreSQL refuses root."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        require_binary(self.bin / "initdb", f"PostgreSQL server binaries in {self.bin}")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="graylane-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.sockets.mkdir()
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.root, self.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        self._running = False
        try:
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres")
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self._as_postgres, *command], check=False, capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(
            str(self.bin / "pg_ctl"),
            *("-D", str(self.data), "-o", options, "-l", str(self.root / "postgres.log")),
            *("-w", "-t", "30", "start"),
        )
        self._running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash as far as clients see: connections drop mid-flight."""
        if self._running:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
            self._running = False

    def close(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class LossyProxy:
    """A TCP proxy in a background thread that refuses a seeded share of connections (a
    reset as soon as they open) and cuts the ones it lets through after a seeded, short
    lifetime, so long-lived streams and kept-alive connections are lost too."""

    def __init__(
        self,
        target_port: int,
        *,
        seed: int,
        drop_rate: float = 0.5,
        lifetime: tuple[float, float] = (0.2, 1.5),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.target_port = target_port
        self.dropped = 0
        self.forwarded = 0
        self._rng = random.Random(seed)
        self._drop_rate = drop_rate
        self._lifetime = lifetime
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._server: asyncio.Server
        self._handlers: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._serve, name="lossy-proxy", daemon=True)

    def start(self) -> LossyProxy:
        self._thread.start()
        if not self._started.wait(10):
            raise AssertionError("the lossy proxy did not start")
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            self._thread.join(timeout=10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", self.port)
        )
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        # Cancelling a connection's handler cancels its pipes with it.
        tasks = list(self._handlers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.get_running_loop().stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._handle(reader, writer)
        finally:
            self._handlers.discard(task)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Decided in accept order from one seeded generator: the same run drops the same
        # connections of the sequence.
        if self._rng.random() < self._drop_rate:
            self.dropped += 1
            _reset(writer)
            return
        self.forwarded += 1
        lifetime = self._rng.uniform(*self._lifetime)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _reset(writer)
            return
        pipes = [
            asyncio.create_task(_pipe(reader, up_writer)),
            asyncio.create_task(_pipe(up_reader, writer)),
        ]
        try:
            # Until the lifetime runs out (then cut), or both directions end.
            await asyncio.wait(pipes, timeout=lifetime)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            _reset(writer)
            _reset(up_writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN: the peer sees a broken connection, not an end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()
