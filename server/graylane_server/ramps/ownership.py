"""A started ramp owns its flag's rollout percentage in that environment."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane_server.models import RampRow


def owned_percentages(session: Session, key: str) -> dict[str, Decimal]:
    """Environments where a started ramp owns the flag's rollout percentage."""
    rows = session.scalars(
        select(RampRow).where(RampRow.flag == key, RampRow.status != "draft")
    ).all()
    return {row.environment: Decimal(row.percentage) for row in rows}


def keep_owned(session: Session, key: str, definition: dict[str, Any]) -> dict[str, Any]:
    """A definition written by a person or a document keeps the percentage a running
    ramp has reached: re-applying yesterday's file must not undo today's ramp."""
    owned = owned_percentages(session, key)
    if not owned:
        return definition
    out = copy.deepcopy(definition)
    for environment, percentage in owned.items():
        config = out.get("environments", {}).get(environment)
        if not isinstance(config, dict) or "ramp" not in config:
            continue
        rollout = config.get("fallthrough", {}).get("rollout")
        if isinstance(rollout, dict):
            rollout["percentage"] = _number(percentage)
    return out


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def cancel_dropped(session: Session, key: str, definition: dict[str, Any], actor: str) -> list[str]:
    """A ramp whose plan a write removed (the `ramp` block, or the environment's whole
    configuration) is cancelled, not left behind as a ramp nobody can drive."""
    from graylane_server.audit.service import record  # noqa: PLC0415 - avoids a cycle

    rows = session.scalars(select(RampRow).where(RampRow.flag == key)).all()
    cancelled = []
    for row in rows:
        config = definition.get("environments", {}).get(row.environment)
        if isinstance(config, dict) and "ramp" in config:
            continue
        record(
            session,
            actor=actor,
            action="ramp.cancel",
            target_type="flag",
            target_key=key,
            environment=row.environment,
            before={"status": row.status, "stage": row.stage, "percentage": row.percentage},
            reason="the ramp plan was removed from the flag",
        )
        session.delete(row)
        cancelled.append(row.environment)
    return cancelled
