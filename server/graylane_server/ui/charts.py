"""Chart geometry for inline SVG: the ramp's stages over time, and each guard's metric for
the exposed and unexposed groups. Pure: numbers in, coordinates and labels out; the
templates draw them."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

WIDTH = 1080
"""Charts are drawn about as wide as they are shown, so their text keeps its size."""
LEFT, RIGHT, TOP = 56, 24, 16


@dataclass(frozen=True, slots=True)
class Tick:
    at: float
    """Pixel position along its axis."""
    label: str


@dataclass(frozen=True, slots=True)
class Marker:
    x: float
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Line:
    path: str
    css: str
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    lines: tuple[Line, ...] = ()
    area: str | None = None
    thresholds: tuple[Line, ...] = ()
    threshold_labels: tuple[Marker, ...] = ()
    markers: tuple[Marker, ...] = ()
    now_x: float | None = None
    current: Marker | None = None
    empty: str | None = None
    """Said in the middle of the chart when there is nothing to draw."""
    legend: tuple[tuple[str, str], ...] = field(default=())
    """(css class, label) pairs."""


def _clock(t: float, span: float) -> str:
    moment = datetime.fromtimestamp(t, UTC)
    return moment.strftime("%d %b %H:%M" if span > 36 * 3600 else "%H:%M")


def _time_ticks(
    t0: float, t1: float, x: Callable[[float], float], count: int = 5
) -> tuple[Tick, ...]:
    span = t1 - t0
    return tuple(
        Tick(x(t0 + span * i / (count - 1)), _clock(t0 + span * i / (count - 1), span))
        for i in range(count)
    )


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


# --- the stages of a ramp over time ------------------------------------------------------


def _planned(
    stages: Sequence[float],
    *,
    status: str,
    stage: int,
    stage_started_at: float | None,
    min_stage_duration: float,
    now: float,
) -> list[tuple[float, float]]:
    """The rest of the plan from now, one minimum stage duration per stage."""
    if status == "draft":
        return [(now + i * min_stage_duration, float(s)) for i, s in enumerate(stages)]
    if status != "running" or not 0 <= stage < len(stages) - 1:
        return []
    begun = stage_started_at if stage_started_at is not None else now
    next_at = max(now, begun + min_stage_duration)
    later = [
        (next_at + (i - stage - 1) * min_stage_duration, float(stages[i]))
        for i in range(stage + 1, len(stages))
    ]
    return [(now, float(stages[stage])), *later]


def stage_chart(
    *,
    stages: Sequence[float],
    history: Sequence[tuple[float, float]],
    status: str,
    stage: int,
    stage_started_at: float | None,
    min_stage_duration: float,
    now: float,
    width: int = WIDTH,
    height: int = 250,
) -> Chart:
    """`history`: (time, percentage) at each transition since the ramp (re)started, oldest
    first. The chart draws it as a step line up to now, then the rest of the plan as a
    dashed projection at one `min_stage_duration` per stage while the ramp runs."""
    bottom = height - 30
    levels = sorted({0.0, *(float(s) for s in stages)})

    def y(percentage: float) -> float:
        # Stages are spaced evenly, whatever their values: 1% and 10% stay readable next
        # to 50% and 100%. Percentages between two stages sit proportionally between them.
        p = max(levels[0], min(levels[-1], percentage))
        i = bisect.bisect_left(levels, p)
        if i < len(levels) and levels[i] == p:
            position = float(i)
        else:
            low, high = levels[i - 1], levels[i]
            position = i - 1 + (p - low) / (high - low)
        return bottom - (bottom - TOP) * position / max(1, len(levels) - 1)

    points = [(t, float(p)) for t, p in history]
    last_stage = len(stages) - 1
    planned = _planned(
        stages,
        status=status,
        stage=stage,
        stage_started_at=stage_started_at,
        min_stage_duration=min_stage_duration,
        now=now,
    )
    t0 = points[0][0] if points else now
    t1 = max([now, *(t for t, _ in planned)])
    if planned:
        t1 += min_stage_duration * 0.35  # room to show the last planned stage
    if t1 - t0 < 600:
        t0 = min(t0, now - (600 - (t1 - t0)) * 0.5)
        t1 = t0 + 600 if t1 - t0 < 600 else t1
    right = width - RIGHT

    def x(t: float) -> float:
        return LEFT + (right - LEFT) * (t - t0) / (t1 - t0)

    actual = ""
    area = None
    current = None
    if points:
        actual = f"M{x(points[0][0]):.1f},{y(points[0][1]):.1f}"
        for t, p in points[1:]:
            actual += f" H{x(t):.1f} V{y(p):.1f}"
        actual += f" H{x(now):.1f}"
        area = actual + f" V{bottom:.1f} H{x(points[0][0]):.1f} Z"
        current_pct = points[-1][1]
        label = f"{_fmt(current_pct)}%"
        if 0 <= stage <= last_stage and status in ("running", "paused", "completed"):
            label += f" · stage {stage + 1} of {len(stages)}"
        current = Marker(x(now), y(current_pct), label)
    lines = [Line(actual, "actual", "exposure")] if actual else []
    markers = []
    if planned:
        path = f"M{x(planned[0][0]):.1f},{y(planned[0][1]):.1f}"
        for t, p in planned[1:]:
            path += f" H{x(t):.1f} V{y(p):.1f}"
            markers.append(Marker(x(t), y(p), f"{_fmt(p)}%"))
        path += f" H{x(t1):.1f}"
        lines.append(Line(path, "planned", "plan"))
    y_ticks = tuple(Tick(y(level), f"{_fmt(level)}%") for level in levels)
    legend = [("actual", "Exposure so far")] if points else []
    if planned:
        legend.append(("planned", "Plan at the minimum stage duration"))
    return Chart(
        width=width,
        height=height,
        left=LEFT,
        right=right,
        top=TOP,
        bottom=bottom,
        y_ticks=y_ticks,
        x_ticks=_time_ticks(t0, t1, x),
        lines=tuple(lines),
        area=area,
        markers=tuple(markers),
        now_x=x(now),
        current=current,
        legend=tuple(legend),
    )


# --- a guard's metric, exposed against unexposed --------------------------------------------


@dataclass(frozen=True, slots=True)
class Bin:
    start: float
    exposed_requests: int = 0
    exposed_events: int = 0
    unexposed_requests: int = 0
    unexposed_events: int = 0

    def exposed_rate(self) -> float | None:
        return self.exposed_events / self.exposed_requests if self.exposed_requests else None

    def unexposed_rate(self) -> float | None:
        return self.unexposed_events / self.unexposed_requests if self.unexposed_requests else None


@dataclass(frozen=True, slots=True)
class Threshold:
    value: float
    label: str
    css: str
    """`limit` (rolls back) or `warn` (pauses)."""


def _rate_label(value: float) -> str:
    percent = value * 100
    if percent == 0:
        return "0%"
    return f"{percent:.2g}%" if percent < 1 else f"{percent:.3g}%"


def metric_chart(
    bins: Sequence[Bin],
    thresholds: Sequence[Threshold],
    *,
    since: float,
    until: float,
    bin_seconds: float,
    width: int = WIDTH,
    height: int = 200,
) -> Chart:
    bottom = height - 30
    right = width - RIGHT
    span = max(until - since, bin_seconds)

    def x(t: float) -> float:
        return LEFT + (right - LEFT) * (t - since) / span

    rates = [r for b in bins for r in (b.exposed_rate(), b.unexposed_rate()) if r is not None]
    top_value = max([*rates, *(t.value for t in thresholds), 0.0])
    top_value = top_value * 1.2 if top_value > 0 else 0.01

    def y(value: float) -> float:
        return bottom - (bottom - TOP) * min(value, top_value) / top_value

    def path(rate: Callable[[Bin], float | None]) -> str:
        parts: list[str] = []
        pen_down = False
        for b in bins:
            value = rate(b)
            if value is None:
                pen_down = False
                continue
            centre = x(b.start + bin_seconds / 2)
            parts.append(f"{'L' if pen_down else 'M'}{centre:.1f},{y(value):.1f}")
            pen_down = True
        return " ".join(parts)

    lines = []
    exposed = path(Bin.exposed_rate)
    unexposed = path(Bin.unexposed_rate)
    if unexposed:
        lines.append(Line(unexposed, "unexposed", "unexposed"))
    if exposed:
        lines.append(Line(exposed, "exposed", "exposed"))
    drawn = [t for t in thresholds if t.value <= top_value]
    y_ticks = tuple(Tick(y(top_value * i / 4), _rate_label(top_value * i / 4)) for i in range(5))
    return Chart(
        width=width,
        height=height,
        left=LEFT,
        right=right,
        top=TOP,
        bottom=bottom,
        y_ticks=y_ticks,
        x_ticks=_time_ticks(since, since + span, x),
        lines=tuple(lines),
        thresholds=tuple(Line(f"M{LEFT},{y(t.value):.1f} H{right}", t.css, t.label) for t in drawn),
        threshold_labels=tuple(Marker(right - 4, y(t.value) - 5, t.label) for t in drawn),
        empty=None if rates else "No SDK counts in this window yet",
        legend=(
            ("exposed", "Exposed"),
            ("unexposed", "Unexposed"),
            *((t.css, t.label) for t in thresholds),
        ),
    )
