"""The ramp page's model: the service's view of the ramp, the stage chart, each guard's
metric over time, the actions a person may take now, and the plan's history."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from graylane_server.audit.repository import AuditFilter, page
from graylane_server.errors import Conflict
from graylane_server.models import AuditRow, Environment, FlagRow
from graylane_server.ramps import service
from graylane_server.ramps.views import RampView, ReadingOut, view
from graylane_server.runtime import Runtime
from graylane_server.tokens.principal import Role
from graylane_server.ui.charts import Bin, Chart, Threshold, metric_chart, stage_chart
from graylane_server.ui.sessions import SignedIn
from graylane_server.ui.templating import pct, rate
from graylane_server.usage.store import BUCKET_SECONDS

BIN_CHOICES = (10, 30, 60, 120, 300, 600, 900, 1800, 3600)
MAX_BINS = 60
MAX_WINDOW = 6 * 3600
HISTORY_LIMIT = 300
OFFERED: dict[str, tuple[service.Action, ...]] = {
    "draft": ("start",),
    "running": ("advance", "pause", "rollback"),
    "paused": ("resume", "advance", "rollback"),
    "completed": ("rollback",),
    "rolled_back": ("restart",),
}
"""The actions the page offers in each status (a rolled-back ramp restarts, it does not
start; a running one is not restarted from here)."""
LABELS = {
    "start": "Start ramp",
    "advance": "Advance",
    "pause": "Pause",
    "resume": "Resume",
    "rollback": "Roll back",
    "restart": "Restart ramp",
}


@dataclass(frozen=True, slots=True)
class ActionButton:
    action: str
    label: str
    percentage: float
    enabled: bool
    why_not: str | None
    style: str
    """`primary`, `secondary` or `danger`."""
    needs_version: bool
    confirm: str
    """What the confirmation dialog says."""


@dataclass(frozen=True, slots=True)
class GuardPanel:
    reading: ReadingOut
    description: str
    chart: Chart | None
    exposed: tuple[int, int]
    """(requests, events) in the chart's window."""
    unexposed: tuple[int, int]
    event: str | None


@dataclass(frozen=True, slots=True)
class RampPage:
    flag: FlagRow
    environment: Environment
    view: RampView
    plan: dict[str, Any]
    chart: Chart
    guards: tuple[GuardPanel, ...]
    buttons: tuple[ActionButton, ...]
    history: tuple[AuditRow, ...]
    window: tuple[float, float]
    bin_seconds: int


def _bin_seconds(span: float) -> int:
    for choice in BIN_CHOICES:
        if span / choice <= MAX_BINS:
            return choice
    return BIN_CHOICES[-1]


def _buttons(loaded: service.Loaded, ramp: RampView, user: SignedIn) -> tuple[ActionButton, ...]:
    status = ramp.status
    wanted = OFFERED.get(status, ())
    breached = [r for r in ramp.readings if r.status == "breach"]
    level = loaded.approval_level
    out = []
    for action in wanted:
        target: service.Target | None = None
        why_not: str | None = None
        try:
            target = service.target_of(action, loaded)
        except Conflict as exc:
            why_not = exc.message
        else:
            why_not = None if target is not None else "nothing to do"
        percentage = float(target.percentage) if target is not None else ramp.percentage
        if why_not is None and not user.can(Role.EDITOR):
            why_not = "needs the editor role"
        if why_not is None and action == "advance" and breached:
            why_not = f"guard {breached[0].guard} is breached: roll back instead"
        if (
            why_not is None
            and level is not None
            and target is not None
            and target.percentage > level
            and target.percentage > loaded.percentage
            and not user.can(Role.RELEASE_MANAGER)
        ):
            why_not = f"past {pct(float(level))} in {loaded.environment} needs a release manager"
        label = LABELS[action]
        if action == "advance":
            label = f"Advance to {pct(percentage)}"
        elif action == "rollback":
            label = f"Roll back to {pct(percentage)}"
        confirm = {
            "start": f"Start the ramp: {pct(percentage)} of units in {loaded.environment} get "
            f"the change now.",
            "advance": f"Raise exposure in {loaded.environment} from {pct(ramp.percentage)} to "
            f"{pct(percentage)} now.",
            "pause": f"Stop automatic advancing. Exposure stays at {pct(ramp.percentage)}.",
            "resume": "Let the controller advance this ramp again when its guards allow.",
            "rollback": f"Take exposure in {loaded.environment} back to {pct(percentage)} "
            "now; the plan stops.",
            "restart": f"Expose the same units again, from {pct(percentage)}.",
        }[action]
        style = (
            "danger"
            if action == "rollback"
            else ("secondary" if action in ("pause",) else "primary")
        )
        out.append(
            ActionButton(
                action=action,
                label=label,
                percentage=percentage,
                enabled=why_not is None,
                why_not=why_not,
                style=style,
                needs_version=action in service.NEEDS_VERSION,
                confirm=confirm,
            )
        )
    return tuple(out)


def _history(session: Session, key: str, environment: str) -> list[AuditRow]:
    rows = page(
        session,
        AuditFilter(target_type="flag", target_key=key, environment=environment),
        before_id=None,
        limit=HISTORY_LIMIT,
    )
    return [r for r in rows if r.action.startswith("ramp.") or r.action == "flag.emergency_stop"]


def _timeline(history: Sequence[AuditRow], ramp: RampView) -> list[tuple[float, float]]:
    """(time, percentage) since the ramp last (re)started, oldest first."""
    points: list[tuple[float, float]] = []
    for row in reversed(history):
        after = row.after or {}
        if row.action in ("ramp.start", "ramp.restart"):
            points = []
        if "percentage" in after:
            points.append((row.at.timestamp(), float(after["percentage"])))
    if not points and ramp.started_at is not None:
        points = [(ramp.started_at.timestamp(), ramp.percentage)]
    return points


