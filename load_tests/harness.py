"""Pieces for load runs against real `graylane-server serve` processes: a fresh, migrated
PostgreSQL database shared by one or more replicas, seeding flags and SDK tokens through
the admin API, process CPU and memory, and headless locust runs read back from their CSV.

The server subprocess and the throwaway database come from `bench/servers.py`.

    from harness import deployment, seed

    with deployment(workdir) as deploy, deploy.replicas(2) as servers:
        seeded = seed(servers[0].url, deploy.admin_token)
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.cases import large_document  # noqa: E402
from bench.servers import (  # noqa: E402
    Server,
    fresh_database,
    migrate,
    raise_file_limit,
    server_env,
)

__all__ = [
    "DEFAULT_POSTGRES",
    "DEFAULT_REDIS",
    "ENVIRONMENT",
    "LOCUSTFILE",
    "REPO",
    "Deployment",
    "Entry",
    "Locust",
    "Sampler",
    "Seeded",
    "Server",
    "StatsRow",
    "Totals",
    "cpu_seconds",
    "deployment",
    "machine_busy_seconds",
    "raise_file_limit",
    "rss_bytes",
    "seed",
    "wait_until_served",
]

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
ENVIRONMENT = "production"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


# --- servers ----------------------------------------------------------------------------


@dataclass
class Deployment:
    """One migrated database (and Redis); start replicas on it with `replicas`."""

    env: dict[str, str]
    admin_token: str
    workdir: Path
    started: int = 0

    @contextlib.contextmanager
    def replicas(self, count: int = 1, timeout: float = 60.0) -> Iterator[list[Server]]:
        """`count` server processes on free ports of 127.0.0.1, stopped on the way out
        (also on an error or Ctrl-C)."""
        servers: list[Server] = []
        try:
            for _ in range(count):
                self.started += 1
                log = self.workdir / f"server-{self.started}.log"
                servers.append(Server(self.env, log))
                servers[-1].start(timeout)
            yield servers
        finally:
            for server in servers:
                server.stop()

    def admin(self, server: Server) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return httpx.Client(base_url=server.url, headers=headers, timeout=60)


@contextlib.contextmanager
def deployment(
    workdir: Path,
    *,
    postgres: str = DEFAULT_POSTGRES,
    redis: str | None = DEFAULT_REDIS,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Deployment]:
    """A fresh PostgreSQL database (dropped afterwards), migrated once, and the server
    environment for it: Redis (None: the in-process bus), a generated bootstrap admin
    token, no migration at start."""
    token = "gla_load_" + secrets.token_hex(16)
    with fresh_database(postgres) as database_url:
        settings = {
            "GRAYLANE_DATABASE_URL": database_url,
            "GRAYLANE_MIGRATE_ON_START": "false",
            "GRAYLANE_BOOTSTRAP_ADMIN_TOKEN": token,
            "GRAYLANE_DATA_DIR": str(workdir / "data"),
            **(extra_env or {}),
        }
        if redis:
            settings["GRAYLANE_REDIS_URL"] = redis
        env = server_env(settings)
        migrate(env)
        yield Deployment(env, token, workdir)


@dataclass(frozen=True)
class Seeded:
    flags: list[str]
    sdk_tokens: list[str]
    environment: str = ENVIRONMENT


def seed(url: str, admin_token: str, *, flags: int = 50, tokens: int = 8) -> Seeded:
    """`flags` flags in production (a mix of static flags, rollouts, three-way splits and
    targeting rules over segments: `bench/cases.py`'s `large_document`) in one
    `PUT /api/v1/state`, and `tokens` SDK tokens for production."""
    document = large_document(flags)
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as admin:
        admin.put("/api/v1/state", json=document).raise_for_status()
        minted = []
        for _ in range(tokens):
            response = admin.post(
                "/api/v1/tokens", json={"kind": "sdk", "environment": ENVIRONMENT}
            )
            minted.append(str(response.raise_for_status().json()["token"]))
    return Seeded(sorted(document["flags"]), minted)


def wait_until_served(urls: Sequence[str], token: str, timeout: float = 60.0) -> None:
    """Wait until every server answers the SDK config for `token` (each replica builds
    the environment's config after it hears of the change)."""
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending:
        url = pending[0]
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(
                f"{url}/api/v1/sdk/config",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            if response.status_code == 200:
                pending.pop(0)
                continue
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not serve the config within {timeout:g}s")
        time.sleep(0.1)


# --- processes --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss_bytes(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (all processes:
    /proc/stat without idle and iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU of this process's children that have been waited for (locust and its workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Sampler:
    """Peak resident memory of some processes, sampled in a thread every `interval`."""

    pids: list[int]
    interval: float = 0.25
    peak: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                self.peak[pid] = max(self.peak.get(pid, 0), rss_bytes(pid))


# --- locust -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsRow:
    """One row of locust's `_stats.csv` (times in milliseconds)."""

    type: str
    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p99: float
    max: float

    @classmethod
    def parse(cls, row: dict[str, str]) -> StatsRow:
        def number(key: str) -> float:
            value = row.get(key, "")
            return float(value) if value not in ("", "N/A") else float("nan")

        return cls(
            type=row["Type"],
            name=row["Name"],
            requests=int(row["Request Count"]),
            failures=int(row["Failure Count"]),
            rps=number("Requests/s"),
            p50=number("50%"),
            p99=number("99%"),
            max=number("Max Response Time"),
        )


@dataclass(frozen=True)
class Entry:
    """One request name's final stats: counts and the response-time histogram (locust
    keeps times rounded: to 1 ms under 100 ms, to 10 ms under 1 s, then to 100 ms)."""

    method: str
    name: str
    requests: int
    failures: int
    start: float
    last: float
    histogram: dict[int, int]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Entry:
        return cls(
            method=str(raw["method"]),
            name=str(raw["name"]),
            requests=int(raw["num_requests"]),
            failures=int(raw["num_failures"]),
            start=float(raw["start_time"]),
            last=float(raw["last_request_timestamp"] or raw["start_time"]),
            histogram={int(k): int(v) for k, v in raw["response_times"].items()},
        )


@dataclass(frozen=True)
class Totals:
    entries: list[Entry]

    def select(self, *names: str) -> Totals:
        return Totals([e for e in self.entries if not names or e.name in names])

    @property
    def requests(self) -> int:
        return sum(e.requests for e in self.entries)

    @property
    def failures(self) -> int:
        return sum(e.failures for e in self.entries)

    @property
    def seconds(self) -> float:
        """From the first request's start to the last request."""
        if not self.entries:
            return math.nan
        return max(e.last for e in self.entries) - min(e.start for e in self.entries)

    @property
    def rps(self) -> float:
        seconds = self.seconds
        return self.requests / seconds if seconds > 0 else math.nan

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the response times, in milliseconds."""
        merged: dict[int, int] = {}
        for entry in self.entries:
            for ms, count in entry.histogram.items():
                merged[ms] = merged.get(ms, 0) + count
        total = sum(merged.values())
        if not total:
            return math.nan
        rank = max(1, math.ceil(p / 100 * total))
        seen = 0
        for ms in sorted(merged):
            seen += merged[ms]
            if seen >= rank:
                return float(ms)
        return float(max(merged))

    def max(self) -> float:
        found = [ms for e in self.entries for ms in e.histogram]
        return float(max(found)) if found else math.nan


class Locust:
    """`locust --headless` in a subprocess (its own session, so that stopping it stops its
    workers too), with its stats read from the CSV files it rewrites every second."""

    def __init__(
        self,
        *,
        users: int,
        spawn_rate: float,
        run_time: str,
        user_classes: Sequence[str],
        hosts: Sequence[str],
        env: dict[str, str],
        csv_prefix: Path,
        processes: int = 1,
        locustfile: Path = LOCUSTFILE,
    ) -> None:
        self.csv_prefix = csv_prefix
        self.command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(locustfile),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            f"{spawn_rate:g}",
            "--run-time",
            run_time,
            "--host",
            hosts[0],
            "--csv",
            str(csv_prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--stop-timeout",
            "5",
            *(["--processes", str(processes)] if processes > 1 else []),
            *user_classes,
        ]
        self.json_path = Path(f"{csv_prefix}_final.json")
        self.env = {
            **os.environ,
            **env,
            "GRAYLANE_LOAD_HOSTS": ",".join(hosts),
            "GRAYLANE_LOAD_JSON": str(self.json_path),
        }
        self.log_path = csv_prefix.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None
        self.cpu_before = 0.0
        self.cpu_s = 0.0
        self.started = 0.0
        self.wall_s = 0.0

    def start(self) -> Locust:
        self.cpu_before = children_cpu_seconds()
        self.started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            code = self.process.wait(30)
        self._finished()
        return code

    def stop(self) -> None:
        """Ask locust to stop (it writes its final stats), then make sure it did."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._finished()

    def _finished(self) -> None:
        if not self.wall_s:
            self.wall_s = time.monotonic() - self.started
            self.cpu_s = children_cpu_seconds() - self.cpu_before

    def rows(self) -> list[StatsRow]:
        path = Path(f"{self.csv_prefix}_stats.csv")
        if not path.exists():
            return []
        with path.open(newline="") as handle:
            return [StatsRow.parse(row) for row in csv.DictReader(handle)]

    def row(self, name: str) -> StatsRow | None:
        return next((r for r in self.rows() if r.name == name), None)

    def final(self) -> Totals:
        """The final stats (written by the locustfile when locust quits)."""
        if not self.json_path.exists():
            raise RuntimeError(f"locust wrote no final stats:\n{self.log()}")
        entries = json.loads(self.json_path.read_text())
        return Totals([Entry.parse(e) for e in entries])

    def failures(self) -> list[str]:
        """`occurrences x method name: error`, from `_failures.csv`."""
        path = Path(f"{self.csv_prefix}_failures.csv")
        if not path.exists():
            return []
        with path.open(newline="") as handle:
            return [
                f"{r['Occurrences']}x {r['Method']} {r['Name']}: {r['Error']}"
                for r in csv.DictReader(handle)
            ]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def __enter__(self) -> Locust:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
