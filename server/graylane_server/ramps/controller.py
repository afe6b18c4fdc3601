"""The ramp controller: the only loop in Graylane that acts on its own.

Every replica runs one, but only the holder of the `ramp-controller` lease acts. Each
tick, for every ramp that still has units on the change at stake (running, paused, and
completed within its plan's `watch_completed`): read the guards (outside any write
transaction), ask the pure `decide`, and if it says advance, pause or roll back, apply
that in one short transaction that first re-checks the lease fence and the ramp's
version. A paused ramp is still watched: a warning stops it advancing, never the rollback
a later breach calls for. The change goes through the same write path as a person's, so
it reaches every SDK the same way. Then it delivers due webhook notices.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime

import httpx
import structlog
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from graylane_server import lease as leases
from graylane_server.models import utcnow
from graylane_server.ramps import guards, service
from graylane_server.ramps.decision import Advance, Decision, Hold, Pause, Rollback, decide
from graylane_server.ramps.views import WATCHED, stage_readings
from graylane_server.usage.store import UsageStore
from graylane_server.webhooks import service as webhooks

log = structlog.get_logger(__name__)
LEASE = "ramp-controller"
CONTROLLER = "controller"


@dataclass(frozen=True, slots=True)
class Step:
    """What the controller did to one ramp in a tick (for logs and tests)."""

    flag: str
    environment: str
    decision: Decision
    applied: bool


class Controller:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        readers: sessionmaker[Session],
        usage: UsageStore,
        *,
        interval: float,
        prometheus_url: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.readers = readers
        self.usage = usage
        self.interval = interval
        self.prometheus_url = prometheus_url
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease: leases.Lease | None = None
        self.missing: dict[tuple[str, str], dict[str, float]] = {}
        """(flag, environment) -> guard label -> since when its query has had no value."""
        self._http = httpx.Client(timeout=5.0)

    @property
    def leading(self) -> bool:
        return self.lease is not None

    async def run(self) -> None:
        while True:
            try:
                await run_in_threadpool(self.tick)
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one failure
                log.warning("controller.tick_failed", error=str(exc))
            await asyncio.sleep(self.interval)

    def tick(self, now: datetime | None = None) -> list[Step]:
        now = now or utcnow()
        with self.sessions() as session, session.begin():
            # A lease three intervals long survives a slow tick, and a dead leader's
            # successor takes over within that bound.
            lease = leases.acquire(session, LEASE, self.holder, self.interval * 3, now)
        if lease is None:
            if self.lease is not None:
                log.info("controller.lost_lease", holder=self.holder)
            self.lease = None
            return []
        if self.lease is None or self.lease.fence != lease.fence:
            log.info("controller.leading", holder=self.holder, fence=lease.fence)
        self.lease = lease
        with self.readers() as session:
            watched = [
                (r.flag, r.environment) for r in service.listing(session) if r.status in WATCHED
            ]
        steps = []
        for flag, environment in watched:
            try:
                steps.append(self.step(flag, environment, lease, now))
            except Exception as exc:  # noqa: BLE001 - one broken ramp must not stop the rest
                log.warning(
                    "controller.step_failed", flag=flag, environment=environment, error=str(exc)
                )
        webhooks.deliver_due(self.sessions, self._http)
        return steps

    def step(self, flag: str, environment: str, lease: leases.Lease, now: datetime) -> Step:
        with self.readers() as session:
            loaded = service.load(session, flag, environment)
            if watch_over(loaded, now):
                return Step(flag, environment, Hold("the ramp is done"), applied=False)
            missing = self.missing.setdefault((flag, environment), {})
            observations, readings = stage_readings(
                session,
                loaded,
                self.usage,
                now.timestamp(),
                self.prometheus_url,
                missing_since=missing,
            )
        _remember_missing(missing, readings, now.timestamp())
        version = None if loaded.row is None else loaded.row.version
        decision = decide(
            loaded.plan,
            loaded.state,
            readings,
            observations,
            now.timestamp(),
            approval_level=loaded.approval_level,
        )
        if isinstance(decision, Hold) or not _acts(loaded.state.status, decision):
            return Step(flag, environment, decision, applied=False)
        with self.sessions() as session, session.begin():
            if not leases.still_held(session, lease, now):
                return Step(flag, environment, decision, applied=False)
            current = service.load(session, flag, environment, lock=True)
            if current.row is None or current.row.version != version:
                return Step(flag, environment, decision, applied=False)  # someone acted first
            actor, action, target = _transition(current, decision)
            service.apply(
                session,
                current,
                actor=actor,
                action=action,
                target=target,
                reason=decision.reason if not isinstance(decision, Advance) else _advanced(current),
                now=now,
            )
        log.info(
            "controller.acted",
            flag=flag,
            environment=environment,
            action=action,
            actor=actor,
            percentage=float(target.percentage),
        )
        return Step(flag, environment, decision, applied=True)

    def close(self) -> None:
        if self.lease is not None:
            with self.sessions() as session, session.begin():
                leases.release(session, self.lease)
            self.lease = None
        self._http.close()


def _remember_missing(
    missing: dict[str, float], readings: list[guards.Reading], now: float
) -> None:
    """Since when each Prometheus guard's query has answered no value, so that a guard
    that never gets data pauses the ramp (saying so) instead of holding it forever."""
    for reading in readings:
        if reading.kind != "prometheus":
            continue
        if reading.value is None:
            missing.setdefault(reading.guard, now)
        else:
            missing.pop(reading.guard, None)


def watch_over(loaded: service.Loaded, now: datetime) -> bool:
    """A completed ramp whose plan's watch has run out: nobody reads its guards again."""
    state = loaded.state
    return state.status == "completed" and (
        now.timestamp() - state.stage_started_at >= loaded.plan.watch_completed
    )


def _acts(status: str, decision: Decision) -> bool:
    """Whether the controller applies `decision` to a ramp in `status`: a running ramp
    moves every way; a paused or completed one only rolls back (pausing a paused ramp
    changes nothing, and only a person resumes or advances it)."""
    if isinstance(decision, Hold):
        return False
    return status == "running" or isinstance(decision, Rollback)


def _transition(
    loaded: service.Loaded, decision: Advance | Pause | Rollback
) -> tuple[str, str, service.Target]:
    if isinstance(decision, Advance):
        if decision.stage == len(loaded.plan.stages) - 1:
            target = service.Target(
                "completed", decision.stage, decision.percentage, "ramp.complete"
            )
        else:
            target = service.Target("running", decision.stage, decision.percentage, "ramp.advance")
        return CONTROLLER, "advance", target
    actor = f"guard:{decision.guard}"
    if isinstance(decision, Pause):
        return (
            actor,
            "pause",
            service.Target("paused", loaded.state.stage, loaded.percentage, "ramp.warn"),
        )
    if decision.stage >= 0:  # step back one stage and wait for a person
        return (
            actor,
            "rollback",
            service.Target("paused", decision.stage, decision.percentage, "ramp.rollback"),
        )
    return (
        actor,
        "rollback",
        service.Target("rolled_back", -1, decision.percentage, "ramp.rollback"),
    )


def _advanced(loaded: service.Loaded) -> str:
    return (
        f"stage {loaded.state.stage + 1} of {len(loaded.plan.stages)} ran its time with enough "
        "exposures and every guard healthy"
    )
