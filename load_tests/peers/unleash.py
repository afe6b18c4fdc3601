"""Graylane next to the Unleash open-source server, under the same HTTP load, in one run.

    python load_tests/peers/unleash.py            # 2 rounds x 20 s per endpoint and server; ~6 min
    python load_tests/peers/unleash.py --quick    # 1 round x 8 s; does not touch the docs

What it does, every run:

1. Installs `unleash-server` (pinned: UNLEASH_VERSION) and a Node.js it supports (pinned:
   NODE_VERSION, from the npm package `node-<os>-<arch>`; Unleash 8 needs Node 22 or newer)
   with npm, once, into ~/.cache/graylane-bench/unleash-<version>-node-<version>, outside
   the repository, and reuses it afterwards (`--rebuild-unleash` reinstalls).
2. Starts Unleash (one Node process, no cluster) with a small start file in that folder,
   on a free port of 127.0.0.1, against a fresh PostgreSQL database of its own, with an
   admin, a backend (client) and a frontend API token given at start; and
   `graylane-server serve` (one process, one uvicorn worker) on another fresh database and
   Redis, as bench/servers.py does for the benchmarks.
3. Loads the same 50 flags into both (FLAGS below), enabled in `production`, and checks
   that both serve 50 flags, that both answer 304 to their own ETag, and that both give
   the same answer for every flag whose answer does not depend on a rollout hash.
4. Runs locust (headless, FastHttpUser, a fixed number of users, no wait) against each
   endpoint of each server in turn, alternating which server goes first, and prints a
   table: requests per second and p50/p99 after a warm-up, failures, the server's CPU per
   request (user + system from /proc/<pid>/stat, over the whole locust run) and its
   resident memory.

       config      Unleash GET /api/client/features   vs  Graylane GET /api/v1/sdk/config
       config 304  the same with If-None-Match: <the ETag each server gave>
       evaluate    Unleash POST /api/frontend          vs  Graylane POST /ofrep/v1/evaluate/flags
                   with the same contexts (user id, country, plan) in each product's shape

5. A full run (not `--quick`) writes the results between the `peers` markers of
   docs/benchmarks.md. Both servers are stopped and both databases dropped at the end,
   also after an error or Ctrl-C.

Everything runs on this machine and talks to 127.0.0.1 only (npm aside, on the first run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from servers import Server, free_port, fresh_database, migrate, server_env  # noqa: E402

UNLEASH_VERSION = "8.2.0"
"""The newest unleash-server on npm when this was written; bump it deliberately."""
NODE_VERSION = "22.23.3"
"""The Node.js that runs it (unleash-server 8 declares `engines: node >= 22`)."""
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "graylane-bench"
MARKER = "graylane-bench.json"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
ENV = "production"
APP = "graylane-peers-bench"
GOAL_SPEEDUP = 3.0
CONTEXTS = 1000
"""Distinct evaluation contexts the load cycles through."""

START_FILE = """\
// Starts unleash-server for graylane's load_tests/peers/unleash.py. Written by that
// script; the settings come in the environment variable UNLEASH_BENCH_SETTINGS.
import { start } from 'unleash-server';

const settings = JSON.parse(process.env.UNLEASH_BENCH_SETTINGS);
const unleash = await start({
  db: { ...settings.db, ssl: false },
  server: { host: '127.0.0.1', port: settings.port, gracefulShutdownEnable: false },
  logLevel: 'error',
  versionCheck: { enable: false },
  // Every request of the benchmark comes from 127.0.0.1, one client address: without
  // this, the per-address limit on the SDK APIs (20,000 a minute) would answer 429.
  rateLimiting: {
    sdkApiMaxPerMinute: settings.rateLimit,
    tokenAuthenticationMaxPerMinute: settings.rateLimit,
  },
  authentication: { createAdminUser: false, initApiTokens: settings.tokens },
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), 10000).unref();
  await unleash.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
