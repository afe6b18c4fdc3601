"""Load tests: what one `graylane-server serve` process, and two replicas, take.

    python load_tests/run.py            # about 7 minutes; writes the table in docs/benchmarks.md
    python load_tests/run.py --quick    # about 2 minutes; prints only (add --write to record)

It creates a fresh PostgreSQL database (migrated once, dropped at the end), starts one
server process with Redis, seeds 50 flags and 8 SDK tokens through the admin API, and runs
each HTTP scenario with locust, headless, a fixed number of users for a fixed time:

  config polling   SDK config with ETags: mostly 304s, one request in ten a full gzipped 200
  OFREP single     one flag per request, a new random context every time
  OFREP bulk       every flag for a context; 7 in 10 re-polls with the bulk ETag (304)
  metrics          SDK metric flushes, shaped as the SDK sends them

then the same against two replicas sharing the database and Redis (locust's users take
the replicas in turn), then SSE: streams opened and held on a fresh single process, at
increasing counts, each with config changes that must reach every stream, up to the
largest count that stays healthy. Server CPU (user + system, from the kernel) and
resident memory are read from the server processes; the generator's CPU from locust's.

Everything started here is stopped, and the database dropped, also on Ctrl-C or errors.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib.metadata
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
from harness import (
    DEFAULT_POSTGRES,
    DEFAULT_REDIS,
    ENVIRONMENT,
    REPO,
    Deployment,
    Locust,
    Sampler,
    Seeded,
    Server,
    cpu_seconds,
    deployment,
    machine_busy_seconds,
    raise_file_limit,
    rss_bytes,
    seed,
    wait_until_served,
)

DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- load:begin -->", "<!-- load:end -->"
MIB = 1024 * 1024
FILE_LIMIT = 20_000
SSE_RATE = 250.0
"""Streams opened per second while ramping up."""
SSE_CHANGES = 3
CHANGE_TIMEOUT = 30.0
"""Seconds a config change may take to reach every stream."""
SATURATED = 0.9
"""A generator process busier than this share of a core limits what it measures."""


@dataclass(frozen=True)
class Scenario:
    name: str
    user_class: str
    names: tuple[str, ...]
    """Request names in the breakdown (in this order)."""


SCENARIOS = [
    Scenario(
        "config polling",
        "ConfigPoller",
        ("config If-None-Match", "config 200 gzip", "config first GET"),
    ),
    Scenario("OFREP single", "OfrepSingle", ("ofrep single",)),
    Scenario("OFREP bulk", "OfrepBulk", ("ofrep bulk If-None-Match", "ofrep bulk, new context")),
    Scenario("metrics", "MetricsSender", ("metrics",)),
]


@dataclass
class Breakdown:
    name: str
    requests: int
    rps: float
    p50: float
    p99: float
    failures: int


@dataclass
class HttpResult:
    scenario: str
    replicas: int
    users: int
    processes: int
    requests: int
    failures: int
    rps: float
    p50: float
    p99: float
    seconds: float
    server_cpu_s: float
    server_rss: list[int]
    generator_cpu_s: float
    generator_wall_s: float
    machine_busy_s: float
    """Busy CPU seconds of the whole machine (every process) over the run."""
    wall_s: float
    server_errors: int
    breakdown: list[Breakdown] = field(default_factory=list)
    failure_lines: list[str] = field(default_factory=list)

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1000 if self.requests else math.nan

    @property
    def server_core_share(self) -> float:
        return self.server_cpu_s / self.seconds if self.seconds > 0 else math.nan

    @property
    def generator_core_share(self) -> float:
        return self.generator_cpu_s / self.generator_wall_s if self.generator_wall_s else math.nan

    @property
    def machine_core_share(self) -> float:
        return self.machine_busy_s / self.wall_s if self.wall_s else math.nan

    @property
    def others_core_share(self) -> float:
        """The machine's busy share not spent by the servers or the generator."""
        if not self.wall_s:
            return math.nan
        return (self.machine_busy_s - self.server_cpu_s - self.generator_cpu_s) / self.wall_s


@dataclass
class SseResult:
    target: int
    connected: int
    connect_s: float
    changes: int
    delivered: int
    """Changes that reached every stream within CHANGE_TIMEOUT."""
    delivery_p50: float
    delivery_p99: float
    delivery_max: float
    connect_p99: float
    events: int
    """Events read, over all streams: the first (current version) and every change."""
    pings: int
    failures: int
    rss_before: int
    rss_connected: int
    server_cpu_per_change_s: float
    generator_core_share: float
    note: str = ""

    @property
    def healthy(self) -> bool:
        return (
            self.connected >= self.target
            and self.delivered == self.changes > 0
            and self.failures == 0
            and not self.note
        )

    @property
    def rss_per_stream(self) -> float:
        return (self.rss_connected - self.rss_before) / self.target


