"""Server CPU per SDK metrics report (`POST /api/v1/sdk/metrics`).

    python bench/metrics_ingest.py                  # 3,000 reports per body
    python bench/metrics_ingest.py --reports 500 --bodies legacy

Starts `graylane-server serve` (one worker) on a fresh PostgreSQL database (created for
the run, dropped afterwards) with Redis, mints an SDK token, then posts reports one after
another over one keep-alive connection and reads the server process's CPU time (user +
system, from /proc) before and after: CPU per report is the difference over the count.
Each body is what an SDK flushes after 10 seconds: evaluation counts for 12 flags and
request/error counts for the exposed and unexposed groups of 3 ramped flags.

- `legacy`: the events as SDKs without rollout percentages send them.
- `clusters`: the same events with the percentage and the 32 per-cluster counts.
- `values`: `clusters`, plus a `latency` event per group with sums and squares.

The process shares the machine's cores with this client and with Redis and PostgreSQL, so
run it on a quiet machine and compare the bodies within one run.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx

from servers import Server, cpu_seconds, postgres_server

DEFAULT_POSTGRES = os.environ.get(
    "GRAYLANE_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DEFAULT_REDIS = os.environ.get("GRAYLANE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
CLUSTERS = 32
FLAGS = [f"bench-flag-{i}" for i in range(12)]


def spread(rng: random.Random, total: int) -> list[int]:
    counts = [0] * CLUSTERS
    for _ in range(min(total, 400)):
        counts[rng.randrange(CLUSTERS)] += 1
    counts[0] += total - sum(counts)
    return counts


def body(rng: random.Random, kind: str) -> dict[str, Any]:
    now = time.time()
    events: list[dict[str, Any]] = []
    for flag in FLAGS[:3]:
        for variant, group in (("on", "exposed"), ("off", "unexposed")):
            names = ["request", "error"] + (["latency"] if kind == "values" else [])
            for name in names:
                count = rng.randrange(1, 2000) if name != "error" else rng.randrange(3)
                event: dict[str, Any] = {
                    "flag": flag,
                    "variant": variant,
                    "group": group,
                    "event": name,
                    "count": count,
                }
                if kind != "legacy":
                    clusters = spread(rng, count)
                    event["percentage"] = 10
                    event["clusters"] = clusters
                    if name == "latency":
                        event["sums"] = [n * rng.uniform(20, 80) for n in clusters]
                        event["squares"] = [n * rng.uniform(400, 6400) for n in clusters]
                events.append(event)
    return {
        "config_version": 1,
        "window": {"start": now - 10, "end": now},
        "evaluations": [
            {"flag": f, "variant": v, "count": rng.randrange(1, 5000)}
            for f in FLAGS
            for v in ("on", "off")
        ],
        "events": events,
        "dropped": 0,
    }


def measure(server: Server, token: str, kind: str, reports: int) -> tuple[float, float]:
    """(server CPU ms per report, wall ms per report)."""
    assert server.process is not None
    rng = random.Random(7)
    bodies = [body(rng, kind) for _ in range(50)]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        for b in bodies[:20]:  # warm up: connections, scripts, caches
            assert http.post("/api/v1/sdk/metrics", json=b).status_code == 202
        before, started = cpu_seconds(server.process.pid), time.perf_counter()
        for i in range(reports):
            response = http.post("/api/v1/sdk/metrics", json=bodies[i % len(bodies)])
            assert response.status_code == 202, response.text
        wall = time.perf_counter() - started
        cpu = cpu_seconds(server.process.pid) - before
    return cpu / reports * 1000, wall / reports * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=3000, help="reports per body (3000)")
    parser.add_argument("--bodies", default="legacy,clusters,values", help="legacy,clusters,values")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="an admin database URL")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL")
    args = parser.parse_args(argv)
    admin_token = "gla_bench_" + secrets.token_hex(16)
    with postgres_server(args.postgres, admin_token, args.redis, "graylane-ingest-") as server:
        minted = httpx.post(
            f"{server.url}/api/v1/tokens",
            json={"kind": "sdk", "environment": "production"},
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=10,
        )
        token = minted.json()["token"]
        print(f"{args.reports} reports per body, one connection, server on Redis")
        print("| body | bytes | server CPU ms / report | wall ms / report |")
        print("|---|---:|---:|---:|")
        for kind in args.bodies.split(","):
            size = len(httpx.Request("POST", "/", json=body(random.Random(7), kind)).content)
            cpu, wall = measure(server, token, kind, args.reports)
            print(f"| {kind} | {size:,} | {cpu:.3f} | {wall:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
