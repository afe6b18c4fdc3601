"""Locust users for a running Graylane server: what SDKs and OFREP providers send.

Run by `load_tests/run.py`, which sets these environment variables (all required except
the last):

    GRAYLANE_LOAD_HOSTS   comma-separated base URLs; users take them in turn, so two
                          replicas get half the users each
    GRAYLANE_LOAD_TOKENS  comma-separated SDK tokens (one environment); each user picks one
    GRAYLANE_LOAD_FLAGS   comma-separated flag keys in that environment
    GRAYLANE_LOAD_MARK    a file holding a Unix time (written right before an admin change):
                          stream users report each change's delivery time since it

By hand, against a server you seeded yourself:

    GRAYLANE_LOAD_HOSTS=http://127.0.0.1:8080 GRAYLANE_LOAD_TOKENS=... \\
    GRAYLANE_LOAD_FLAGS=flag-00000,flag-00001 \\
    locust -f load_tests/locustfile.py --headless -u 20 -r 20 --run-time 20s ConfigPoller

No user waits between requests: each sends the next one as soon as the last is answered,
so the request rate is what the server (or the generator) gives at that concurrency.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from locust import FastHttpUser, User, constant, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

HOSTS = [h for h in os.environ.get("GRAYLANE_LOAD_HOSTS", "").split(",") if h]
TOKENS = [t for t in os.environ.get("GRAYLANE_LOAD_TOKENS", "").split(",") if t]
FLAGS = [f for f in os.environ.get("GRAYLANE_LOAD_FLAGS", "").split(",") if f]
MARK = os.environ.get("GRAYLANE_LOAD_MARK", "")
STATS_JSON = os.environ.get("GRAYLANE_LOAD_JSON", "")

COUNTRIES = ["US", "CA", "DE", "FR", "GB", "JP", "BR", "IN"]
PLANS = ["free", "pro", "team"]
DOMAINS = ["example.com", "mail.test", "corp.test"]
VARIANTS = ["on", "off"]

_next_host = itertools.count()


def pick_host(default: str | None) -> str | None:
    """The replicas in turn, one per user as users start."""
    if not HOSTS:
        return default
    return HOSTS[next(_next_host) % len(HOSTS)]


_environments: list[Environment] = []


@events.init.add_listener
def _remember(environment: Environment, **_: Any) -> None:
    _environments.append(environment)


@events.quit.add_listener
def _save_stats(**_: Any) -> None:
    """Every request name's final counts and response-time histogram, as JSON in
    GRAYLANE_LOAD_JSON (from the process that holds the totals, not from a worker)."""
    runner = _environments[-1].runner if _environments else None
    if not STATS_JSON or runner is None or isinstance(runner, WorkerRunner):
        return
    Path(STATS_JSON).write_text(json.dumps(runner.stats.serialize_stats()))


def random_context(rng: random.Random) -> dict[str, Any]:
    """A context with the attributes the seeded flags' rules look at."""
    n = rng.randrange(1_000_000)
    return {
        "targetingKey": f"user-{n}",
        "email": f"u{n}@{rng.choice(DOMAINS)}",
        "country": rng.choice(COUNTRIES),
        "plan": rng.choice(PLANS),
        "app_version": f"{rng.randrange(1, 7)}.{rng.randrange(10)}.{rng.randrange(10)}",
        "age": rng.randrange(16, 80),
    }


class SdkUser(FastHttpUser):
    """A FastHttpUser aimed at one of the replicas, with one SDK token."""

    abstract = True
    wait_time = constant(0)
    network_timeout = 30.0
    connection_timeout = 10.0

    def __init__(self, environment: Environment) -> None:
        self.host = pick_host(self.host)
        self.rng = random.Random()
        self.default_headers = {"Authorization": f"Bearer {self.rng.choice(TOKENS)}"}
        super().__init__(environment)


