"""Pieces of flag documents that the core specifications build theirs from."""

from __future__ import annotations

import json
from typing import Any

LONE = json.loads('"\\ud800"')
"""A lone UTF-16 surrogate: JSON allows it; as a Python str it has no UTF-8 form."""


def clause(attribute: str, op: str, values: list[Any]) -> dict[str, Any]:
    return {"attribute": attribute, "op": op, "values": values}


def staff_rule(
    attribute: str = "email", op: str = "ends_with", value: object = "@example.com"
) -> dict[str, Any]:
    """The rule `staff`: a unit whose `attribute` passes `op` against `value` gets `on`."""
    return {"name": "staff", "when": [clause(attribute, op, [value])], "serve": {"variant": "on"}}


def segment_rule(segment: str, name: str = "beta") -> dict[str, Any]:
    """A rule that serves `on` to the members of `segment`."""
    return {"name": name, "segment": segment, "serve": {"variant": "on"}}


def boolean_flag(
    *rules: dict[str, Any],
    percentage: float = 50,
    bucket_by: str | None = None,
    ramp: dict[str, Any] | None = None,
    elsewhere: dict[str, dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A flag of variants `on` and `off` whose production environment serves `on` by
    `rules`, then to `percentage` of units (by `bucket_by`, if not the targeting key) and
    `off` to the others, under `ramp` if given; `elsewhere` adds other environments and
    `fields` add to the flag's own (or replace its variants)."""
    rollout: dict[str, Any] = {"percentage": percentage, "variants": {"on": 100}}
    if bucket_by is not None:
        rollout["bucket_by"] = bucket_by
    production: dict[str, Any] = {
        "enabled": True,
        "rules": list(rules),
        "fallthrough": {"rollout": rollout, "otherwise": "off"},
    }
    if ramp is not None:
        production["ramp"] = ramp
    return {
        "variants": {"on": True, "off": False},
        **fields,
        "environments": {"production": production, **(elsewhere or {})},
    }
