"""Running and measuring the locust rounds: one headless locust run per endpoint and
server (`locustfile.py` next to this file), the server's CPU over the whole run, its
resident memory after it, the load generator's CPU, and the response times locust kept
after the warm-up; rounds alternate which server goes first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from harness import children_cpu_seconds, cpu_seconds, rss_bytes
from targets import ENDPOINTS, Target

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


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


def rss_kib(pid: int) -> int:
    """Resident memory (VmRSS) in KiB."""
    return int(rss_bytes(pid)) // 1024


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
    cpu0, children0, wall0 = cpu_seconds(target.pid), children_cpu_seconds(), time.monotonic()
    with (tmp / f"locust-{index:02d}.log").open("wb") as log:
        subprocess.run(  # noqa: S603
            command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=run_time + 90,
            check=False,
        )  # fmt: skip
    wall = time.monotonic() - wall0
    cpu = cpu_seconds(target.pid) - cpu0
    locust_cpu = children_cpu_seconds() - children0
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