# --- running ----------------------------------------------------------------------------


def log_offset(server: Server) -> int:
    return server.log_path.stat().st_size if server.log_path.exists() else 0


def log_errors(server: Server, offset: int) -> int:
    """Lines at error level (or tracebacks) the server logged since `offset`."""
    with server.log_path.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    pattern = re.compile(r'"level":\s*"(error|critical)"|^Traceback', re.MULTILINE)
    return len(pattern.findall(text))


def load_env(seeded: Seeded, mark: Path | None = None) -> dict[str, str]:
    env = {
        "GRAYLANE_LOAD_TOKENS": ",".join(seeded.sdk_tokens),
        "GRAYLANE_LOAD_FLAGS": ",".join(seeded.flags),
    }
    if mark is not None:
        env["GRAYLANE_LOAD_MARK"] = str(mark)
    return env


def run_http(
    scenario: Scenario,
    servers: Sequence[Server],
    seeded: Seeded,
    workdir: Path,
    *,
    users: int,
    seconds: int,
    processes: int,
) -> HttpResult:
    label = f"{scenario.name}, {len(servers)} replica(s), {users} users"
    print(f"  {label}, {seconds}s ...", end="", flush=True)
    pids = [s.process.pid for s in servers if s.process is not None]
    offsets = [log_offset(s) for s in servers]
    prefix = workdir / f"{scenario.user_class}-{len(servers)}"
    locust = Locust(
        users=users,
        spawn_rate=users,
        run_time=f"{seconds}s",
        user_classes=[scenario.user_class],
        hosts=[s.url for s in servers],
        env=load_env(seeded),
        csv_prefix=prefix,
        processes=processes,
    )
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    busy_before, wall_before = machine_busy_seconds(), time.monotonic()
    with Sampler(pids) as sampler, locust:
        locust.wait(seconds + 60)
    server_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    busy, wall = machine_busy_seconds() - busy_before, time.monotonic() - wall_before
    check_alive(servers, scenario.name)
    totals = locust.final()
    breakdown = []
    for name in scenario.names:
        part = totals.select(name)
        if part.requests:
            breakdown.append(
                Breakdown(
                    name,
                    part.requests,
                    part.requests / totals.seconds,
                    part.percentile(50),
                    part.percentile(99),
                    part.failures,
                )
            )
    result = HttpResult(
        scenario=scenario.name,
        replicas=len(servers),
        users=users,
        processes=processes,
        requests=totals.requests,
        failures=totals.failures,
        rps=totals.rps,
        p50=totals.percentile(50),
        p99=totals.percentile(99),
        seconds=totals.seconds,
        server_cpu_s=server_cpu,
        server_rss=[sampler.peak.get(pid, 0) for pid in pids],
        generator_cpu_s=locust.cpu_s,
        generator_wall_s=locust.wall_s,
        machine_busy_s=busy,
        wall_s=wall,
        server_errors=sum(log_errors(s, o) for s, o in zip(servers, offsets, strict=True)),
        breakdown=breakdown,
        failure_lines=locust.failures(),
    )
    print(
        f" {result.rps:,.0f} req/s, p50 {result.p50:g} ms, p99 {result.p99:g} ms, "
        f"{result.failures} failures, server {result.cpu_ms_per_request:.2f} ms CPU/request "
        f"({result.server_core_share:.0%} of a core), generator "
        f"{result.generator_core_share:.0%} of a core; machine busy "
        f"{result.machine_core_share:.0%} (others {result.others_core_share:.0%})",
        flush=True,
    )
    for line in result.failure_lines[:5]:
        print(f"    {line}")
    return result


def check_alive(servers: Sequence[Server], during: str) -> None:
    for server in servers:
        if server.process is None or server.process.poll() is not None:
            raise RuntimeError(f"{server.url} exited during {during}:\n{server.log()}")


def poll(deadline: float, interval: float = 0.25) -> Iterator[None]:
    """Yield until `deadline` (time.monotonic()), `interval` apart."""
    while time.monotonic() < deadline:
        yield
        time.sleep(interval)


def ramp_up(server: Server, locust: Locust, target: int, deadline: float) -> tuple[int, float]:
    """Wait until the server counts `target` streams (or `deadline` seconds pass)."""
    started = time.monotonic()
    connected = 0
    for _ in poll(started + deadline):
        connected = server.streams()
        if connected >= target or locust.process is None or locust.process.poll() is not None:
            break
    return connected, time.monotonic() - started


