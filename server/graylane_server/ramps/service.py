"""Ramp transitions, by people and by the controller, through one write path.

A transition writes the new fallthrough percentage into the flag (so it reaches every SDK
like any other change), the ramp's state, one audit entry naming the actor and the
reason, and a webhook notice, all in one transaction.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane.core import DocumentError, parse_ramp
from graylane.core.model import DEFAULT_GUARDS, RampPlan
from graylane_server import versioning
from graylane_server.audit.service import record
from graylane_server.configs.notices import bump_versions
from graylane_server.errors import Conflict, Forbidden, NotFound, PreconditionRequired
from graylane_server.flags import repository as flags_repo
from graylane_server.flags import service as flags
from graylane_server.models import Environment, FlagRow, RampRow
from graylane_server.ramps.decision import RampState, RampStatus
from graylane_server.tokens.principal import Principal, Role
from graylane_server.webhooks import service as webhooks

Action = Literal["start", "advance", "pause", "resume", "rollback", "restart"]
ACTIONS: tuple[Action, ...] = ("start", "advance", "pause", "resume", "rollback", "restart")
NEEDS_VERSION = frozenset({"advance", "restart"})
"""Actions that must name the version they were decided on: two people pressing
advance at once advance once."""


@dataclass(frozen=True, slots=True)
class Loaded:
    flag: FlagRow
    environment: str
    config: dict[str, Any]
    plan: RampPlan
    row: RampRow | None
    protected: bool

    @property
    def percentage(self) -> Decimal:
        return Decimal(str(self.config["fallthrough"]["rollout"]["percentage"]))

    @property
    def approval_level(self) -> Decimal | None:
        """Past this percentage only a release manager advances: the plan's optional
        `approval_above`, in protected environments only."""
        return self.plan.approval_above if self.protected else None

    @property
    def state(self) -> RampState:
        if self.row is None:
            return RampState("draft", -1, 0.0)
        status: RampStatus = self.row.status  # type: ignore[assignment]
        started = None if self.row.started_at is None else self.row.started_at.timestamp()
        return RampState(status, self.row.stage, self.row.stage_started_at.timestamp(), started)


def load(session: Session, key: str, environment: str, *, lock: bool = False) -> Loaded:
    flag = flags_repo.get(session, key, for_update=lock)
    if flag is None:
        raise NotFound(f"no flag {key!r}")
    env = session.scalars(select(Environment).where(Environment.key == environment)).first()
    if env is None:
        raise NotFound(f"no environment {environment!r}")
    config = flag.definition.get("environments", {}).get(environment)
    if config is None or "ramp" not in config:
        raise NotFound(f"flag {key!r} has no ramp plan in {environment!r}: add a `ramp` block")
    try:
        plan = parse_ramp(config["ramp"])
    except DocumentError as exc:  # stored definitions are valid; this guards against drift
        raise Conflict(f"the stored ramp plan is invalid: {exc}") from exc
    if not plan.guards:
        # Stored before `guards: []` was refused: nothing would ever stop the ramp, so it
        # is watched by the default set until its next write names guards.
        plan = replace(plan, guards=DEFAULT_GUARDS)
    query = select(RampRow).where(RampRow.flag == key, RampRow.environment == environment)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).first()
    return Loaded(flag, environment, config, plan, row, env.protected)


def listing(session: Session) -> list[RampRow]:
    return list(session.scalars(select(RampRow).order_by(RampRow.flag, RampRow.environment)))


@dataclass(frozen=True, slots=True)
class Target:
    status: RampStatus
    stage: int
    percentage: Decimal
    event: str


def target_of(action: Action, loaded: Loaded) -> Target | None:
    """Where an action leads from here; None when it changes nothing (idempotent)."""
    state, stages = loaded.state, loaded.plan.stages
    status = state.status
    last = len(stages) - 1
    if action == "start" or (action == "restart" and status == "draft"):
        if status in ("running", "paused", "completed") and action == "start":
            return None
        if status == "rolled_back" and action == "start":
            raise Conflict("the ramp was rolled back: `restart` it to expose the same units again")
        return Target("running", 0, stages[0], "ramp.start")
    if status == "draft":
        raise Conflict(f"the ramp has not started: `start` it before you {action} it")
    if action == "restart":
        return Target("running", 0, stages[0], "ramp.restart")
    if action == "advance":
        if status not in ("running", "paused"):
            raise Conflict(f"a {status.replace('_', ' ')} ramp cannot advance")
        if state.stage >= last:
            raise Conflict("the ramp is at its last stage")
        stage = state.stage + 1
        final = stage == last
        return Target(
            "completed" if final else "running",
            stage,
            stages[stage],
            "ramp.complete" if final else "ramp.advance",
        )
    if action == "pause":
        if status == "paused":
            return None
        if status != "running":
            raise Conflict(f"a {status.replace('_', ' ')} ramp cannot be paused")
        return Target("paused", state.stage, loaded.percentage, "ramp.pause")
    if action == "resume":
        if status == "running":
            return None
        if status != "paused":
            raise Conflict(f"a {status.replace('_', ' ')} ramp cannot be resumed")
        return Target("running", state.stage, loaded.percentage, "ramp.resume")
    if status == "rolled_back":
        return None
    return Target("rolled_back", -1, Decimal(0), "ramp.rollback")


def act(
    session: Session,
    *,
    principal: Principal,
    key: str,
    environment: str,
    action: Action,
    expected_version: int | None,
    reason: str | None,
    now: datetime,
) -> RampRow | None:
    """A person's action. Returns the ramp (None if it is still a draft)."""
    loaded = load(session, key, environment, lock=True)
    current = None if loaded.row is None else loaded.row.version
    if action in NEEDS_VERSION and current is not None and expected_version is None:
        raise PreconditionRequired(
            f'the ramp is at version {current}; send `If-Match: "{current}"` to {action} it'
        )
    if expected_version is not None:
        versioning.check(f"the ramp of {key!r} in {environment!r}", current or 0, expected_version)
    target = target_of(action, loaded)
    if target is None:
        return loaded.row
    _check_approval(loaded, target, principal)
    return apply(
        session, loaded, actor=principal.actor, action=action, target=target, reason=reason, now=now
    )


