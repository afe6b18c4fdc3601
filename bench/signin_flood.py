"""Does a flood of admin UI sign-ins leave the kill switch working?

    python bench/signin_flood.py                    # both databases, both floods (~1 min)
    python bench/signin_flood.py --attempts 400 --concurrency 80
    python bench/signin_flood.py --skip-postgres

For each database (the embedded default, SQLite in a temporary data directory; and a
fresh PostgreSQL database, created for the run, migrated with `graylane-server migrate`
and dropped afterwards) and each flood, it starts `graylane-server serve` (one worker, no
Redis: the in-process bus and limiters, so no count outlives the run) on 127.0.0.1 and:

  1. creates one flag in production and reads the server's resident memory;
  2. sends ATTEMPTS sign-ins (GET the form, POST it), each with a username never seen
     before and a wrong password, CONCURRENCY at a time;
  3. meanwhile, one admin flips that flag's kill switch
     (`PUT /api/v1/flags/{key}/environments/production/enabled`) off and on, one request
     after another, from the flood's first request to its last, timing each answer;
  4. reads the server's peak resident memory (VmHWM in /proc: the peak since it started).

Two floods: `one address` sends every sign-in from 127.0.0.1 (the per-address limit
answers most of them 429); `many addresses` sends each from its own loopback address
(127.x.y.z), so no address limit applies and only the bound on password checks running
at once stands between the flood and the server.

The goal: every kill switch answers within 1 s, and the server's peak RSS stays under
500 MB.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from servers import Server, percentile, postgres_env, server_env, serving

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
FLAG = "checkout-v2"
ENV = "production"
GOAL_SWITCH_S = 1.0
GOAL_RSS_MB = 500.0
CSRF_FIELD = 'name="csrf_token" value="'


@dataclass
class Result:
    database: str
    flood: str
    statuses: Counter[int]
    flood_seconds: float
    switches: list[float]
    switch_errors: Counter[str]
    rss_before_mb: float
    rss_peak_mb: float


def memory_mb(pid: int, field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def sign_in(url: str, address: str | None) -> int:
    """One sign-in with a new username and a wrong password; its status (or 0 when the
    request itself failed)."""
    transport = httpx.HTTPTransport(local_address=address) if address else None
    try:
        with httpx.Client(base_url=url, timeout=30, transport=transport) as client:
            form = client.get("/ui/login").text
            start = form.index(CSRF_FIELD) + len(CSRF_FIELD)
            token = form[start : form.index('"', start)]
            response = client.post(
                "/ui/login",
                data={
                    "username": f"nobody-{uuid.uuid4().hex[:12]}",
                    "password": secrets.token_urlsafe(12),
                    "csrf_token": token,
                },
            )
            return response.status_code
    except httpx.HTTPError:
        return 0


def flip_switches(admin: httpx.Client, stop: threading.Event) -> tuple[list[float], Counter[str]]:
    """The kill switch off and on until `stop`: seconds per answer, and what went wrong."""
    times: list[float] = []
    errors: Counter[str] = Counter()
    enabled = False
    path = f"/api/v1/flags/{FLAG}/environments/{ENV}/enabled"
    while not stop.is_set():
        started = time.perf_counter()
        try:
            response = admin.put(path, json={"enabled": enabled})
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] += 1
            continue
        finally:
            times.append(time.perf_counter() - started)
        if response.status_code != 200:
            errors[str(response.status_code)] += 1
        enabled = not enabled
    return times, errors


def flood(
    server: Server, admin: httpx.Client, *, attempts: int, concurrency: int, many: bool
) -> tuple[Counter[int], float, list[float], Counter[str]]:
    addresses = [
        f"127.{(i // 250) % 250 + 1}.{i % 250 + 1}.{(os.getpid() % 250) + 1}" if many else None
        for i in range(attempts)
    ]
    stop = threading.Event()
    switches: list[float] = []
    errors: Counter[str] = Counter()

    def switch() -> None:
        found, failed = flip_switches(admin, stop)
        switches.extend(found)
        errors.update(failed)

    switcher = threading.Thread(target=switch)
    switcher.start()
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            statuses = Counter(pool.map(lambda a: sign_in(server.url, a), addresses))
    finally:
        elapsed = time.perf_counter() - started
        stop.set()
        switcher.join()
    return statuses, elapsed, switches, errors


def run(
    database: str, env: dict[str, str], log: Path, token: str, args: argparse.Namespace
) -> list[Result]:
    results = []
    for name, many in (("one address", False), ("many addresses", True)):
        with serving(env, log) as server:
            assert server.process is not None
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as admin:
                definition = {
                    "variants": {"on": True, "off": False},
                    "off_variant": "off",
                    "environments": {ENV: {"enabled": True, "fallthrough": {"variant": "on"}}},
                }
                if admin.get(f"/api/v1/flags/{FLAG}").status_code == 404:  # the first run
                    admin.put(f"/api/v1/flags/{FLAG}", json=definition).raise_for_status()
                before = memory_mb(server.process.pid, "VmRSS")
                statuses, seconds, switches, errors = flood(
                    server, admin, attempts=args.attempts, concurrency=args.concurrency, many=many
                )
                peak = memory_mb(server.process.pid, "VmHWM")
        results.append(Result(database, name, statuses, seconds, switches, errors, before, peak))
        print(f"  {database}, {name}: done in {seconds:.1f} s", flush=True)
    return results


def report(results: Sequence[Result]) -> bool:
    print()
    print(
        "| database | flood | sign-in answers | flood (s) | kill switches | max (ms) | "
        "p50 (ms) | RSS before (MB) | peak RSS (MB) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    met = True
    for r in results:
        answers = ", ".join(f"{n} x {s or 'failed'}" for s, n in sorted(r.statuses.items()))
        worst = max(r.switches) if r.switches else float("nan")
        errors = f" ({dict(r.switch_errors)} errors)" if r.switch_errors else ""
        print(
            f"| {r.database} | {r.flood} | {answers} | {r.flood_seconds:.1f} | "
            f"{len(r.switches)}{errors} | {worst * 1000:.0f} | "
            f"{percentile(r.switches, 50) * 1000:.0f} | {r.rss_before_mb:.0f} | "
            f"{r.rss_peak_mb:.0f} |"
        )
        met = met and worst < GOAL_SWITCH_S and not r.switch_errors and r.rss_peak_mb < GOAL_RSS_MB
    print()
    print(
        f"goal (every kill switch under {GOAL_SWITCH_S:g} s, none failed, peak RSS under "
        f"{GOAL_RSS_MB:g} MB): {'met' if met else 'NOT met'}"
    )
    return met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=200, help="sign-ins per flood (200)")
    parser.add_argument("--concurrency", type=int, default=40, help="sign-ins at once (40)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="an admin database URL")
    parser.add_argument("--skip-postgres", action="store_true", help="the embedded default only")
    parser.add_argument("--skip-embedded", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; server: graylane-server "
        f"serve (1 worker, no Redis); {args.attempts} sign-ins with new usernames, "
        f"{args.concurrency} at a time, while one admin flips a kill switch",
        flush=True,
    )
    token = "gla_bench_" + secrets.token_hex(16)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="graylane-signin-") as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_embedded:
            env = server_env(
                {"GRAYLANE_BOOTSTRAP_ADMIN_TOKEN": token, "GRAYLANE_DATA_DIR": str(tmp / "data")}
            )
            results += run("SQLite (embedded)", env, tmp / "embedded.log", token, args)
        if not args.skip_postgres:
            with postgres_env(args.postgres, token, tmp / "pg-data") as env:
                results += run("PostgreSQL", env, tmp / "postgres.log", token, args)
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