def make_changes(
    admin: httpx.Client, locust: Locust, mark: Path, flag: str, target: int
) -> tuple[int, int, str]:
    """Toggle `flag` SSE_CHANGES times, each once every stream has had the last one.
    Returns (changes made, changes that reached every stream, what went wrong)."""
    path = f"/api/v1/flags/{flag}/environments/{ENVIRONMENT}"
    enabled = bool(admin.get(path).raise_for_status().json()["enabled"])
    changes = delivered = 0
    for number in range(1, SSE_CHANGES + 1):
        enabled = not enabled
        tmp = mark.with_suffix(".tmp")
        tmp.write_text(repr(time.time()))
        tmp.replace(mark)
        admin.put(f"{path}/enabled", json={"enabled": enabled}).raise_for_status()
        changes += 1
        reached = 0
        # Locust rewrites its CSV stats every second.
        for _ in poll(time.monotonic() + CHANGE_TIMEOUT, 0.5):
            row = locust.row("change")
            reached = row.requests if row else 0
            if reached >= target * number:
                break
        if reached < target * number:
            return changes, delivered, f"change {number} reached {reached - target * (number - 1)}"
        delivered += 1
    return changes, delivered, ""


def run_sse(deploy: Deployment, seeded: Seeded, workdir: Path, target: int, flag: str) -> SseResult:
    print(f"  SSE, {target:,} streams on one process ...", end="", flush=True)
    mark = workdir / "mark"
    mark.write_text("0")
    with deploy.replicas(1) as (server,), deploy.admin(server) as admin:
        assert server.process is not None
        pid = server.process.pid
        wait_until_served([server.url], seeded.sdk_tokens[0])
        rss_before = rss_bytes(pid)
        ramp = target / SSE_RATE
        bound = ramp + 60 + SSE_CHANGES * CHANGE_TIMEOUT
        locust = Locust(
            users=target,
            spawn_rate=SSE_RATE,
            run_time=f"{math.ceil(bound)}s",
            user_classes=["StreamHolder"],
            hosts=[server.url],
            env=load_env(seeded, mark),
            csv_prefix=workdir / f"sse-{target}",
        )
        with locust:
            connected, connect_s = ramp_up(server, locust, target, deadline=ramp + 60)
            rss_connected = rss_bytes(pid)
            cpu_before = cpu_seconds(pid)
            if connected >= target:
                changes, delivered, note = make_changes(admin, locust, mark, flag, target)
            else:
                changes, delivered = 0, 0
                note = f"{connected} streams connected in {connect_s:.0f}s"
            server_cpu = cpu_seconds(pid) - cpu_before
            rss_connected = max(rss_connected, rss_bytes(pid))
            check_alive([server], f"{target} streams")
        totals = locust.final()
    changes_seen = totals.select("change")
    failures = totals.failures
    result = SseResult(
        target=target,
        connected=connected,
        connect_s=connect_s,
        changes=changes,
        delivered=delivered,
        delivery_p50=changes_seen.percentile(50),
        delivery_p99=changes_seen.percentile(99),
        delivery_max=changes_seen.max(),
        connect_p99=totals.select("connect").percentile(99),
        events=totals.select("connect", "change").requests,
        pings=totals.select("ping").requests,
        failures=failures,
        rss_before=rss_before,
        rss_connected=rss_connected,
        server_cpu_per_change_s=server_cpu / changes if changes else math.nan,
        generator_core_share=locust.cpu_s / locust.wall_s if locust.wall_s else math.nan,
        note=note,
    )
    print(
        f" {connected:,} connected in {connect_s:.1f}s, {delivered}/{changes} changes reached "
        f"all (p99 {result.delivery_p99:g} ms), {failures} failures, RSS "
        f"{rss_before / MIB:.0f} -> {rss_connected / MIB:.0f} MiB "
        f"({result.rss_per_stream / 1024:.1f} KiB/stream){'; ' + note if note else ''}",
        flush=True,
    )
    for line in locust.failures()[:5]:
        print(f"    {line}")
    return result


# --- reporting --------------------------------------------------------------------------


