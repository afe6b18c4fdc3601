"""How long guards take to read a ramp's observations from Redis.

    python bench/observations_read.py                # a 40-minute ramp, two stages a bucket
    python bench/observations_read.py --minutes 180

Files SDK-shaped reports straight through the Redis usage store: for every 10-second
bucket of the span, two rollout percentages (a stage change in each bucket, the worst
case), exposed and unexposed groups, `request`, `error` and a measured `latency`, every
one of the 32 unit clusters non-empty. Then times `signals.observations` over the whole
span (what the controller reads when evidence is carried from the ramp's start).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal

from graylane_server.ramps import signals
from graylane_server.ramps.observations import CLUSTERS
from graylane_server.usage.filing import file_report
from graylane_server.usage.schemas import EventCount, MetricsReport, Window
from graylane_server.usage.store import BUCKET_SECONDS, RedisUsageStore, bucket_of

DEFAULT_REDIS = os.environ.get("GRAYLANE_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def report(flag: str, end: float, rng: random.Random) -> MetricsReport:
    events = []
    for percentage in (Decimal(10), Decimal(50)):
        for group in ("exposed", "unexposed"):
            for name in ("request", "error", "latency"):
                clusters = [rng.randrange(1, 60) for _ in range(CLUSTERS)]
                valued = name == "latency"
                events.append(
                    EventCount(
                        flag=flag,
                        variant="on" if group == "exposed" else "off",
                        group=group,  # type: ignore[arg-type]
                        event=name,
                        count=sum(clusters),
                        percentage=percentage,
                        clusters=clusters,
                        sums=[n * 42.5 for n in clusters] if valued else None,
                        squares=[n * 2000.0 for n in clusters] if valued else None,
                    )
                )
    return MetricsReport(window=Window(start=end - 10, end=end), events=events)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=40, help="span of the ramp (40)")
    parser.add_argument("--reads", type=int, default=10, help="timed reads (10)")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL")
    args = parser.parse_args(argv)
    store = RedisUsageStore(args.redis)
    environment, flag = f"bench-{uuid.uuid4().hex[:8]}", "observed"
    now = time.time()
    buckets = args.minutes * 60 // BUCKET_SECONDS
    rng = random.Random(3)

    async def fill() -> None:
        for i in range(buckets):
            end = bucket_of(now) - i * BUCKET_SECONDS + 5
            filing = file_report(report(flag, end, rng), now)
            await store.record(environment, filing.at, filing.counts, filing.vectors, filing.until)

    asyncio.run(fill())
    since = now - args.minutes * 60
    times = []
    for _ in range(args.reads):
        started = time.perf_counter()
        seen = signals.observations(store, environment, flag, since, now + BUCKET_SECONDS)
        times.append((time.perf_counter() - started) * 1000)
    fields = sum(len(v) for v in store.read_all(environment, flag, since, now + 10).values())
    print(
        f"{args.minutes} min, {len(seen.slices)} slices, {fields:,} stored fields: "
        f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms per read"
    )
    asyncio.run(store.close())
    return 0


if __name__ == "__main__":
    sys.exit(main())
