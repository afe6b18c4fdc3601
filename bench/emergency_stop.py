"""How long an emergency stop takes to reach every connected SDK client.

    python bench/emergency_stop.py                 # 20 stops, 100 clients (about 30 s)
    python bench/emergency_stop.py --quick         # 5 stops
    python bench/emergency_stop.py --stops 50 --clients 200

Starts `graylane-server serve` as a subprocess on a fresh PostgreSQL database (created for
the run, migrated with `graylane-server migrate`, dropped afterwards) with Redis, and
connects Graylane `Client`s (stream=True) to it, all in THIS process, so every timestamp
is `time.perf_counter()` on one clock. The environment has FLAGS boolean flags serving
`on` (one of them under a running ramp at 50%). One stop:

  t0       taken right before `POST /api/v1/environments/production/emergency-stop`
  arrival  taken first thing in a client's `on_change` callback, once that client serves
           the off variant of every flag

`all clients` is the time until the LAST client serves off (the max over clients);
`per client` pools every client's own latency. Between stops the flags are enabled
again (and the ramp resumed) and every client is seen serving `on` again, so stops never
overlap.

The latency includes the admin request and its one transaction (every flag disabled,
every running ramp paused, an audit entry per flag), the notice over Redis, the server
rebuilding the environment's config, the SSE notice to every stream, every client
refetching the config and compiling it. Clients and server share this machine's cores.

The goal: every one of 100 connected clients serves off within 300 ms.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import secrets
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import mmh3

from graylane import Change, Client
from servers import Server, cpu_seconds, percentile, postgres_server, raise_file_limit

ENV = "production"
FLAGS = ("checkout-v2", "search-ranking", "dark-mode")
RAMPED = "checkout-v2"
GOAL_MS = 300.0
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
ROUND_TIMEOUT = 15.0


def inside_unit(flag: str, percentage: float) -> str:
    """A unit inside `flag`'s rollout at `percentage` (contract 2, written out)."""
    for i in range(1000):
        unit = f"user-{i}"
        if mmh3.hash(f"{flag}:{unit}", 0, signed=False) % 100_000 < round(percentage * 1000):
            return unit
    raise AssertionError("no unit inside the rollout")  # pragma: no cover


CONTEXT = {"targetingKey": inside_unit(RAMPED, 50)}
"""Inside the ramped flag's 50%, so `on` means on for every flag."""


# --- the server ------------------------------------------------------------------------


# --- the clients -----------------------------------------------------------------------


def serves(client: Client, value: bool) -> bool:
    return all(client.is_enabled(flag, CONTEXT, default=not value) is value for flag in FLAGS)


class Round:
    """One stop (or one re-enable): when each client served the target value."""

    def __init__(self, target: bool, clients: int) -> None:
        self.target = target
        self.arrivals: list[float | None] = [None] * clients
        self.count = 0
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.clients = clients

    def arrived(self, index: int, now: float) -> None:
        with self.lock:
            if self.arrivals[index] is not None:
                return
            self.arrivals[index] = now
            self.count += 1
            if self.count == self.clients:
                self.done.set()


class Fleet:
    def __init__(self, url: str, sdk_key: str, count: int) -> None:
        self.round: Round | None = None
        self.clients: list[Client] = []
        started = time.perf_counter()
        for start in range(0, count, 50):  # in batches, not to stampede the server
            batch = [self._client(url, sdk_key, i) for i in range(start, min(start + 50, count))]
            for client in batch:
                client.wait_ready(60)
        self.connect_s = time.perf_counter() - started

    def _client(self, url: str, sdk_key: str, index: int) -> Client:
        client = Client(url, sdk_key, stream=True, flush_interval=3600, poll_interval=30)

        def changed(change: Change) -> None:
            now = time.perf_counter()
            current = self.round
            if current is not None and serves(client, current.target):
                current.arrived(index, now)

        client.on_change(changed)
        self.clients.append(client)
        return client

    def begin(self, target: bool) -> Round:
        self.round = current = Round(target, len(self.clients))
        for index, client in enumerate(self.clients):  # already there (a late callback)
            if serves(client, target):
                current.arrived(index, time.perf_counter())
        return current

    def close(self) -> None:
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(Client.close, self.clients))