"""


# --- the flags: one description, each product's model ----------------------------------

COUNTRIES = ("US", "CA", "DE", "FR", "GB", "JP", "BR", "IN")
PLANS = ("free", "pro", "enterprise")


@dataclass(frozen=True)
class Flag:
    """A boolean flag in `production`. With `countries`/`plans`, a rule serves it on to
    contexts matching both; everyone else (everyone, without a rule) gets it on with
    probability `percentage`, bucketed by user id (100: on, 0: off)."""

    key: str
    enabled: bool = True
    percentage: int = 100
    countries: tuple[str, ...] = ()
    plans: tuple[str, ...] = ()

    @property
    def has_rule(self) -> bool:
        return bool(self.countries or self.plans)

    def expected(self, country: str, plan: str) -> bool | None:
        """The answer for a context, or None when a rollout hash decides it."""
        if not self.enabled:
            return False
        if (
            self.has_rule
            and (not self.countries or country in self.countries)
            and (not self.plans or plan in self.plans)
        ):
            return True
        if self.percentage in (0, 100):
            return self.percentage == 100
        return None


def make_flags() -> list[Flag]:
    """15 on for everyone, 5 switched off, 18 percentage rollouts, 12 targeted."""
    flags = [Flag(f"toggle-on-{i:02d}") for i in range(15)]
    flags += [Flag(f"toggle-off-{i:02d}", enabled=False) for i in range(5)]
    percentages = (1, 5, 10, 20, 25, 33, 50, 75, 90)
    flags += [Flag(f"rollout-{i:02d}", percentage=percentages[i % 9]) for i in range(18)]
    for i in range(12):
        countries = (("US", "CA", "DE"), ("FR", "GB"), ("JP",))[i % 3]
        plans = ("pro", "enterprise") if i % 2 else ()
        flags.append(
            Flag(f"targeted-{i:02d}", percentage=(0, 20)[i % 4 // 2] if i < 8 else 0,
                 countries=countries, plans=plans)
        )  # fmt: skip
    return flags


FLAGS = make_flags()
assert len(FLAGS) == 50


def graylane_document(flags: Sequence[Flag]) -> dict[str, Any]:
    def config(flag: Flag) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": flag.enabled}
        if flag.has_rule:
            when = []
            if flag.countries:
                when.append({"attribute": "country", "op": "in", "values": list(flag.countries)})
            if flag.plans:
                when.append({"attribute": "plan", "op": "in", "values": list(flag.plans)})
            out["rules"] = [{"name": "launch", "when": when, "serve": {"variant": "on"}}]
        if flag.percentage in (0, 100):
            out["fallthrough"] = {"variant": "on" if flag.percentage == 100 else "off"}
        else:
            out["fallthrough"] = {
                "rollout": {"percentage": flag.percentage, "variants": {"on": 100}},
                "otherwise": "off",
            }
        return out

    return {"flags": {f.key: {"environments": {ENV: config(f)}} for f in flags}}


def unleash_strategies(flag: Flag) -> list[dict[str, Any]]:
    """Unleash's strategies for the flag (they are OR-ed: any one enables it)."""

    def rollout(percentage: int, stickiness: str) -> dict[str, Any]:
        return {
            "name": "flexibleRollout",
            "parameters": {
                "rollout": str(percentage),
                "stickiness": stickiness,
                "groupId": flag.key,
            },
            "constraints": [],
        }

    strategies = []
    if flag.has_rule:
        rule = rollout(100, "default")
        if flag.countries:
            rule["constraints"].append(
                {"contextName": "country", "operator": "IN", "values": list(flag.countries)}
            )
        if flag.plans:
            rule["constraints"].append(
                {"contextName": "plan", "operator": "IN", "values": list(flag.plans)}
            )
        strategies.append(rule)
    if flag.percentage == 100:
        strategies.append(rollout(100, "default"))
    elif flag.percentage > 0:
        strategies.append(rollout(flag.percentage, "userId"))
    return strategies


@dataclass(frozen=True)
class Context:
    user: str
    country: str
    plan: str

    def ofrep(self) -> dict[str, Any]:
        return {"context": {"targetingKey": self.user, "country": self.country, "plan": self.plan}}

    def unleash(self) -> dict[str, Any]:
        properties = {"country": self.country, "plan": self.plan}
        return {"context": {"userId": self.user, "properties": properties}}


def make_contexts(count: int, seed: int = 7) -> list[Context]:
    rng = random.Random(seed)
    return [
        Context(f"user-{rng.randrange(10**9)}", rng.choice(COUNTRIES), rng.choice(PLANS))
        for _ in range(count)
    ]


# --- installing and running Unleash -----------------------------------------------------


def node_package() -> str:
    """The npm package that carries a Node.js binary for this machine."""
    system = {"Linux": "linux", "Darwin": "darwin"}.get(platform.system())
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    if system is None or arch is None:
        raise SystemExit(f"no Node.js package for {platform.system()} {platform.machine()}")
    return f"node-{system}-{arch}"


