"""How long an admin change takes to reach connected SDK clients.

    python bench/propagation.py            # 100 changes; 1 and 500 clients; about 2.5 minutes
    python bench/propagation.py --quick    # 20 changes; 1 and 100 clients

Each run starts `graylane-server serve` as a subprocess on 127.0.0.1 and connects
Graylane `Client`s (stream=True) to it. A change is the kill switch of one flag,
`PUT /api/v1/flags/{key}/environments/production/enabled`, toggled back and forth:

  t0       taken right before the admin PUT is sent
  arrival  taken first thing in each client's `on_change` callback, once that client
           serves the new value

A single client runs in this process and both times are `time.perf_counter()`. The
500-client fleet is spread over 4 worker processes (`--client-procs`), so no interpreter
runs a thousand client threads; there both times are `time.time()`, one clock on one
machine. Per change, `all clients` is the latency until the LAST client has it (the max),
and `per client` pools every client's own latency. The next change starts only when every
client has converged (after a timeout it waits for the stragglers and counts the change as
missed), so changes never overlap; a run stops early if its time budget is spent.

Runs:
  postgres + redis    a fresh PostgreSQL database (created for the run, dropped after;
                      `graylane-server migrate` first, GRAYLANE_MIGRATE_ON_START=false) and
                      Redis pub/sub for fan-out; with 1 and with 500 clients
  embedded            the default with no configuration: SQLite and the in-process bus;
                      1 client

The latency includes everything on the way: the admin request and its database commit,
the notice over Redis, the server rebuilding the environment's config, the SSE notice to
every stream, every client refetching the config (one GET each, with its ETag) and
compiling it. Server and clients share this machine's cores; the CPU each side spent per
change is reported next to the latencies.

`--flags N` puts N more flags (a mix of rollouts and targeting rules, see
`bench/cases.py`) in the environment first, to see what a large config costs on the way:
every change makes the server rebuild, and every client refetch and recompile, all of it.

The goal: all-clients p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import multiprocessing
import os
import platform
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from cases import large_document
from graylane import Change, Client
from servers import (
    Server,
    cpu_seconds,
    percentile,
    postgres_env,
    raise_file_limit,
    server_env,
)

FLAG = "kill-switch"
ENV = "production"
GOAL_MS = 100.0
TIMEOUT = 5.0
"""Seconds to wait for every client to have a change before going on without it."""
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
CONTEXT = {"targetingKey": "bench-user"}


# --- the server ------------------------------------------------------------------------


# --- the measurement -------------------------------------------------------------------


@dataclass
class Round:
    """One change: when it was sent and when each client served it."""

    target: bool
    clients: int
    arrivals: list[float | None] = field(default_factory=list)
    count: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.arrivals = [None] * self.clients

    def arrived(self, index: int, now: float) -> None:
        with self.lock:
            if self.arrivals[index] is not None:
                return
            self.arrivals[index] = now
            self.count += 1
            if self.count == self.clients:
                self.done.set()


@dataclass
class Result:
    name: str
    clients: int
    procs: int
    changes: int
    per_client_ms: list[float]
    all_clients_ms: list[float]
    put_ms: list[float]
    incomplete: int
    streams: int
    connect_s: float
    seconds: float
    server_cpu_s: float
    bench_cpu_s: float
    """CPU of this process and the fleet's workers (clients, admin requests, harness)."""
    warnings: int
    first_warning: str | None
    warned_changes: list[int]
    """Which changes (0-based) saw SDK warnings."""
    note: str