def _describe(guard: ReadingOut) -> str:
    if guard.kind == "absolute":
        return f"rolls back above {rate(guard.limit)}" + (
            f", pauses above {rate(guard.warn)}" if guard.warn is not None else ""
        )
    if guard.kind == "relative" and guard.limit is not None:
        return f"rolls back when more than {round((guard.limit - 1) * 100)}% worse than unexposed"
    if guard.kind == "prometheus":
        return "a Prometheus query"
    if guard.kind == "srm":
        return "pauses when the exposed and unexposed counts do not match the rollout"
    return "an alert from outside (Alertmanager)"


def _guards(
    runtime: Runtime,
    ramp: RampView,
    plan: dict[str, Any],
    *,
    key: str,
    environment: str,
    since: float,
    until: float,
    bin_seconds: int,
) -> tuple[GuardPanel, ...]:
    buckets = runtime.usage.read(environment, key, since, until + BUCKET_SECONDS)
    # (group, event) -> bin start -> count
    per_bin: defaultdict[tuple[str, str], defaultdict[int, int]] = defaultdict(
        lambda: defaultdict(int)
    )
    for bucket, counts in buckets.items():
        start = int(since + (bucket - since) // bin_seconds * bin_seconds)
        for series, count in counts.items():
            parts = series.split("|")
            if parts[0] == "e" and len(parts) == 4:
                per_bin[(parts[1], parts[3])][start] += count
    guard_specs = plan.get("guards", [])
    charted = sum(1 for r in ramp.readings if r.kind in ("absolute", "relative"))
    width = 1080 if charted <= 1 else 520
    panels = []
    for index, reading in enumerate(ramp.readings):
        spec = guard_specs[index] if index < len(guard_specs) else {}
        metric = spec.get("metric") if isinstance(spec, dict) else None
        if reading.kind not in ("absolute", "relative") or not metric:
            panels.append(GuardPanel(reading, _describe(reading), None, (0, 0), (0, 0), None))
            continue
        event = str(metric).removesuffix("_rate")
        starts = range(int(since), int(until) + 1, bin_seconds)
        bins = [
            Bin(
                start=s,
                exposed_requests=per_bin[("exposed", "request")].get(s, 0),
                exposed_events=per_bin[("exposed", event)].get(s, 0),
                unexposed_requests=per_bin[("unexposed", "request")].get(s, 0),
                unexposed_events=per_bin[("unexposed", event)].get(s, 0),
            )
            for s in starts
        ]
        exposed = (sum(b.exposed_requests for b in bins), sum(b.exposed_events for b in bins))
        unexposed = (
            sum(b.unexposed_requests for b in bins),
            sum(b.unexposed_events for b in bins),
        )
        thresholds: list[Threshold] = []
        if reading.kind == "absolute":
            if reading.limit is not None:
                thresholds.append(Threshold(reading.limit, f"limit {rate(reading.limit)}", "limit"))
            if reading.warn is not None:
                thresholds.append(Threshold(reading.warn, f"warn {rate(reading.warn)}", "warn"))
        else:
            control = reading.control
            if control is None and unexposed[0]:
                control = unexposed[1] / unexposed[0]
            if control is not None and reading.limit is not None:
                thresholds.append(
                    Threshold(
                        control * reading.limit,
                        f"limit {rate(control * reading.limit)} (unexposed x {reading.limit:g})",
                        "limit",
                    )
                )
            if control is not None and reading.warn is not None:
                thresholds.append(
                    Threshold(
                        control * reading.warn, f"warn {rate(control * reading.warn)}", "warn"
                    )
                )
        chart = metric_chart(
            bins, thresholds, since=since, until=until, bin_seconds=bin_seconds, width=width
        )
        panels.append(GuardPanel(reading, _describe(reading), chart, exposed, unexposed, event))
    return tuple(panels)


def build(
    session: Session,
    runtime: Runtime,
    flag: FlagRow,
    environment: Environment,
    user: SignedIn,
    *,
    now: float | None = None,
) -> RampPage:
    """Raises NotFound when the flag has no ramp plan in the environment."""
    now = time.time() if now is None else now
    ramp = view(
        session,
        flag.key,
        environment.key,
        usage=runtime.usage,
        now=now,
        prometheus_url=runtime.settings.prometheus_url,
        missing_since=runtime.controller.missing.get((flag.key, environment.key)),
    )
    loaded = service.load(session, flag.key, environment.key)
    plan: dict[str, Any] = dict(loaded.config.get("ramp", {}))
    history = _history(session, flag.key, environment.key)
    timeline = _timeline(history, ramp)
    chart = stage_chart(
        stages=ramp.stages,
        history=timeline,
        status=ramp.status,
        stage=ramp.stage,
        stage_started_at=None
        if ramp.stage_started_at is None
        else ramp.stage_started_at.timestamp(),
        min_stage_duration=ramp.min_stage_duration,
        now=now,
    )
    started = timeline[0][0] if timeline else now - 3600
    since = max(started, now - MAX_WINDOW)
    if now - since < 600:
        since = now - 600
    bin_seconds = _bin_seconds(now - since)
    since = math.floor(since / bin_seconds) * bin_seconds
    guards = _guards(
        runtime,
        ramp,
        plan,
        key=flag.key,
        environment=environment.key,
        since=since,
        until=now,
        bin_seconds=bin_seconds,
    )
    return RampPage(
        flag=flag,
        environment=environment,
        view=ramp,
        plan=plan,
        chart=chart,
        guards=guards,
        buttons=_buttons(loaded, ramp, user),
        history=tuple(history),
        window=(since, now),
        bin_seconds=bin_seconds,
    )