class ConfigPoller(SdkUser):
    """An SDK polling its config: one full GET, then `If-None-Match` with the ETag it
    holds (304s); one request in ten is a full gzipped GET, like an SDK starting up."""

    etag = ""

    def on_start(self) -> None:
        self.full("config first GET")

    def full(self, name: str) -> None:
        headers = {"Accept-Encoding": "gzip"}
        with self.client.get(
            "/api/v1/sdk/config", headers=headers, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
            elif response.headers.get("Content-Encoding") != "gzip":
                response.failure("not gzipped")
            else:
                self.etag = response.headers.get("ETag") or ""

    @task(9)
    def conditional(self) -> None:
        headers = {"If-None-Match": self.etag, "Accept-Encoding": "gzip"}
        with self.client.get(
            "/api/v1/sdk/config", headers=headers, name="config If-None-Match", catch_response=True
        ) as response:
            if response.status_code == 200:  # the config changed: take the new one
                self.etag = response.headers.get("ETag") or ""
            elif response.status_code != 304:
                response.failure(f"status {response.status_code}")

    @task(1)
    def startup(self) -> None:
        self.full("config 200 gzip")


class OfrepSingle(SdkUser):
    """An OFREP provider evaluating one flag per request, for varied users."""

    @task
    def evaluate(self) -> None:
        key = self.rng.choice(FLAGS)
        with self.client.post(
            f"/ofrep/v1/evaluate/flags/{key}",
            json={"context": random_context(self.rng)},
            name="ofrep single",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")


class OfrepBulk(SdkUser):
    """A client-side OFREP provider: every flag for its current user, then re-polls with
    the bulk ETag (304 while nothing changed); three polls in ten switch to a new user."""

    def on_start(self) -> None:
        self.ctx: dict[str, Any] = {}
        self.etag = ""

    @task(3)
    def new_context(self) -> None:
        self.ctx = random_context(self.rng)
        with self.client.post(
            "/ofrep/v1/evaluate/flags",
            json={"context": self.ctx},
            name="ofrep bulk, new context",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
            else:
                self.etag = response.headers.get("ETag") or ""

    @task(7)
    def repoll(self) -> None:
        if not self.etag:
            self.new_context()
            return
        with self.client.post(
            "/ofrep/v1/evaluate/flags",
            json={"context": self.ctx},
            headers={"If-None-Match": self.etag},
            name="ofrep bulk If-None-Match",
            catch_response=True,
        ) as response:
            if response.status_code != 304:
                response.failure(f"status {response.status_code}")


class MetricsSender(SdkUser):
    """An SDK flushing its counts, shaped as `graylane.metrics.payload` builds them:
    evaluations per (flag, variant) for a dozen flags, request and error events per group
    for a few flags under a ramp, over a 10-second window."""

    @task
    def flush(self) -> None:
        rng = self.rng
        now = time.time()
        flags = rng.sample(FLAGS, min(12, len(FLAGS)))
        evaluations = [
            {"flag": f, "variant": v, "count": rng.randrange(1, 5000)}
            for f in flags
            for v in VARIANTS[: rng.randrange(1, 3)]
        ]
        events = [
            {
                "flag": f,
                "variant": v,
                "group": group,
                "event": event,
                "count": rng.randrange(1, 2000) if event == "request" else rng.randrange(3),
            }
            for f in flags[:3]
            for v, group in (("on", "exposed"), ("off", "unexposed"))
            for event in ("request", "error")
        ]
        body = {
            "config_version": 1,
            "window": {"start": now - 10, "end": now},
            "evaluations": evaluations,
            "events": events,
            "dropped": 0,
        }
        with self.client.post(
            "/api/v1/sdk/metrics", json=body, name="metrics", catch_response=True
        ) as response:
            if response.status_code != 202:
                response.failure(f"status {response.status_code}")


class StreamHolder(User):
    """An SDK holding `GET /api/v1/sdk/stream` open and reading every event: reported
    as request type SSE, `connect` (time to the first event, the current version),
    `change` (every later event; its time is since the admin change in GRAYLANE_LOAD_MARK)
    and `ping` (keep-alive comments). A closed stream is a failure; the user reconnects.

    A plain socket per stream rather than an HTTP client: thousands of them stay cheap."""

    wait_time = constant(1)

    def __init__(self, environment: Environment) -> None:
        host = pick_host(self.host)
        assert host is not None, "GRAYLANE_LOAD_HOSTS or --host"
        parts = urlsplit(host)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.token = random.choice(TOKENS)
        super().__init__(environment)

    def fire(
        self, name: str, started: float, ms: float, exc: Exception | None = None, length: int = 0
    ) -> None:
        self.environment.events.request.fire(
            request_type="SSE",
            name=name,
            response_time=ms,
            response_length=length,
            exception=exc,
            context={},
            start_time=started,
            url="/api/v1/sdk/stream",
        )

    @task
    def hold(self) -> None:
        started = time.time()
        try:
            sock = socket.create_connection(self.address, timeout=60)
        except OSError as exc:
            self.fire("connect", started, (time.time() - started) * 1000, exc)
            return
        try:
            self.read(sock, started)
        finally:
            sock.close()

    def read(self, sock: socket.socket, started: float) -> None:
        request = (
            "GET /api/v1/sdk/stream HTTP/1.1\r\n"
            f"Host: {self.address[0]}:{self.address[1]}\r\n"
            f"Authorization: Bearer {self.token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        )
        sock.sendall(request.encode())
        sock.settimeout(None)  # idle between changes; pings arrive every heartbeat
        decoder = _ChunkedLines()
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)
            if not data:
                self.fire("connect", started, _ms(started), ConnectionError("closed"))
                return
            buffer += data
        head, _, rest = buffer.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            self.fire("connect", started, _ms(started), ConnectionError(status.decode()))
            return
        connected = False
        data = rest
        while True:
            for line in decoder.feed(data):
                if line.startswith("data:"):
                    if not connected:
                        connected = True
                        self.fire("connect", started, _ms(started), length=len(line))
                    else:
                        self.fire("change", time.time(), _since_mark(), length=len(line))
                elif line.startswith(":"):
                    self.fire("ping", time.time(), 0.0)
            data = sock.recv(65536)
            if not data:
                self.fire("closed", time.time(), 0.0, ConnectionError("the server closed it"))
                return


def _ms(started: float) -> float:
    return (time.time() - started) * 1000


def _since_mark() -> float:
    """Milliseconds since the time in the mark file (0 without one)."""
    if not MARK:
        return 0.0
    try:
        return (time.time() - float(Path(MARK).read_text())) * 1000
    except (OSError, ValueError):
        return 0.0


class _ChunkedLines:
    """Lines of an SSE body sent with `Transfer-Encoding: chunked`."""

    def __init__(self) -> None:
        self.raw = b""
        self.body = b""
        self.remaining = -1  # bytes left of the current chunk (+2 for its CRLF); -1: size next

    def feed(self, data: bytes) -> list[str]:
        self.raw += data
        while True:
            if self.remaining < 0:
                line, sep, rest = self.raw.partition(b"\r\n")
                if not sep:
                    break
                self.remaining = int(line.split(b";")[0], 16) + 2
                self.raw = rest
            take = self.raw[: self.remaining]
            self.raw = self.raw[len(take) :]
            self.remaining -= len(take)
            self.body += take
            if self.remaining > 0:
                break
            self.body = self.body[:-2]  # the CRLF after the chunk
            self.remaining = -1
        *lines, self.body = self.body.split(b"\n")
        return [line.rstrip(b"\r").decode(errors="replace") for line in lines]