# --- the measurement -------------------------------------------------------------------


def flag_definition(key: str) -> dict[str, Any]:
    config: dict[str, Any] = {"enabled": True, "fallthrough": {"variant": "on"}}
    if key == RAMPED:
        config = {
            "enabled": True,
            "fallthrough": {
                "rollout": {"percentage": 0, "variants": {"on": 100}},
                "otherwise": "off",
            },
            "ramp": {
                "stages": [1, 50, 100],
                "min_stage_duration": "24h",  # the controller never advances it here
                "guards": [{"kind": "relative", "metric": "error_rate", "max": 0.5}],
            },
        }
    return {
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": {ENV: config},
    }


def setup(admin: httpx.Client) -> str:
    """The flags (the ramped one advanced to 50%), and an SDK token for production."""
    for key in FLAGS:
        admin.put(f"/api/v1/flags/{key}", json=flag_definition(key)).raise_for_status()
    ramp = f"/api/v1/flags/{RAMPED}/environments/{ENV}/ramp"
    started = admin.post(f"{ramp}/start")
    started.raise_for_status()
    advanced = admin.post(f"{ramp}/advance", headers={"If-Match": f'"{started.json()["version"]}"'})
    if advanced.status_code != 200 or advanced.json()["percentage"] != 50:
        # A person may advance before the stage's time is up; the controller may not.
        raise RuntimeError(f"could not bring the ramp to 50%: {advanced.text}")
    response = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": ENV})
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


def restore(admin: httpx.Client) -> None:
    """Every flag on again, the paused ramp running again."""
    for key in FLAGS:
        admin.put(
            f"/api/v1/flags/{key}/environments/{ENV}/enabled", json={"enabled": True}
        ).raise_for_status()
    admin.post(f"/api/v1/flags/{RAMPED}/environments/{ENV}/ramp/resume").raise_for_status()


def measure(
    server: Server, admin: httpx.Client, sdk_key: str, *, clients: int, stops: int
) -> dict[str, Any]:
    print(f"  {clients} clients: connecting ...", end="", flush=True)
    fleet = Fleet(server.url, sdk_key, clients)
    all_ms: list[float] = []
    each_ms: list[float] = []
    post_ms: list[float] = []
    server_cpu_ms: list[float] = []
    client_cpu_ms: list[float] = []
    missed = 0
    assert server.process is not None
    pid = server.process.pid
    try:
        deadline = time.monotonic() + 60
        while server.streams() < clients and time.monotonic() < deadline:
            time.sleep(0.1)
        streams = server.streams()
        if not all(serves(c, True) for c in fleet.clients):
            raise RuntimeError("the clients do not serve `on` before the first stop")
        print(f" {streams} streams in {fleet.connect_s:.1f}s; {stops} stops ...", flush=True)
        for n in range(stops):
            this = fleet.begin(False)
            cpu = (cpu_seconds(pid), cpu_seconds())
            t0 = time.perf_counter()
            response = admin.post(
                f"/api/v1/environments/{ENV}/emergency-stop",
                json={"reason": f"benchmark stop {n + 1}"},
            )
            post_ms.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
            body = response.json()
            if sorted(body["flags_disabled"]) != sorted(FLAGS) or body["ramps_paused"] != [RAMPED]:
                raise RuntimeError(f"unexpected stop result: {body}")
            if not this.done.wait(ROUND_TIMEOUT):
                missed += 1
            server_cpu_ms.append((cpu_seconds(pid) - cpu[0]) * 1000)
            client_cpu_ms.append((cpu_seconds() - cpu[1]) * 1000)
            got = [(t - t0) * 1000 for t in this.arrivals if t is not None]
            each_ms.extend(got)
            if len(got) == clients:
                all_ms.append(max(got))
            # Back on, seen by every client, before the next stop.
            back = fleet.begin(True)
            restore(admin)
            if not back.done.wait(ROUND_TIMEOUT):
                raise RuntimeError("the clients did not all serve `on` again")
            fleet.round = None
            time.sleep(0.05)  # let the last change's stragglers (304s) settle
    finally:
        fleet.close()
    return {
        "clients": clients,
        "streams": streams,
        "stops": stops,
        "all": all_ms,
        "each": each_ms,
        "post": post_ms,
        "server_cpu": server_cpu_ms,
        "client_cpu": client_cpu_ms,
        "missed": missed,
    }