def _check_approval(loaded: Loaded, target: Target, principal: Principal) -> None:
    """In a protected environment, raising exposure past the plan's approval level (when
    it sets one) needs a release manager."""
    level = loaded.approval_level
    if level is None or target.percentage <= loaded.percentage:
        return
    role = principal.role or Role.VIEWER
    if target.percentage > level and not role.allows(Role.RELEASE_MANAGER):
        raise Forbidden(
            f"{loaded.environment} is protected: going past {level.normalize():f}% needs a "
            f"release manager"
        )


def apply(
    session: Session,
    loaded: Loaded,
    *,
    actor: str,
    action: str,
    target: Target,
    reason: str | None,
    now: datetime,
) -> RampRow:
    """Write one transition: percentage, state, audit entry, webhook notice."""
    before = _public(loaded.row, loaded.percentage)
    row = loaded.row
    if row is None:
        row = RampRow(
            flag=loaded.flag.key,
            environment=loaded.environment,
            status=target.status,
            stage=target.stage,
            percentage=str(target.percentage),
            stage_started_at=now,
            started_at=now,
            updated_at=now,
            reason=reason,
        )
        session.add(row)
    else:
        moved = row.stage != target.stage or (
            row.status != "running" and target.status == "running"
        )
        if moved:
            row.stage_started_at = now
        if target.event in ("ramp.start", "ramp.restart"):
            row.started_at = now
        row.status, row.stage, row.percentage = target.status, target.stage, str(target.percentage)
        row.updated_at, row.reason = now, reason
    session.flush()
    if target.percentage != loaded.percentage:
        definition = copy.deepcopy(loaded.flag.definition)
        rollout = definition["environments"][loaded.environment]["fallthrough"]["rollout"]
        rollout["percentage"] = _number(target.percentage)
        _, affected = flags.store(
            session,
            actor=actor,
            key=loaded.flag.key,
            row=loaded.flag,
            definition=definition,
            reason=reason,
            environment=loaded.environment,
            audit=False,
        )
        bump_versions(session, affected)
    record(
        session,
        actor=actor,
        action=f"ramp.{action}",
        target_type="flag",
        target_key=loaded.flag.key,
        environment=loaded.environment,
        before=before,
        after=_public(row, target.percentage),
        reason=reason,
    )
    webhooks.enqueue(
        session,
        target.event,
        {
            "flag": loaded.flag.key,
            "environment": loaded.environment,
            "actor": actor,
            "reason": reason,
            "status": row.status,
            "stage": row.stage,
            "percentage": _number(target.percentage),
        },
    )
    return row


def _public(row: RampRow | None, percentage: Decimal) -> dict[str, Any]:
    if row is None:
        return {"status": "draft", "stage": -1, "percentage": _number(percentage)}
    return {"status": row.status, "stage": row.stage, "percentage": _number(percentage)}


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)
