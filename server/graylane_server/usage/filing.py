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

from dataclasses import dataclass, field
from functools import lru_cache

from graylane_server.ramps.observations import CLUSTERS
from graylane_server.usage.schemas import MetricsReport, Window
from graylane_server.usage.series import (
    evaluation_series,
    event_series,
    observed_prefix,
    percentage_text,
    unattributed_series,
)
from graylane_server.usage.store import RETENTION_SECONDS, Amounts, Tally

GUARDED = ("exposed", "unexposed")


@dataclass(slots=True)
class Filing:
    at: float
    """When the report is filed (Unix seconds): its bucket holds everything below."""
    counts: Tally = field(default_factory=dict)
    amounts: Amounts = field(default_factory=dict)
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
        names = _names(percentage_text(v.percentage), v.group, v.event)
        for name, n in zip(names[0], v.clusters, strict=True):
            if n:
                series[name] = series.get(name, 0) + n
        if v.sums is not None and v.squares is not None:
            amounts = filing.amounts.setdefault(v.flag, {})
            # Stored as the excess over a plain event's value 1, so plain events (most
            # of them) write nothing here.
            cells = zip(names[1], names[2], v.clusters, v.sums, v.squares, strict=True)
            for s, q, n, total, squares in cells:
                if total != n:
                    amounts[s] = amounts.get(s, 0.0) + (total - n)
                if squares != n:
                    amounts[q] = amounts.get(q, 0.0) + (squares - n)
    return filing


@lru_cache(maxsize=4096)
def _names(percentage: str, group: str, event: str) -> tuple[tuple[str, ...], ...]:
    """The `o|`, `s|` and `q|` names of every cluster (built once per event and stage)."""
    tail = observed_prefix(percentage, group, event)[1:]
    return tuple(tuple(f"{kind}{tail}{c}" for c in range(CLUSTERS)) for kind in "osq")
