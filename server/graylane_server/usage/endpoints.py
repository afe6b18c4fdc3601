"""SDKs post counts; people (and guards) read them per flag and window."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from graylane_server.deps import RuntimeDep, SdkClient, Viewer
from graylane_server.errors import InvalidDocument, responses
from graylane_server.usage.schemas import Accepted, FlagUsage, MetricsReport, SeriesPoint
from graylane_server.usage.store import (
    BUCKET_SECONDS,
    RETENTION_SECONDS,
    Count,
    bucket_of,
    evaluation_series,
    event_series,
)

router = APIRouter(tags=["metrics"])


@router.post(
    "/api/v1/sdk/metrics",
    status_code=202,
    response_model=Accepted,
    responses=responses(InvalidDocument),
)
async def post_metrics(report: MetricsReport, client: SdkClient, runtime: RuntimeDep) -> Accepted:
    """Aggregated evaluation and event counts from an SDK, stored in 10-second buckets
    by the time they arrive."""
    assert client.environment is not None
    counts = [Count(e.flag, evaluation_series(e.variant), e.count) for e in report.evaluations]
    counts += [
        Count(e.flag, event_series(e.group, e.variant, e.event), e.count) for e in report.events
    ]
    await run_in_threadpool(runtime.usage.add, client.environment, time.time(), counts)
    if report.dropped:
        runtime.metrics.sdk_dropped.labels(client.environment).inc(report.dropped)
    return Accepted(accepted=len(counts))


@router.get(
    "/api/v1/flags/{key}/environments/{environment}/metrics",
    response_model=FlagUsage,
    responses=responses(),
)
async def read_metrics(
    key: str,
    environment: str,
    runtime: RuntimeDep,
    _: Viewer,
    since: Annotated[
        float | None,
        Query(ge=0, allow_inf_nan=False, description="Unix seconds; default an hour ago."),
    ] = None,
    until: Annotated[
        float | None, Query(ge=0, allow_inf_nan=False, description="Unix seconds; default now.")
    ] = None,
) -> FlagUsage:
    """Counts the SDKs reported for one flag: totals per variant, per group and event, and
    a series per bucket for charts. Counts are kept for three days, so a window reaches
    back at most that far from `until`, and no further ahead than now."""
    now = time.time()
    end = now if until is None else min(until, now + BUCKET_SECONDS)
    start = end - 3600 if since is None else since
    start = max(start, end - RETENTION_SECONDS)
    buckets = await run_in_threadpool(runtime.usage.read, environment, key, start, end)
    evaluations: Counter[str] = Counter()
    events: defaultdict[str, Counter[str]] = defaultdict(Counter)
    series: defaultdict[str, Counter[int]] = defaultdict(Counter)
    for bucket, counts in buckets.items():
        for name, count in counts.items():
            parts = name.split("|")
            if parts[0] == "v":
                evaluations[parts[1]] += count
            elif parts[0] == "e" and len(parts) == 4:
                group, variant, event = parts[1:]
                events[f"{group}/{event}"][variant] += count
                series[f"{group}/{event}"][bucket] += count
    return FlagUsage(
        flag=key,
        environment=environment,
        since=bucket_of(start),
        until=int(end),
        bucket_seconds=BUCKET_SECONDS,
        evaluations=dict(evaluations),
        events={name: dict(c) for name, c in events.items()},
        series={
            name: [SeriesPoint(at=at, count=n) for at, n in sorted(points.items())]
            for name, points in series.items()
        },
    )