def report(result: dict[str, Any]) -> bool:
    every, each, post = result["all"], result["each"], result["post"]
    print()
    print(
        f"{'clients':>7} {'streams':>7} {'stops':>5} {'all-clients p50':>15} {'p99':>7} "
        f"{'max':>7} {'per-client p50':>14} {'p99':>7} {'POST p50':>8} {'p99':>7} {'missed':>6}"
    )
    print(
        f"{result['clients']:>7} {result['streams']:>7} {result['stops']:>5} "
        f"{percentile(every, 50):>12.1f} ms {percentile(every, 99):>7.1f} "
        f"{max(every, default=math.nan):>7.1f} {percentile(each, 50):>11.1f} ms "
        f"{percentile(each, 99):>7.1f} {percentile(post, 50):>5.1f} ms "
        f"{percentile(post, 99):>7.1f} "
        f"{result['missed']:>6}"
    )
    print(
        f"CPU per stop, until every client served off: server "
        f"{percentile(result['server_cpu'], 50):.0f} ms, this process (the {result['clients']} "
        f"clients) {percentile(result['client_cpu'], 50):.0f} ms (p50), on "
        f"{os.cpu_count()} shared CPUs"
    )
    print(
        "(ms from right before the emergency-stop POST until on_change shows the off variant "
        "of every flag: `all clients` = until the last client, `per client` = each client; "
        "POST = the stop request's own round trip; missed = stops not seen by every client "
        f"within {ROUND_TIMEOUT:g} s)"
    )
    print(f"each stop, all clients (ms): {' '.join(f'{v:.0f}' for v in every)}")
    met = result["missed"] == 0 and max(every, default=math.inf) < GOAL_MS
    worst = max(every, default=math.nan)
    print(
        f"\ngoal: every one of {result['clients']} clients serves off within {GOAL_MS:g} ms: "
        f"{'met' if met else 'NOT met'} (worst of {result['stops']} stops {worst:.1f} ms, "
        f"p99 {percentile(every, 99):.1f} ms; {sum(v >= GOAL_MS for v in every)} of "
        f"{len(every)} stops at or over {GOAL_MS:g} ms)"
    )
    return met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 stops")
    parser.add_argument("--stops", type=int, help="stops to time (default 20)")
    parser.add_argument("--clients", type=int, default=100, help="connected clients (100)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="an admin database URL")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL")
    args = parser.parse_args(argv)
    stops = args.stops or (5 if args.quick else 20)

    limit = raise_file_limit(max(4096, args.clients * 4 + 256))
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, open files limit {limit}; "
        "server: graylane-server serve (1 worker) on PostgreSQL + Redis; clients in this "
        f"process; {len(FLAGS)} flags in {ENV}, one under a running ramp"
    )
    token = "gla_bench_" + secrets.token_hex(16)
    with postgres_server(args.postgres, token, args.redis, "graylane-stop-") as server:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as admin:
            sdk_key = setup(admin)
            result = measure(server, admin, sdk_key, clients=args.clients, stops=stops)
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
