"""Emergency stop: every flag in an environment serves its off variant, every running
ramp there pauses, in one transaction and one announcement."""

from __future__ import annotations

import copy
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane_server.audit.service import record
from graylane_server.configs.notices import bump_versions
from graylane_server.errors import NotFound
from graylane_server.flags import service as flags
from graylane_server.models import Environment, FlagRow, RampRow
from graylane_server.webhooks import service as webhooks


def stop(
    session: Session, *, actor: str, environment: str, reason: str, now: datetime
) -> tuple[list[str], list[str]]:
    if (
        session.scalars(select(Environment.id).where(Environment.key == environment)).first()
        is None
    ):
        raise NotFound(f"no environment {environment!r}")
    disabled: list[str] = []
    rows = session.scalars(select(FlagRow).order_by(FlagRow.key).with_for_update()).all()
    for row in rows:
        config = row.definition.get("environments", {}).get(environment)
        if config is None or not config.get("enabled", False):
            continue
        definition = copy.deepcopy(row.definition)
        definition["environments"][environment]["enabled"] = False
        flags.store(
            session,
            actor=actor,
            key=row.key,
            row=row,
            definition=definition,
            reason=reason,
            environment=environment,
            action="flag.emergency_stop",
        )
        disabled.append(row.key)
    paused: list[str] = []
    ramps = session.scalars(
        select(RampRow)
        .where(RampRow.environment == environment, RampRow.status == "running")
        .with_for_update()
    ).all()
    for ramp in ramps:
        ramp.status, ramp.reason, ramp.updated_at = "paused", f"emergency stop: {reason}", now
        record(
            session,
            actor=actor,
            action="ramp.pause",
            target_type="flag",
            target_key=ramp.flag,
            environment=environment,
            before={"status": "running"},
            after={"status": "paused"},
            reason=f"emergency stop: {reason}",
        )
        paused.append(ramp.flag)
    if disabled:
        bump_versions(session, [environment])
    webhooks.enqueue(
        session,
        "environment.emergency_stop",
        {
            "environment": environment,
            "actor": actor,
            "reason": reason,
            "flags_disabled": disabled,
            "ramps_paused": paused,
        },
    )
    return disabled, paused