def ensure_unleash(path: Path, rebuild: bool) -> Path:
    """The Node binary of the pinned install in `path`, installing it when needed."""
    package = node_package()
    node = path / "node_modules" / package / "bin" / "node"
    wanted = {"unleash-server": UNLEASH_VERSION, package: NODE_VERSION}
    marker = path / MARKER
    installed = False
    with contextlib.suppress(OSError, ValueError):
        installed = json.loads(marker.read_text()) == wanted and node.exists()
    if not installed or rebuild:
        if path.exists():
            if not (path / "package.json").exists() and any(path.iterdir()):
                raise SystemExit(f"{path} holds something else; move it or pass --unleash-dir")
            shutil.rmtree(path)
        print(f"installing unleash-server {UNLEASH_VERSION} and Node {NODE_VERSION} with npm "
              f"into {path} (once; about a minute) ...", flush=True)  # fmt: skip
        path.mkdir(parents=True)
        manifest = {"name": "graylane-bench-unleash", "private": True, "dependencies": wanted}
        (path / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to install the Unleash server")
        done = subprocess.run(  # noqa: S603
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0 or not node.exists():
            print(done.stdout[-3000:] + done.stderr[-3000:])
            raise SystemExit(f"npm install in {path} failed")
        marker.write_text(json.dumps(wanted))
    (path / "start.mjs").write_text(START_FILE)
    return node


class UnleashServer:
    """`node start.mjs` in the install folder, on a free port of 127.0.0.1."""

    def __init__(self, node: Path, folder: Path, settings: dict[str, Any], log: Path) -> None:
        self.node = node
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = {**settings, "port": self.port}
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> UnleashServer:
        env = {
            **os.environ,
            "UNLEASH_BENCH_SETTINGS": json.dumps(self.settings),
            "NODE_ENV": "production",
            "SEND_TELEMETRY": "false",
            "CHECK_VERSION": "false",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [str(self.node), "start.mjs"],
                cwd=self.folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Unleash exited early:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"Unleash did not answer /health in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def unleash_settings(database_url: str, tokens: dict[str, str]) -> dict[str, Any]:
    url = make_url(database_url)
    db = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password or "",
        "database": url.database,
    }
    init = [
        {
            "type": kind,
            "secret": secret,
            "projects": ["*"],
            "environment": "*" if kind == "admin" else ENV,
            "tokenName": f"bench-{kind}",
        }
        for kind, secret in tokens.items()
    ]
    return {"db": db, "tokens": init, "rateLimit": 1_000_000_000}


def unleash_tokens() -> dict[str, str]:
    """Secrets in Unleash's `<project>:<environment>.<random>` shape."""
    return {
        "admin": f"*:*.{secrets.token_hex(24)}",
        "backend": f"*:{ENV}.{secrets.token_hex(24)}",
        "frontend": f"*:{ENV}.{secrets.token_hex(24)}",
    }


def load_unleash(admin: httpx.Client, flags: Sequence[Flag]) -> None:
    base = "/api/admin/projects/default/features"
    for flag in flags:
        admin.post(base, json={"name": flag.key, "type": "release"}).raise_for_status()
        for strategy in unleash_strategies(flag):
            path = f"{base}/{flag.key}/environments/{ENV}/strategies"
            admin.post(path, json=strategy).raise_for_status()
        if flag.enabled:
            admin.post(f"{base}/{flag.key}/environments/{ENV}/on").raise_for_status()


def load_graylane(admin: httpx.Client, flags: Sequence[Flag]) -> str:
    admin.put("/api/v1/state", json=graylane_document(flags)).raise_for_status()
    response = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": ENV})
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


# --- what is measured ------------------------------------------------------------------


@dataclass
class Target:
    """One endpoint of one server, as locust calls it."""

    server: str
    endpoint: str
    url: str
    method: str
    path: str
    headers: dict[str, str]
    bodies: list[str] = field(default_factory=list)
    expect: int = 200
    pid: int = 0


@dataclass
class Run:
    requests: int
    kept: int
    failures: int
    first_failure: str | None
    window_s: float
    times: array[float]
    server_cpu_s: float
    locust_cpu_s: float
    wall_s: float
    rss_kib: int
    mean_bytes: float


@dataclass
class Row:
    target: Target
    runs: list[Run] = field(default_factory=list)
    body: str = ""

    def _sum(self, name: str) -> float:
        return float(sum(getattr(r, name) for r in self.runs))

    @property
    def rps(self) -> float:
        window = self._sum("window_s")
        return self._sum("kept") / window if window else math.nan

    def percentile(self, p: float) -> float:
        times = sorted(t for r in self.runs for t in r.times)
        if not times:
            return math.nan
        return times[max(0, math.ceil(p / 100 * len(times)) - 1)]

    @property
    def by_run(self) -> str:
        return ", ".join(f"{r.kept / r.window_s:,.0f}" for r in self.runs if r.window_s)

    @property
    def failures(self) -> int:
        return int(self._sum("failures"))

    @property
    def cpu_ms_per_request(self) -> float:
        requests = self._sum("requests")
        return 1000 * self._sum("server_cpu_s") / requests if requests else math.nan

    @property
    def busy(self) -> float:
        """The server's share of one core while it served this rate."""
        return self.cpu_ms_per_request * self.rps / 1000

    @property
    def locust_cpu_share(self) -> float:
        wall = self._sum("wall_s")
        return self._sum("locust_cpu_s") / wall if wall else math.nan

    @property
    def rss_mib(self) -> float:
        return max((r.rss_kib for r in self.runs), default=0) / 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_locust(
    target: Target, *, users: int, run_time: int, warmup: float, tmp: Path, index: int
) -> Run:
    out = tmp / f"run-{index:02d}"
    settings = {
        "method": target.method,
        "path": target.path,
        "headers": target.headers,
        "bodies": target.bodies,
        "expect": target.expect,
        "warmup": warmup,
        "out": str(out),
    }
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{run_time}s",
        "--host", target.url, "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5",
    ]  # fmt: skip
    env = {**os.environ, "PEERS_LOAD": json.dumps(settings)}
    cpu0, children0, wall0 = cpu_seconds(target.pid), children_cpu(), time.monotonic()
    with (tmp / f"locust-{index:02d}.log").open("wb") as log:
        subprocess.run(  # noqa: S603
            command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=run_time + 90,
            check=False,
        )  # fmt: skip
    wall = time.monotonic() - wall0
    cpu = cpu_seconds(target.pid) - cpu0
    locust_cpu = children_cpu() - children0
    try:
        summary = json.loads(out.with_suffix(".json").read_text())
    except OSError as exc:
        log_tail = (tmp / f"locust-{index:02d}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"locust wrote no result:\n{log_tail}") from exc
    times = array("d")
    times.frombytes(out.with_suffix(".f64").read_bytes())
    return Run(
        requests=summary["total"],
        kept=summary["kept"],
        failures=summary["kept_failures"],
        first_failure=summary["first_failure"],
        window_s=summary["window_s"],
        times=times,
        server_cpu_s=cpu,
        locust_cpu_s=locust_cpu,
        wall_s=wall,
        rss_kib=rss_kib(target.pid),
        mean_bytes=summary["mean_bytes"],
    )


def body_sizes(target: Target) -> str:
    """What one call returns: the JSON's size, and on the wire with gzip."""
    body = target.bodies[0].encode() if target.bodies else None
    plain = {k: v for k, v in target.headers.items() if k.lower() != "accept-encoding"}
    with httpx.Client(base_url=target.url, timeout=10) as http:
        identity = {**plain, "Accept-Encoding": "identity"}
        raw = http.request(target.method, target.path, content=body, headers=identity)
        zipped = http.request(target.method, target.path, content=body, headers=target.headers)
    if zipped.status_code == 304:
        return "304, no body"
    encoding = zipped.headers.get("content-encoding")
    if encoding is None:
        return f"{len(raw.content):,} B JSON, not compressed"
    return f"{len(raw.content):,} B JSON, {zipped.num_bytes_downloaded:,} B {encoding}"


# --- checking both before measuring ----------------------------------------------------


def answers(target: Target, context: Context) -> dict[str, bool]:
    """Every flag's boolean answer for one context, from the server's evaluation endpoint."""
    body = context.unleash() if target.server == "Unleash" else context.ofrep()
    response = httpx.request(
        target.method, target.url + target.path, json=body, headers=target.headers, timeout=10
    )
    response.raise_for_status()
    data = response.json()
    if target.server == "Unleash":
        # The frontend API lists only the flags that are on for the context.
        on = {t["name"] for t in data["toggles"] if t["enabled"]}
        return {f.key: f.key in on for f in FLAGS}
    return {f["key"]: f["value"] is True for f in data["flags"]}


def disagreements(target: Target, contexts: Sequence[Context]) -> list[str]:
    problems = []
    for context in contexts:
        got = answers(target, context)
        for flag in FLAGS:
            want = flag.expected(context.country, context.plan)
            if flag.key not in got:
                problems.append(f"{flag.key} missing for {context}")
            elif want is not None and got[flag.key] != want:
                problems.append(f"{flag.key} is {got[flag.key]} for {context}, expected {want}")
    return problems


def verify(targets: dict[tuple[str, str], Target], contexts: Sequence[Context]) -> list[str]:
    """Checks both servers; returns notes on what was seen. Raises when they are wrong."""
    notes = []
    for server in ("Graylane", "Unleash"):
        config = targets[server, "config"]
        response = httpx.get(config.url + config.path, headers=config.headers, timeout=10)
        response.raise_for_status()
        data = response.json()
        count = len(data["features"] if server == "Unleash" else data["flags"])
        if count != len(FLAGS):
            raise RuntimeError(f"{server} serves {count} flags on {config.path}, not {len(FLAGS)}")
        etag = response.headers.get("etag")
        if not etag:
            raise RuntimeError(f"{server} sent no ETag on {config.path}")
        again = httpx.get(
            config.url + config.path, headers={**config.headers, "If-None-Match": etag}, timeout=10
        )  # fmt: skip
        if again.status_code != 304:
            raise RuntimeError(f"{server} answered {again.status_code} to its own ETag")
        targets[server, "config 304"].headers["If-None-Match"] = etag
        notes.append(f"{server} {config.path}: {count} flags, ETag {etag} -> 304")
    # Unleash's frontend API evaluates from a cache that follows changes a moment later.
    deadline = time.monotonic() + 60
    while True:
        problems = disagreements(targets["Unleash", "evaluate"], contexts[:1])
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for server in ("Graylane", "Unleash"):
        problems = disagreements(targets[server, "evaluate"], contexts)
        if problems:
            raise RuntimeError(f"{server} answers wrongly:\n  " + "\n  ".join(problems[:10]))
        shares = []
        for context in contexts:
            got = answers(targets[server, "evaluate"], context)
            shares += [
                got[f.key] for f in FLAGS if f.expected(context.country, context.plan) is None
            ]
        notes.append(
            f"{server} evaluation: every fixed answer right for {len(contexts)} contexts; "
            f"rollout-decided answers on {100 * sum(shares) / len(shares):.0f}%"
        )
    wanted = [
        sum(f.percentage for f in FLAGS if f.expected(c.country, c.plan) is None)
        / max(1, sum(1 for f in FLAGS if f.expected(c.country, c.plan) is None))
        for c in contexts
    ]
    notes.append(f"(expected about {sum(wanted) / len(wanted):.0f}% by the rollout percentages)")
    return notes


# --- reporting -------------------------------------------------------------------------


ENDPOINTS = ("config", "config 304", "evaluate")


def fmt_ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def tables(rows: dict[tuple[str, str], Row]) -> tuple[str, str, str]:
    """The results table, the ratios table, and the goal line (markdown)."""
    lines = [
        "| endpoint | server | route | req/s | each run | p50 | p99 | failures "
        "| server CPU / req | server busy | RSS after | locust CPU | returns |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for endpoint in ENDPOINTS:
        for server in ("Graylane", "Unleash"):
            row = rows[server, endpoint]
            t = row.target
            bold = "**" if server == "Graylane" else ""
            lines.append(
                f"| {endpoint} | {server} | `{t.method} {t.path}` | {bold}{row.rps:,.0f}{bold} "
                f"| {row.by_run} | {fmt_ms(row.percentile(50))} | {fmt_ms(row.percentile(99))} "
                f"| {row.failures} | {row.cpu_ms_per_request:.3f} ms | {100 * row.busy:.0f}% "
                f"| {row.rss_mib:.0f} MiB | {100 * row.locust_cpu_share:.0f}% | {row.body} |"
            )
    ratios = [
        "| endpoint | Graylane ÷ Unleash req/s | p99 Graylane | p99 Unleash "
        "| server CPU / req, Graylane ÷ Unleash |",
        "|---|---:|---:|---:|---:|",
    ]
    for endpoint in ENDPOINTS:
        g, u = rows["Graylane", endpoint], rows["Unleash", endpoint]
        ratios.append(
            f"| {endpoint} | **{ratio(g.rps, u.rps)}** | {fmt_ms(g.percentile(99))} "
            f"| {fmt_ms(u.percentile(99))} | {ratio(g.cpu_ms_per_request, u.cpu_ms_per_request)} |"
        )
    g, u = rows["Graylane", "config"], rows["Unleash", "config"]
    speedup = g.rps / u.rps if u.rps else math.nan
    p99_ok = g.percentile(99) <= u.percentile(99)
    met = speedup >= GOAL_SPEEDUP and p99_ok
    goal = (
        f"Goal: at least {GOAL_SPEEDUP:g}x Unleash's req/s on the config endpoint (full body) "
        f"at equal or lower p99 — **{'met' if met else 'not met'}**: {speedup:.2f}x the "
        f"requests per second, p99 {fmt_ms(g.percentile(99))} against "
        f"{fmt_ms(u.percentile(99))} ({'lower or equal' if p99_ok else 'higher'})."
    )
    return "\n".join(lines), "\n".join(ratios), goal


def first_failures(rows: dict[tuple[str, str], Row]) -> list[str]:
    return [
        f"{server} {endpoint}: {run.first_failure}"
        for (server, endpoint), row in rows.items()
        for run in row.runs[:1]
        if run.first_failure
    ]


def docs_section(
    rows: dict[tuple[str, str], Row], meta: dict[str, str], notes: Sequence[str]
) -> str:
    results, ratios, goal = tables(rows)
    failures = first_failures(rows)
    failure_text = (
        "No request failed."
        if not failures
        else "First failures: " + "; ".join(f"`{f}`" for f in failures) + "."
    )
    checks = "\n".join(f"    {note}" for note in notes)
    skipped = (
        ""
        if meta.get("complete", "yes") == "yes"
        else " The time budget ran out before the last rounds: some runs were skipped."
    )
    return f"""\
`{meta["command"]}`: {meta["rounds"]} rounds x {meta["run_time"]} s per endpoint and server,
{meta["users"]} locust users, the first {meta["warmup"]} s of each run left out;
the whole run took {meta["wall"]}.
Load average {meta["load"]} at the start, {meta["load_end"]} at the end (the machine is shared).
Versions: unleash-server {UNLEASH_VERSION} on Node {meta["node"]}, Graylane {meta["graylane"]}
on Python {platform.python_version()}, locust {meta["locust"]}.

The script installs `unleash-server` and a Node.js it supports (npm package
`{node_package()}`; Unleash 8 needs Node 22 or newer) with npm, once, into
`~/.cache/graylane-bench/unleash-{UNLEASH_VERSION}-node-{NODE_VERSION}`, outside the repository.
It starts both servers on 127.0.0.1, each on a fresh database of its own on the same
PostgreSQL, dropped at the end:

- **Unleash**: one Node process (no cluster), `start()` from `unleash-server` with the
  defaults except: log level `error`, no version check or telemetry, no admin user, an
  admin, a backend and a frontend token given through `authentication.initApiTokens`, and
  the SDK APIs' per-address rate limit (20,000 a minute by default; all the load comes from
  one address) raised out of the way. Its client-features cache is on, as by default.
- **Graylane**: `graylane-server serve`, one process with one uvicorn worker, PostgreSQL
  and Redis (`redis://127.0.0.1:6379/0`), log level warning, as `bench/servers.py` starts
  it for the other benchmarks.

Both hold the same 50 boolean flags, enabled in `production`: 15 on for everyone, 5
switched off, 18 percentage rollouts (1-90%, sticky on the user id: Unleash
`flexibleRollout` with `stickiness: userId`, Graylane a fallthrough rollout on
`targetingKey`), and 12 targeted: `country IN [...]` (and in half `plan IN [pro,
enterprise]`) serves on, everyone else off or 20%. Before measuring, the script checks that
both serve 50 flags, that both answer 304 to their own ETag, and that both give the same,
expected answer for every flag whose answer does not depend on a rollout hash, for 40
contexts.

Each run is `locust --headless` with FastHttpUser, {meta["users"]} users calling back to
back (no wait, one keep-alive connection each), against one endpoint of one server; the
runs alternate between the servers and which one goes first. Requests carry
`Accept-Encoding: gzip`, as SDKs send it: Unleash compresses every answer over 1 KB,
Graylane its config (prepared once per config version) but not OFREP answers. The three
endpoints:

- **config**: Unleash `GET /api/client/features` with the backend token (and the headers
  its SDKs send: `UNLEASH-APPNAME`, `UNLEASH-INSTANCEID`, `Unleash-Client-Spec`) against
  Graylane `GET /api/v1/sdk/config` with an SDK token; the whole configuration, 200.
- **config 304**: the same with `If-None-Match` set to the ETag each server gave. Unleash
  {UNLEASH_VERSION} supports it on this endpoint: a strong ETag from the query and its
  revision id, and 304 when it matches.
- **evaluate**: Unleash's frontend API `POST /api/frontend` (the OSS server's evaluation
  endpoint: `{{"context": {{"userId", "properties": {{"country", "plan"}}}}}}`, frontend token)
  against Graylane's OFREP bulk evaluation `POST /ofrep/v1/evaluate/flags` (`{{"context":
  {{"targetingKey", "country", "plan"}}}}`, SDK token), cycling through the same {CONTEXTS:,}
  contexts. Unleash's answer lists only the flags that are on for the context; OFREP
  lists all 50 with value, variant and reason.

Server CPU per request is the server process's user + system time (`/proc/<pid>/stat`)
over each whole locust run, divided by the requests of the run; RSS is `VmRSS` after the
runs (the largest); server busy is CPU per request times requests per second, the
server's share of one core at that rate; locust CPU is the load generator's share of one
core. Servers, load generator and PostgreSQL share the machine's {os.cpu_count()} CPUs with
whatever else runs on it: where a server is well under 100% busy, its rate was set by
the rest of the machine (the load generator, other processes), not by the server, and the
CPU per request is the steadier comparison.

{results}

{ratios}

{goal}

{failure_text}{skipped}

The checks before measuring, as printed by the run:

{checks}
"""


def write_docs(section: str) -> None:
    document = DOCS.read_text()
    start, end = document.index(BEGIN) + len(BEGIN), document.index(END)
    DOCS.write_text(document[:start] + "\n" + section + document[end:])


# --- the run ---------------------------------------------------------------------------


def make_targets(
    unleash: UnleashServer, graylane: Server, tokens: dict[str, str], sdk_key: str
) -> dict[tuple[str, str], Target]:
    contexts = make_contexts(CONTEXTS)
    gzip = {"Accept-Encoding": "gzip"}
    sdk_headers = {
        "UNLEASH-APPNAME": APP,
        "UNLEASH-INSTANCEID": "peers-bench-1",
        "Unleash-Client-Spec": "5.2.0",
    }
    json_type = {"Content-Type": "application/json"}
    graylane_auth = {"Authorization": f"Bearer {sdk_key}", **gzip}
    targets = {}
    for endpoint in ("config", "config 304"):
        targets["Unleash", endpoint] = Target(
            "Unleash", endpoint, unleash.url, "GET", "/api/client/features",
            {"Authorization": tokens["backend"], **sdk_headers, **gzip},
            expect=200 if endpoint == "config" else 304,
        )  # fmt: skip
        targets["Graylane", endpoint] = Target(
            "Graylane", endpoint, graylane.url, "GET", "/api/v1/sdk/config", dict(graylane_auth),
            expect=200 if endpoint == "config" else 304,
        )  # fmt: skip
    targets["Unleash", "evaluate"] = Target(
        "Unleash", "evaluate", unleash.url, "POST", "/api/frontend",
        {"Authorization": tokens["frontend"], **json_type, **gzip},
        bodies=[json.dumps(c.unleash()) for c in contexts],
    )  # fmt: skip
    targets["Graylane", "evaluate"] = Target(
        "Graylane", "evaluate", graylane.url, "POST", "/ofrep/v1/evaluate/flags",
        {**graylane_auth, **json_type}, bodies=[json.dumps(c.ofrep()) for c in contexts],
    )  # fmt: skip
    for target in targets.values():
        process = unleash.process if target.server == "Unleash" else graylane.process
        assert process is not None
        target.pid = process.pid
    return targets


def measure(
    targets: dict[tuple[str, str], Target],
    args: argparse.Namespace,
    tmp: Path,
    deadline: float,
) -> tuple[dict[tuple[str, str], Row], bool]:
    rows = {key: Row(target) for key, target in targets.items()}
    for row in rows.values():
        row.body = body_sizes(row.target)
    index = 0
    complete = True
    for round_ in range(args.rounds):
        for e, endpoint in enumerate(ENDPOINTS):
            order = ("Graylane", "Unleash") if (round_ + e) % 2 == 0 else ("Unleash", "Graylane")
            for server in order:
                if time.monotonic() + args.run_time + 10 > deadline and round_ > 0:
                    complete = False
                    continue
                row = rows[server, endpoint]
                run = run_locust(
                    row.target,
                    users=args.users,
                    run_time=args.run_time,
                    warmup=args.warmup,
                    tmp=tmp,
                    index=index,
                )
                index += 1
                row.runs.append(run)
                print(
                    f"  round {round_ + 1} {endpoint:<10} {server:<8} "
                    f"{run.kept / run.window_s if run.window_s else 0:8,.0f} req/s  "
                    f"failures {run.failures}  server CPU {run.server_cpu_s:.1f} s  "
                    f"locust CPU {100 * run.locust_cpu_s / run.wall_s:.0f}%",
                    flush=True,
                )
    return rows, complete


def node_version(node: Path) -> str:
    done = subprocess.run(  # noqa: S603
        [str(node), "--version"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip().lstrip("v")


@contextlib.contextmanager
def stopping(server: Server | UnleashServer) -> Iterator[None]:
    try:
        yield
    finally:
        server.stop()


def leftover_databases(admin_url: str, names: Sequence[str]) -> list[str]:
    url = make_url(admin_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT datname FROM pg_database")).scalars().all()
    finally:
        engine.dispose()
    return [name for name in names if name in rows]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 8 s runs; no docs")
    parser.add_argument("--users", type=int, default=16, help="locust users (default 16)")
    parser.add_argument("--run-time", type=int, help="seconds per locust run (default 20)")
    parser.add_argument("--warmup", type=float, help="seconds left out of each run (default 4)")
    parser.add_argument("--rounds", type=int, help="rounds over every endpoint (default 2)")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for the whole run")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL admin URL")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL for Graylane")
    parser.add_argument("--unleash-dir", type=Path, help="where Unleash is installed")
    parser.add_argument("--rebuild-unleash", action="store_true", help="reinstall Unleash")
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--write-docs", action="store_true", help="update docs even with --quick")
    docs.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    args.run_time = args.run_time or (8 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 4.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
    if args.warmup >= args.run_time:
        parser.error("--warmup must be shorter than --run-time")
    args.unleash_dir = args.unleash_dir or CACHE / f"unleash-{UNLEASH_VERSION}-node-{NODE_VERSION}"
    return args


@dataclass
class Outcome:
    rows: dict[tuple[str, str], Row]
    notes: list[str]
    complete: bool
    databases: list[str]


def run_both(args: argparse.Namespace, node: Path, deadline: float) -> Outcome:
    """Both servers on fresh databases: load, check, measure; then stop them and drop both."""
    tokens = unleash_tokens()
    admin_token = "gla_bench_" + secrets.token_hex(16)
    with (
        tempfile.TemporaryDirectory(prefix="graylane-peers-") as tmp_name,
        fresh_database(args.postgres) as unleash_db,
        fresh_database(args.postgres) as graylane_db,
    ):
        tmp = Path(tmp_name)
        databases = [str(make_url(unleash_db).database), str(make_url(graylane_db).database)]
        settings = unleash_settings(unleash_db, tokens)
        unleash = UnleashServer(node, args.unleash_dir, settings, tmp / "unleash.log")
        env = server_env(
            {
                "GRAYLANE_DATABASE_URL": graylane_db,
                "GRAYLANE_REDIS_URL": args.redis,
                "GRAYLANE_MIGRATE_ON_START": "false",
                "GRAYLANE_BOOTSTRAP_ADMIN_TOKEN": admin_token,
                "GRAYLANE_DATA_DIR": str(tmp / "graylane"),
            }
        )
        graylane = Server(env, tmp / "graylane.log")
        try:
            migrate(env)
            with stopping(unleash), stopping(graylane):
                t0 = time.monotonic()
                unleash.start()
                graylane.start()
                print(f"both servers up in {time.monotonic() - t0:.1f} s", flush=True)
                headers = {"Authorization": tokens["admin"]}
                with httpx.Client(base_url=unleash.url, headers=headers, timeout=30) as admin:
                    load_unleash(admin, FLAGS)
                headers = {"Authorization": f"Bearer {admin_token}"}
                with httpx.Client(base_url=graylane.url, headers=headers, timeout=30) as admin:
                    sdk_key = load_graylane(admin, FLAGS)
                targets = make_targets(unleash, graylane, tokens, sdk_key)
                notes = verify(targets, make_contexts(40, seed=99))
                for note in notes:
                    print(f"  {note}", flush=True)
                rows, complete = measure(targets, args, tmp, deadline)
        except Exception:
            for log in sorted(tmp.glob("*.log")):
                print(f"--- {log.name} (tail) ---\n{log.read_text(errors='replace')[-3000:]}")
            raise
    return Outcome(rows, notes, complete, databases)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    node = ensure_unleash(args.unleash_dir, args.rebuild_unleash)
    meta = {
        "command": "python load_tests/peers/unleash.py" + (" --quick" if args.quick else ""),
        "load": load,
        "node": node_version(node),
        "graylane": version("graylane"),
        "locust": version("locust"),
        "users": str(args.users),
        "run_time": str(args.run_time),
        "warmup": f"{args.warmup:g}",
        "rounds": str(args.rounds),
    }
    print(
        f"unleash-server {UNLEASH_VERSION} on Node {meta['node']}; Graylane {meta['graylane']}; "
        f"locust {meta['locust']}; {os.cpu_count()} CPUs, load average {load}",
        flush=True,
    )
    outcome = run_both(args, node, started + args.budget)
    left = leftover_databases(args.postgres, outcome.databases)
    if left:
        print(f"warning: databases still there: {', '.join(left)}")
    meta["wall"] = f"{(time.monotonic() - started) / 60:.1f} minutes"
    meta["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    results, ratios, goal = tables(outcome.rows)
    print(f"\n{results}\n\n{ratios}\n\n{goal}")
    for failure in first_failures(outcome.rows):
        print(f"first failure: {failure}")
    meta["complete"] = "yes" if outcome.complete else "no"
    if not outcome.complete:
        print(f"the time budget ({args.budget:g} s) ran out: some runs of the last rounds skipped")
    print(f"whole run: {meta['wall']}; load average at the end {meta['load_end']}")
    if args.write_docs or not (args.quick or args.no_docs):
        write_docs(docs_section(outcome.rows, meta, outcome.notes))
        print(f"written to {DOCS.relative_to(REPO)} between {BEGIN} and {END}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