def number(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def source_digest() -> str:
    """A digest of the server's and the core's source as it is on disk now, to tell
    whether the code changed between two phases of one run."""
    digest = hashlib.sha256()
    for root in (REPO / "server" / "graylane_server", REPO / "sdk" / "graylane"):
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def versions() -> dict[str, str]:
    found = {}
    for package in ("graylane", "locust", "uvicorn", "fastapi", "sse-starlette"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "server"],  # noqa: S607
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        found["commit"] = revision + (" + uncommitted changes under server/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        found["commit"] = "unknown"
    return found


def markdown(
    http: Sequence[HttpResult],
    sse: Sequence[SseResult],
    *,
    command: str,
    load_average: tuple[float, float, float],
    users: int,
    seconds: int,
    processes: int,
    file_limit: int,
    elapsed: float,
    code_changed: bool = False,
) -> str:
    found = versions()
    cpus = os.cpu_count() or 1
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    generator = (
        "one locust process"
        if processes == 1
        else f"locust with `--processes {processes}` (a master and {processes} workers)"
    )
    lines = [
        f"`{command}` — {when}, {elapsed / 60:.1f} minutes. Load average at the start: "
        f"{load_average[0]:.2f}, {load_average[1]:.2f}, {load_average[2]:.2f} "
        f"({os.cpu_count()} CPUs, shared). Graylane {found.get('graylane', '?')} "
        f"(commit {found['commit']}), uvicorn {found.get('uvicorn', '?')}, FastAPI "
        f"{found.get('fastapi', '?')}, sse-starlette {found.get('sse-starlette', '?')}, "
        f"locust {found.get('locust', '?')}, Python {platform.python_version()}; "
        f"PostgreSQL and Redis on 127.0.0.1.",
        "",
        f"Load: {generator}, headless, {users} users per HTTP scenario started at once and "
        f"held for {seconds} s (`FastHttpUser`, no wait between requests, keep-alive), on the "
        "same two cores as the servers. Each server is `graylane-server serve` (one uvicorn "
        "worker); with two replicas the users alternate between them. Server CPU is user + "
        "system time from the kernel over the run; RSS the peak resident memory per process; "
        "generator CPU is locust's, as a share of one core; machine busy is every core's "
        "busy time from /proc/stat, with what neither the servers nor locust used (other "
        "processes, PostgreSQL and Redis among them) in brackets. A machine near "
        f"{cpus * 100}% busy means req/s was bounded by the CPU there was, not by the servers "
        "alone. p50 and p99 are over the whole run, as locust records them (to the "
        "millisecond).",
        "",
        "| scenario | replicas | req/s | p50 ms | p99 ms | failures | server CPU / request "
        "| server CPU, % of one core (all replicas) | server RSS | generator CPU, % of a core "
        f"| machine busy, % of one core (of {cpus * 100}%), and other processes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in http:
        rss = " + ".join(f"{b / MIB:.0f}" for b in r.server_rss) + " MiB"
        saturated = r.generator_core_share > SATURATED * r.processes
        lines.append(
            f"| {r.scenario} | {r.replicas} | {number(r.rps)} | {number(r.p50)} | "
            f"{number(r.p99)} | {r.failures}{f' ({r.server_errors} logged)' if r.server_errors else ''} | "  # noqa: E501
            f"{r.cpu_ms_per_request:.2f} ms | {r.server_core_share:.0%} | {rss} | "
            f"{r.generator_core_share:.0%}{' (saturated)' if saturated else ''} | "
            f"{r.machine_core_share:.0%} ({r.others_core_share:.0%}) |"
        )
    if code_changed:
        lines += [
            "",
            "**The server's source changed on disk between the one-replica and the "
            "two-replica runs** (it was being edited during the run): the two halves ran "
            "different code, so compare them with care.",
        ]
    lines += [
        "",
        "By request (req/s over the same run):",
        "",
        "| scenario | replicas | request | share | req/s | p50 ms | p99 ms | failures |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in http:
        for b in r.breakdown:
            if b.name.endswith("first GET"):
                continue
            lines.append(
                f"| {r.scenario} | {r.replicas} | {b.name} | {b.requests / r.requests:.0%} | "
                f"{number(b.rps)} | {number(b.p50)} | {number(b.p99)} | {b.failures} |"
            )
    if sse:
        lines += [
            "",
            f"SSE on one process (a fresh one per row; streams opened at {SSE_RATE:g}/s, "
            f"open-files limit {file_limit:,}); {SSE_CHANGES} config changes per row, each "
            f"must reach every stream within {CHANGE_TIMEOUT:g} s. Delivery is from right "
            "before the admin PUT to the event read in locust (one clock, one machine).",
            "",
            "| streams | connected | ramp-up | changes reaching all | delivery p50 / p99 / max "
            "| events read (+ pings) | failures | server RSS before → connected "
            "| RSS per stream | server CPU / change | healthy |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for s in sse:
            lines.append(
                f"| {s.target:,} | {s.connected:,} | {s.connect_s:.1f} s | "
                f"{s.delivered} / {s.changes} | {number(s.delivery_p50)} / "
                f"{number(s.delivery_p99)} / {number(s.delivery_max)} ms | "
                f"{s.events:,} (+ {s.pings:,}) | {s.failures} | "
                f"{s.rss_before / MIB:.0f} → {s.rss_connected / MIB:.0f} MiB | "
                f"{s.rss_per_stream / 1024:.1f} KiB | "
                f"{number(s.server_cpu_per_change_s * 1000)} ms | "
                f"{'yes' if s.healthy else 'no: ' + (s.note or 'failures')} |"
            )
        healthy = [s.target for s in sse if s.healthy]
        lines += [
            "",
            f"Largest healthy count tried: **{max(healthy):,} streams**"
            if healthy
            else "No stream count tried was healthy.",
        ]
    return "\n".join(lines)


def write_docs(text: str, path: Path = DOCS) -> None:
    content = path.read_text()
    start, end = content.index(BEGIN), content.index(END)
    path.write_text(content[: start + len(BEGIN)] + "\n" + text + "\n" + content[end:])


# --- main -------------------------------------------------------------------------------


def _interrupt(signum: int, _: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, 1,000 streams")
    parser.add_argument("--users", type=int, default=32, help="users per HTTP scenario")
    parser.add_argument("--seconds", type=int, help="seconds per HTTP scenario (30; quick 8)")
    parser.add_argument(
        "--processes", type=int, default=1, help="locust processes for HTTP scenarios"
    )
    parser.add_argument(
        "--sse",
        help="stream counts to try in order, comma-separated (default 1000,2500,5000,10000; "
        "quick 1000); 0 skips SSE",
    )
    parser.add_argument("--flags", type=int, default=50)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="an admin database URL")
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the table into docs/benchmarks.md (default: yes, except with --quick)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seconds = args.seconds or (8 if args.quick else 30)
    default_levels = "1000" if args.quick else "1000,2500,5000,10000"
    levels = [n for n in map(int, (args.sse or default_levels).split(",")) if n > 0]
    write = (not args.quick) if args.write is None else args.write
    command = "python load_tests/run.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")

    signal.signal(signal.SIGTERM, _interrupt)
    file_limit = raise_file_limit(FILE_LIMIT)
    load_average = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs, load average {load_average[0]:.2f} at the start, open files "
        f"limit {file_limit}; {args.users} users x {seconds}s per HTTP scenario; "
        f"SSE levels {levels or 'none'}"
    )
    started = time.monotonic()
    http: list[HttpResult] = []
    sse: list[SseResult] = []
    digests: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="graylane-load-") as tmp_name:
        workdir = Path(tmp_name)
        try:
            with deployment(workdir, postgres=args.postgres, redis=args.redis) as deploy:
                for replicas in (1, 2):
                    digests[replicas] = source_digest()
                    with deploy.replicas(replicas) as servers:
                        if not http:
                            seeded = seed(servers[0].url, deploy.admin_token, flags=args.flags)
                        wait_until_served([s.url for s in servers], seeded.sdk_tokens[0])
                        print(f"{replicas} replica(s): {', '.join(s.url for s in servers)}")
                        http.extend(
                            run_http(
                                scenario,
                                servers,
                                seeded,
                                workdir,
                                users=args.users,
                                seconds=seconds,
                                processes=args.processes,
                            )
                            for scenario in SCENARIOS
                        )
                if levels:
                    print("SSE:")
                for level in levels:
                    result = run_sse(deploy, seeded, workdir, level, seeded.flags[0])
                    sse.append(result)
                    if not result.healthy:
                        break
        except BaseException:
            for log in sorted(workdir.glob("*.log")):
                tail = log.read_text(errors="replace")[-2000:]
                print(f"--- {log.name} (tail) ---\n{tail}", file=sys.stderr)
            raise
    elapsed = time.monotonic() - started
    text = markdown(
        http,
        sse,
        command=command,
        load_average=load_average,
        users=args.users,
        seconds=seconds,
        processes=args.processes,
        file_limit=file_limit,
        elapsed=elapsed,
        code_changed=len(set(digests.values())) > 1,
    )
    print()
    print(text)
    if write:
        write_docs(text)
        print(f"\nwritten to {DOCS.relative_to(REPO)}")
    print(f"\ntook {elapsed:.0f}s")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
