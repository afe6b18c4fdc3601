"""Where one SDK report is filed: by the window the SDK measured it in, not by when it
arrived, and under the rollout percentage that produced each count.

A report is filed in the bucket of its window's end. Counts at a new percentage can only
have been made after the SDK began serving it, so the end of their window is never
before the stage that produced them began, however late the report arrives: a guard
reading a stage from the bucket it began in sees all of them, and counts of the stage
before stay under the percentage that produced them (no mixing of stages, hence no
Simpson's paradox). A window ending in the future (a clock ahead of the server's) or
longer ago than counts are kept (a clock far behind) is filed at arrival instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from graylane_server.usage.schemas import MetricsReport, Window
from graylane_server.usage.series import (
    evaluation_series,
    event_series,
    observed_series,
    percentage_text,
    unattributed_series,
)
from graylane_server.usage.store import RETENTION_SECONDS, Tally, Vectors

GUARDED = ("exposed", "unexposed")


@dataclass(slots=True)
class Filing:
    at: float
    """When the report is filed (Unix seconds): its bucket holds everything below."""
    counts: Tally = field(default_factory=dict)
    vectors: Vectors = field(default_factory=dict)
    """Per unit cluster: counts (`o|…`) and the excess of sums and squares (`s|…`, `q|…`)."""
    until: dict[str, float] = field(default_factory=dict)
    """Flags with counts guards read, each with the window's end (`at`)."""


def filed_at(window: Window | None, arrival: float) -> float:
    if window is None or not arrival - RETENTION_SECONDS < window.end <= arrival:
        return arrival
    return window.end


def file_report(report: MetricsReport, arrival: float) -> Filing:
    filing = Filing(filed_at(report.window, arrival))
    merged = filing.counts
    for e in report.evaluations:
        series = merged.setdefault(e.flag, {})
        name = evaluation_series(e.variant)
        series[name] = series.get(name, 0) + e.count
    for v in report.events:
        series = merged.setdefault(v.flag, {})
        name = event_series(v.group, v.variant, v.event)
        series[name] = series.get(name, 0) + v.count
        if v.group not in GUARDED:
            continue
        if v.percentage is None or v.clusters is None:
            name = unattributed_series(v.group, v.event)
            series[name] = series.get(name, 0) + v.count
            continue
        filing.until[v.flag] = filing.at
        vectors = filing.vectors.setdefault(v.flag, {})
        percentage = percentage_text(v.percentage)
        _add(vectors, observed_series("o", percentage, v.group, v.event), v.clusters)
        if v.sums is not None and v.squares is not None:
            # Kept as the excess over a plain event's value 1, so plain events (most of
            # them) write nothing here.
            sums = [total - n for total, n in zip(v.sums, v.clusters, strict=True)]
            squares = [total - n for total, n in zip(v.squares, v.clusters, strict=True)]
            if any(sums):
                _add(vectors, observed_series("s", percentage, v.group, v.event), sums)
            if any(squares):
                _add(vectors, observed_series("q", percentage, v.group, v.event), squares)
    return filing


def _add(vectors: dict[str, Sequence[float]], name: str, values: Sequence[float]) -> None:
    held = vectors.get(name)
    if held is None:
        vectors[name] = list(values)
    else:
        vectors[name] = [a + b for a, b in zip(held, values, strict=True)]