class WarningCounter(logging.Handler):
    """Counts what the SDK logs at WARNING and above (a client that could not reach the
    server says so there) instead of printing it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.last = record.getMessage()


class Fleet:
    """`count` streaming clients in this process, each noting (on `clock`) when it
    serves the armed round's value."""

    def __init__(
        self, url: str, sdk_key: str, count: int, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.clock = clock
        self.round: Round | None = None
        self.clients: list[Client] = []
        self.warnings = WarningCounter()
        sdk_log = logging.getLogger("graylane")
        sdk_log.addHandler(self.warnings)
        sdk_log.propagate = False
        started = time.perf_counter()
        for start in range(0, count, 50):  # in batches, not to stampede the server
            end = min(start + 50, count)
            batch = [self._client(url, sdk_key, i) for i in range(start, end)]
            for client in batch:
                client.wait_ready(60)
        self.connect_s = time.perf_counter() - started

    def _client(self, url: str, sdk_key: str, index: int) -> Client:
        client = Client(url, sdk_key, stream=True, flush_interval=3600, poll_interval=30)

        def changed(change: Change) -> None:
            now = self.clock()
            current = self.round
            if (
                current is not None
                and FLAG in change.flags
                and client.is_enabled(FLAG, CONTEXT) is current.target
            ):
                current.arrived(index, now)

        client.on_change(changed)
        self.clients.append(client)
        return client

    def arm(self, target: bool) -> None:
        self.round = Round(target, len(self.clients))

    def collect(self, timeout: float) -> list[float | None]:
        """Each client's arrival for the armed round (None: not within `timeout`)."""
        current = self.round
        assert current is not None
        current.done.wait(timeout)
        self.round = None
        return list(current.arrivals)

    def converge(self, target: bool, timeout: float) -> bool:
        """Wait until every client serves `target`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.is_enabled(FLAG, CONTEXT) is target for c in self.clients):
                return True
            time.sleep(0.05)
        return False

    def cpu(self) -> float:
        return 0.0  # counted with this process

    def close(self) -> float:
        """Close every client (mostly waiting on their threads, so many at once)."""
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=min(256, len(self.clients))) as pool:
            list(pool.map(Client.close, self.clients))
        sdk_log = logging.getLogger("graylane")
        sdk_log.removeHandler(self.warnings)
        sdk_log.propagate = True
        return time.perf_counter() - started


def fleet_worker(url: str, sdk_key: str, count: int, conn: Connection) -> None:
    """A worker process holding part of a fleet, driven over `conn`. Times are
    `time.time()`, comparable with the parent's on this one machine."""
    fleet = Fleet(url, sdk_key, count, clock=time.time)
    conn.send(("ready", fleet.connect_s))
    while True:
        command, *arguments = conn.recv()
        if command == "arm":
            fleet.arm(arguments[0])
            conn.send(fleet.warnings.count)
        elif command == "collect":
            conn.send((fleet.collect(arguments[0]), fleet.warnings.count, fleet.warnings.last))
        elif command == "converge":
            conn.send(fleet.converge(*arguments))
        elif command == "cpu":
            conn.send(cpu_seconds())
        elif command == "close":
            conn.send(fleet.close())
            return


class ProcessFleet:
    """A fleet spread over `procs` worker processes (`fleet_worker`), so that no one
    interpreter runs hundreds of client threads; the same interface as `Fleet`."""

    clock = staticmethod(time.time)

    def __init__(self, url: str, sdk_key: str, count: int, procs: int) -> None:
        context = multiprocessing.get_context("spawn")
        shares = [count // procs + (i < count % procs) for i in range(procs)]
        self.conns: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for share in shares:
            ours, theirs = context.Pipe()
            process = context.Process(
                target=fleet_worker, args=(url, sdk_key, share, theirs), daemon=True
            )
            process.start()
            self.conns.append(ours)
            self.processes.append(process)
        replies = [self._recv(conn, 120) for conn in self.conns]
        self.connect_s = max(r[1] for r in replies)
        self.warnings = WarningCounter()

    @staticmethod
    def _recv(conn: Connection, timeout: float) -> Any:
        if not conn.poll(timeout):
            raise RuntimeError(f"a fleet worker did not answer within {timeout}s")
        return conn.recv()

    def _all(self, message: tuple[Any, ...], timeout: float) -> list[Any]:
        for conn in self.conns:
            conn.send(message)
        return [self._recv(conn, timeout) for conn in self.conns]

    def arm(self, target: bool) -> None:
        self.warnings.count = sum(self._all(("arm", target), 30))

    def collect(self, timeout: float) -> list[float | None]:
        arrivals: list[float | None] = []
        self.warnings.count = 0
        for got, warned, last in self._all(("collect", timeout), timeout + 30):
            arrivals.extend(got)
            self.warnings.count += warned
            self.warnings.last = last or self.warnings.last
        return arrivals

    def converge(self, target: bool, timeout: float) -> bool:
        return all(self._all(("converge", target, timeout), timeout + 30))

    def cpu(self) -> float:
        return float(sum(self._all(("cpu",), 30)))

    def close(self) -> float:
        closing = max(self._all(("close",), 60))
        for process in self.processes:
            process.join(10)
        return float(closing)


def wait_for_streams(server: Server, count: int, timeout: float = 60.0, fewer: bool = False) -> int:
    """Wait until the server counts at least (or with `fewer`, at most) `count` streams."""
    deadline = time.monotonic() + timeout
    streams = server.streams()
    while (streams > count if fewer else streams < count) and time.monotonic() < deadline:
        time.sleep(0.1)
        streams = server.streams()
    return streams


@dataclass
class Driven:
    """What a series of changes gave."""

    per_client_ms: list[float] = field(default_factory=list)
    all_clients_ms: list[float] = field(default_factory=list)
    put_ms: list[float] = field(default_factory=list)
    warned_changes: list[int] = field(default_factory=list)
    warnings: int = 0
    first_warning: str | None = None
    incomplete: int = 0
    done: int = 0
    note: str = ""


def drive(
    fleet: Fleet | ProcessFleet,
    admin: httpx.Client,
    current: bool,
    *,
    changes: int,
    budget: float,
    timeout: float,
) -> Driven:
    """Toggle the kill switch `changes` times from `current`, one change at a time."""
    out = Driven()
    clock = fleet.clock
    path = f"/api/v1/flags/{FLAG}/environments/{ENV}/enabled"
    started = time.perf_counter()
    for number in range(changes):
        if time.perf_counter() - started > budget:
            out.note = f"stopped after {out.done} changes: the {budget:g}s budget was spent"
            break
        target = not current
        fleet.arm(target)
        warned_before = fleet.warnings.count
        t0 = clock()
        response = admin.put(path, json={"enabled": target})
        out.put_ms.append((clock() - t0) * 1000)
        response.raise_for_status()
        arrivals = fleet.collect(timeout)
        out.done += 1
        got = [(t - t0) * 1000 for t in arrivals if t is not None]
        out.per_client_ms.extend(got)
        if len(got) == len(arrivals):
            out.all_clients_ms.append(max(got))
        else:
            out.incomplete += 1
            # Never let changes overlap: wait for the stragglers before going on.
            if not fleet.converge(target, 60):
                out.note = f"stopped after {out.done} changes: the clients did not converge in 60s"
                break
        if fleet.warnings.count > warned_before:
            out.warned_changes.append(number)
            out.warnings += fleet.warnings.count - warned_before
            out.first_warning = out.first_warning or fleet.warnings.last
        current = target
        time.sleep(0.02)  # let the last change's stragglers settle
    return out


def measure(
    name: str,
    server: Server,
    admin: httpx.Client,
    sdk_key: str,
    *,
    clients: int,
    changes: int,
    procs: int,
    budget: float,
    timeout: float,
) -> Result:
    where = "this process" if procs == 1 else f"{procs} worker processes"
    print(f"  {name}, {clients} client(s) in {where}: connecting ...", end="", flush=True)
    assert server.process is not None
    fleet: Fleet | ProcessFleet = (
        Fleet(server.url, sdk_key, clients)
        if procs == 1
        else ProcessFleet(server.url, sdk_key, clients, procs)
    )
    try:
        streams = wait_for_streams(server, clients)
        print(f" {streams} streams in {fleet.connect_s:.1f}s; {changes} changes ...", flush=True)
        response = admin.get(f"/api/v1/flags/{FLAG}/environments/{ENV}")
        current = bool(response.raise_for_status().json()["enabled"])
        if not fleet.converge(current, 120):  # the server may still be building the config
            raise RuntimeError("the clients never served the flag under test")
        cpu_before = cpu_seconds(server.process.pid), cpu_seconds() + fleet.cpu()
        started = time.perf_counter()
        driven = drive(fleet, admin, current, changes=changes, budget=budget, timeout=timeout)
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(server.process.pid) - cpu_before[0]
        bench_cpu = cpu_seconds() + fleet.cpu() - cpu_before[1]
    finally:
        closing = fleet.close()
        left = wait_for_streams(server, 0, timeout=15, fewer=True)
        print(f"    closed in {closing:.1f}s; {left} streams left on the server", flush=True)
    if driven.note:
        print(f"    {driven.note}")
    return Result(
        name=name,
        clients=clients,
        procs=procs,
        changes=driven.done,
        per_client_ms=driven.per_client_ms,
        all_clients_ms=driven.all_clients_ms,
        put_ms=driven.put_ms,
        incomplete=driven.incomplete,
        streams=streams,
        connect_s=fleet.connect_s,
        seconds=elapsed,
        server_cpu_s=server_cpu,
        bench_cpu_s=bench_cpu,
        warnings=driven.warnings,
        first_warning=driven.first_warning,
        warned_changes=driven.warned_changes,
        note=driven.note,
    )


def setup(admin: httpx.Client, extra_flags: int) -> str:
    """The flag under test (next to `extra_flags` others), and an SDK token for production."""
    flag = {"environments": {ENV: {"enabled": True, "fallthrough": {"variant": "on"}}}}
    if extra_flags:
        document = large_document(extra_flags)
        document["flags"][FLAG] = flag
        admin.put("/api/v1/state", json=document, timeout=600).raise_for_status()
    else:
        admin.put(f"/api/v1/flags/{FLAG}", json=flag).raise_for_status()
    response = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": ENV})
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


@contextlib.contextmanager
def running(
    env: dict[str, str], log_path: Path, token: str
) -> Iterator[tuple[Server, httpx.Client]]:
    server = Server(env, log_path).start()
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as admin:
            yield server, admin
    finally:
        server.stop()


# --- reporting -------------------------------------------------------------------------


def report(results: Sequence[Result], timeout: float) -> None:
    print()
    header = (
        f"{'run':<18} {'clients':>9} {'changes':>7} "
        f"{'per-client p50':>14} {'p99':>7} {'all-clients p50':>15} {'p99':>7} {'max':>7} "
        f"{'PUT p50':>7} {'missed':>6}"
    )
    print(header)
    for r in results:
        each, every = r.per_client_ms, r.all_clients_ms
        print(
            f"{r.name:<18} {fleet_label(r):>9} {r.changes:>7} "
            f"{percentile(each, 50):>11.1f} ms {percentile(each, 99):>7.1f} "
            f"{percentile(every, 50):>12.1f} ms {percentile(every, 99):>7.1f} "
            f"{max(every, default=math.nan):>7.1f} "
            f"{percentile(r.put_ms, 50):>7.1f} {r.incomplete:>6}"
        )
    print(
        "(ms from right before the admin PUT to on_change; `all clients` = until the last "
        "client has it; PUT = the admin request's own round trip; missed = changes not seen "
        f"by every client within {timeout:g} s)"
    )
    print()
    print(
        f"{'run':<18} {'clients':>9} {'connect':>8} {'changes took':>12} "
        f"{'server CPU/change':>17} {'client-side CPU/change':>22} {'SDK warnings':>12}"
    )
    for r in results:
        print(
            f"{r.name:<18} {fleet_label(r):>9} {r.connect_s:>7.1f}s {r.seconds:>11.1f}s "
            f"{r.server_cpu_s / r.changes * 1000:>14.1f} ms "
            f"{r.bench_cpu_s / r.changes * 1000:>19.1f} ms {r.warnings:>12}"
        )
        if r.first_warning:
            numbers = ", ".join(f"#{n}" for n in r.warned_changes[:10])
            print(f"  first SDK warning (during changes {numbers}): {r.first_warning}")
    print(
        "(CPU while the changes ran: the server process; and the clients' side: this process "
        "plus the fleet's worker processes. All share the machine's cores. Clients `N/k`: N "
        "clients spread over k worker processes, timed with time.time(); otherwise in this "
        "process, timed with time.perf_counter())"
    )
    print()
    for r in results:
        p99 = percentile(r.all_clients_ms, 99)
        met = r.incomplete == 0 and not r.note and p99 < GOAL_MS
        print(
            f"goal: all-clients p99 under {GOAL_MS:g} ms, {r.name}, {r.clients} client(s): "
            f"{'met' if met else 'NOT met'} ({p99:.1f} ms over {r.changes} changes"
            f"{', ' + str(r.incomplete) + ' missed' if r.incomplete else ''})"
        )


def fleet_label(r: Result) -> str:
    return str(r.clients) if r.procs == 1 else f"{r.clients}/{r.procs}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 changes, 1 and 100 clients")
    parser.add_argument("--changes", type=int, help="changes per run (default 100)")
    parser.add_argument("--clients", type=int, help="the large fleet (default 500)")
    parser.add_argument("--skip-embedded", action="store_true", help="PostgreSQL + Redis only")
    parser.add_argument("--skip-postgres", action="store_true", help="the embedded run only")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="an admin database URL")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL")
    parser.add_argument(
        "--flags", type=int, default=0, help="other flags in the environment (default none)"
    )
    parser.add_argument(
        "--client-procs",
        type=int,
        default=4,
        help="worker processes holding the large fleet (default 4; 1: all in this process)",
    )
    parser.add_argument(
        "--budget", type=float, default=150.0, help="seconds of changes per run, at most"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT,
        help=f"seconds a change may take to reach every client (default {TIMEOUT:g})",
    )
    args = parser.parse_args(argv)
    changes = args.changes or (20 if args.quick else 100)
    fleet = args.clients or (100 if args.quick else 500)

    # Each streaming client holds two connections here and one in the server.
    limit = raise_file_limit(max(4096, fleet * 4 + 256))
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs (load average "
        f"{os.getloadavg()[0]:.1f} at the start), open files limit {limit}; "
        f"server: graylane-server serve (1 worker) on 127.0.0.1; "
        f"{args.flags:,} other flags in the environment"
    )
    token = "gla_bench_" + secrets.token_hex(16)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="graylane-propagation-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            if not args.skip_postgres:
                with (
                    postgres_env(args.postgres, token, tmp / "postgres", args.redis) as env,
                    running(env, tmp / "postgres.log", token) as (server, admin),
                ):
                    sdk_key = setup(admin, args.flags)
                    results.extend(
                        measure(
                            "postgres + redis",
                            server,
                            admin,
                            sdk_key,
                            clients=count,
                            changes=changes,
                            procs=1 if count == 1 else max(1, args.client_procs),
                            budget=args.budget,
                            timeout=args.timeout,
                        )
                        for count in sorted({1, fleet})
                    )
            if not args.skip_embedded:
                env = server_env(
                    {
                        "GRAYLANE_BOOTSTRAP_ADMIN_TOKEN": token,
                        "GRAYLANE_DATA_DIR": str(tmp / "embedded"),
                    }
                )
                with running(env, tmp / "embedded.log", token) as (server, admin):
                    sdk_key = setup(admin, args.flags)
                    results.append(
                        measure(
                            "embedded (sqlite)",
                            server,
                            admin,
                            sdk_key,
                            clients=1,
                            changes=changes,
                            procs=1,
                            budget=args.budget,
                            timeout=args.timeout,
                        )
                    )
        except Exception:
            for log in tmp.glob("*.log"):
                print(f"--- {log.name} (tail) ---\n{log.read_text(errors='replace')[-3000:]}")
            raise
    report(results, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
