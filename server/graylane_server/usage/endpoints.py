"""SDKs post counts; people (and guards) read them per flag and window."""

from __future__ import annotations

import email.message
import json
import time
from collections import Counter, defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from graylane_server.deps import RuntimeDep, Viewer, runtime_of, sdk_client
from graylane_server.direct_routes import DirectRoutes
from graylane_server.errors import InvalidDocument, responses
from graylane_server.usage.filing import file_report
from graylane_server.usage.schemas import Accepted, FlagUsage, MetricsReport, SeriesPoint
from graylane_server.usage.store import BUCKET_SECONDS, RETENTION_SECONDS, bucket_of

router = APIRouter(tags=["metrics"])
LATEST_SECONDS = 253_402_300_799
"""The last second of the year 9999: the latest window bound accepted."""
direct = DirectRoutes()
"""Metric flushes, posted by every SDK every few seconds: served ahead of FastAPI's
routing."""

_REPORT: TypeAdapter[MetricsReport] = TypeAdapter(MetricsReport)
_NO_BODY = object()


async def _documents_the_body(report: MetricsReport) -> None:
    """Declares the body, for the OpenAPI document (and for FastAPI, should a request ever
    reach the route through its routing). `post_metrics` reads and validates it itself."""


async def _json_body(request: Request) -> Any:
    """The body, read as FastAPI reads a JSON body parameter: parsed only when declared
    JSON, `_NO_BODY` when empty, and failing with the same errors."""
    try:
        raw = await request.body()
        if not raw:
            return _NO_BODY
        if not _declared_json(request.headers.get("content-type")):
            return raw  # fails validation as "not an object", as in FastAPI
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error], body=exc.doc) from exc
    except Exception as exc:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


def _declared_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _validate(body: Any) -> MetricsReport:
    """The report, or the errors FastAPI reports for a body parameter (under `body`)."""
    if body is _NO_BODY:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    try:
        return _REPORT.validate_python(body, from_attributes=True)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=body) from None


@direct.route(
    router,
    "POST",
    "/api/v1/sdk/metrics",
    status_code=202,
    response_model=Accepted,
    responses=responses(InvalidDocument),
    dependencies=[Depends(_documents_the_body)],
)
async def post_metrics(request: Request) -> Response:
    """Aggregated evaluation and event counts from an SDK, stored in 10-second buckets
    by the end of the window the SDK counted them in, under the rollout percentage that
    produced them (see `usage.filing`)."""
    # In FastAPI's order: an unparseable body, then the token, then the body's contents.
    body = await _json_body(request)
    client = await sdk_client(request)
    assert client.environment is not None
    report = _validate(body)
    runtime = runtime_of(request)
    # Answered only once every count is stored: no 202 stands for counts held in memory.
    filing = file_report(report, time.time())
    await runtime.usage.record(
        client.environment, filing.at, filing.counts, filing.vectors, filing.until
    )
    if report.dropped:
        runtime.metrics.sdk_dropped.labels(client.environment).inc(report.dropped)
    return JSONResponse({"accepted": len(report.evaluations) + len(report.events)}, status_code=202)


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
        Query(
            ge=0,
            le=LATEST_SECONDS,
            allow_inf_nan=False,
            description="Unix seconds; default an hour ago.",
        ),
    ] = None,
    until: Annotated[
        float | None,
        Query(
            ge=0, le=LATEST_SECONDS, allow_inf_nan=False, description="Unix seconds; default now."
        ),
    ] = None,
) -> FlagUsage:
    """Counts the SDKs reported for one flag: totals per variant, per group and event, and
    a series per bucket for charts. Counts are kept for three days, so a window reaches
    back at most that far from `until`, and no further ahead than now."""
    now = time.time()
    end = now if until is None else min(until, now + BUCKET_SECONDS)
    start = end - 3600 if since is None else since
    start = min(max(start, end - RETENTION_SECONDS), end)  # a window ahead of `until` is empty
    buckets = await run_in_threadpool(runtime.usage.read, environment, key, start, end)
    evaluations: Counter[str] = Counter()
    events: defaultdict[str, Counter[str]] = defaultdict(Counter)
    series: defaultdict[str, Counter[int]] = defaultdict(Counter)
    unattributed: Counter[str] = Counter()
    for bucket, counts in buckets.items():
        for name, count in counts.items():
            parts = name.split("|")
            if parts[0] == "v":
                evaluations[parts[1]] += count
            elif parts[0] == "e" and len(parts) == 4:
                group, variant, event = parts[1:]
                events[f"{group}/{event}"][variant] += count
                series[f"{group}/{event}"][bucket] += count
            elif parts[0] == "x" and len(parts) == 3:
                unattributed[f"{parts[1]}/{parts[2]}"] += count
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
        unattributed=dict(unattributed),
    )
