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
