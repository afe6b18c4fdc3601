"""Prometheus metrics, on a registry of the app's own (several apps can share a process
in tests without clashing)."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("graylane.access")


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "graylane_http_requests_total",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "graylane_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.errors = Counter(
            "graylane_http_errors_total",
            "Responses with a 5xx status, by route.",
            ["route"],
            registry=self.registry,
        )
        self.config_version = Gauge(
            "graylane_config_version",
            "Config version served, by environment.",
            ["environment"],
            registry=self.registry,
        )
        self.sdk_dropped = Counter(
            "graylane_sdk_dropped_counts_total",
            "Counts SDKs dropped because their buffers were full, by environment.",
            ["environment"],
            registry=self.registry,
        )
        self.streams = Gauge(
            "graylane_sse_streams", "Connected SDK streams.", registry=self.registry
        )

        # Label children by (route, method, status), bound once: `labels()` checks and
        # looks its values up under a lock on every call.
        self._bound: dict[tuple[str, str, int], tuple[Counter, Histogram, Counter | None]] = {}

    def watch_streams(self, count: Callable[[], int]) -> None:
        self.streams.set_function(count)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        bound = self._bound.get(key)
        if bound is None:
            bound = self._bound[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
                self.errors.labels(route) if status >= 500 else None,
            )
        requests, latency, errors = bound
        requests.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()


class MetricsMiddleware:
    """Counts and times every request by its route template (not its raw path, which
    would make one series per flag key)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, *, access_log: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            elapsed = time.perf_counter() - start
            self.metrics.observe_request(route, method, status, elapsed)
            if self.access_log:
                log.info(
                    "request",
                    method=method,
                    route=route,
                    path=scope["path"],
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
