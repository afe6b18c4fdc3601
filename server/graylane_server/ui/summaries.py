"""The flag list: one row per flag as it stands in one environment, and its filters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from graylane_server.models import FlagRow, RampRow
from graylane_server.ui.templating import pct

ACTIVE_RAMP = frozenset({"running", "paused"})


@dataclass(frozen=True, slots=True)
class FlagLine:
    key: str
    description: str
    tags: tuple[str, ...]
    version: int
    updated_at: datetime
    configured: bool
    """Whether the flag has a configuration in this environment (else it is off there)."""
    enabled: bool
    serving: str
    """What the fallthrough serves, in words: `10% on`, `off`."""
    rollout: float | None
    rules: int
    has_plan: bool
    ramp_status: str | None
    ramp_stage: int | None
    stage_count: int
    stale: bool

    @property
    def ramping(self) -> bool:
        return self.ramp_status in ACTIVE_RAMP


def serving(config: Mapping[str, Any]) -> tuple[str, float | None]:
    fallthrough = config.get("fallthrough", {})
    rollout = fallthrough.get("rollout")
    if rollout is None:
        return str(fallthrough.get("variant", "—")), None
    percentage = float(rollout.get("percentage", 0))
    weights = rollout.get("variants", {})
    if len(weights) == 1:
        return f"{pct(percentage)} {next(iter(weights))}", percentage
    split = " · ".join(f"{name} {pct(w)}" for name, w in weights.items())
    return f"{pct(percentage)} split {split}", percentage


def line(
    row: FlagRow,
    environment: str,
    ramp: RampRow | None,
    *,
    now: datetime,
    stale_after: timedelta,
) -> FlagLine:
    definition = row.definition
    config = definition.get("environments", {}).get(environment)
    configured = config is not None
    config = config or {}
    enabled = bool(config.get("enabled", False)) and configured
    text, rollout = serving(config) if configured else ("not configured", None)
    if configured and not enabled:
        text = f"{definition.get('off_variant', 'off')} (switched off)"
    status = ramp.status if ramp is not None else None
    settled = rollout is None or rollout in (0.0, 100.0) or not enabled
    stale = settled and status not in ACTIVE_RAMP and row.updated_at < now - stale_after
    plan = config.get("ramp")
    return FlagLine(
        key=row.key,
        description=str(definition.get("description", "")),
        tags=tuple(definition.get("tags", [])),
        version=row.version,
        updated_at=row.updated_at,
        configured=configured,
        enabled=enabled,
        serving=text,
        rollout=rollout,
        rules=len(config.get("rules", [])),
        has_plan=plan is not None,
        ramp_status=status if plan is not None else None,
        ramp_stage=ramp.stage if ramp is not None and plan is not None else None,
        stage_count=len(plan.get("stages", [])) if isinstance(plan, dict) else 0,
        stale=stale,
    )


@dataclass(frozen=True, slots=True)
class Filters:
    q: str = ""
    tag: str = ""
    status: str = ""
    """`enabled`, `disabled` or empty."""
    ramp: bool = False
    stale: bool = False

    @property
    def active(self) -> bool:
        return bool(self.q or self.tag or self.status or self.ramp or self.stale)


def keep(lines: Iterable[FlagLine], filters: Filters) -> list[FlagLine]:
    needle = filters.q.lower()
    out = []
    for item in lines:
        if needle and needle not in item.key.lower() and needle not in item.description.lower():
            continue
        if filters.tag and filters.tag not in item.tags:
            continue
        if filters.status == "enabled" and not item.enabled:
            continue
        if filters.status == "disabled" and item.enabled:
            continue
        if filters.ramp and not item.ramping:
            continue
        if filters.stale and not item.stale:
            continue
        out.append(item)
    return out


def all_tags(rows: Sequence[FlagRow]) -> list[str]:
    return sorted({str(t) for row in rows for t in row.definition.get("tags", [])})
