"""Definitions drafted from the UI's short forms: a new flag, a ramp plan, an environment's
configuration about to change. Pure: the services validate and store what comes out."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from graylane.core.model import DEFAULT_GUARDS
from graylane_server.ui import forms

_DEFAULT_RELATIVE = next(g.max for g in DEFAULT_GUARDS if g.kind == "relative")
_DEFAULT_CAP = next(g.max for g in DEFAULT_GUARDS if g.kind == "absolute")
_HIGHEST_MULTIPLE = Decimal(10)
"""A looser relative limit is no guard (and 50 is more likely a percentage typed here)."""


def new_flag(form: Mapping[str, str], environments: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The key and definition of the new-flag form. The flag is on everywhere but serves
    its "on" variant to 0% of units, so creating it changes nobody's answer."""
    key = forms.text(form, "key")
    kind = forms.text(form, "kind", "boolean")
    definition: dict[str, Any] = {}
    if forms.text(form, "description"):
        definition["description"] = forms.text(form, "description")
    tags = [t.strip() for t in forms.text(form, "tags").split(",") if t.strip()]
    if tags:
        definition["tags"] = tags
    if kind == "boolean":
        definition["variants"] = {"on": True, "off": False}
        definition["off_variant"] = "off"
        served = "on"
    else:
        variants = _variants(forms.text(form, "variants"))
        definition["variants"] = variants
        definition["off_variant"] = next(iter(variants))
        served = list(variants)[1]
    definition["environments"] = {
        env: {
            "enabled": True,
            "fallthrough": {
                "rollout": {"percentage": 0, "variants": {served: 100}},
                "otherwise": definition["off_variant"],
            },
        }
        for env in environments
    }
    return key, definition


def _variants(source: str) -> dict[str, Any]:
    """`name=value` lines; the first is the off variant, the second the one rolled out."""
    variants: dict[str, Any] = {}
    for number, raw in enumerate(source.splitlines(), 1):
        if not raw.strip():
            continue
        name, sep, value = raw.partition("=")
        if not sep:
            raise forms.FormError("variants", f"line {number}: write name=value")
        variants[name.strip()] = value.strip()
    if len(variants) < 2:
        raise forms.FormError("variants", "a string flag needs at least two variants")
    return variants


def rollout_config(definition: Mapping[str, Any], key: str, environment: str) -> dict[str, Any]:
    """A copy of the environment's configuration, to change its rollout percentage in."""
    config: dict[str, Any] | None = copy.deepcopy(
        definition.get("environments", {}).get(environment)
    )
    rollout = (config or {}).get("fallthrough", {}).get("rollout")
    if config is None or rollout is None:
        raise forms.FormError(
            "percentage",
            f"{key} serves a fixed variant in {environment}: add a rollout in its definition first",
        )
    return config


def ramp_config(definition: Mapping[str, Any], environment: str) -> dict[str, Any]:
    """A copy of the environment's configuration with a rollout for a ramp to drive: where
    there was none, one at 0% of the first variant that is not the off one."""
    config: dict[str, Any] | None = copy.deepcopy(
        definition.get("environments", {}).get(environment)
    )
    if config is None:
        config = {"enabled": True}
    fallthrough = config.get("fallthrough", {})
    if "rollout" not in fallthrough:
        off = definition.get("off_variant")
        served = next((v for v in definition.get("variants", {}) if v != off), off)
        config["fallthrough"] = {
            "rollout": {"percentage": 0, "variants": {served: 100}},
            "otherwise": off,
        }
    return config


def ramp_plan(form: Mapping[str, str], current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The plan form over the current plan: fields left empty keep what the plan had."""
    plan: dict[str, Any] = dict(current or {})
    plan["stages"] = forms.stages(form.get("stages", ""))
    duration = forms.text(form, "min_stage_duration")
    if duration:
        plan["min_stage_duration"] = duration
    samples = forms.optional_int(form, "min_samples")
    if samples is not None:
        plan["min_samples"] = samples
    plan["auto_advance"] = form.get("auto_advance") == "on"
    approval = forms.text(form, "approval_above")
    if approval:
        plan["approval_above"] = forms.percentage(approval, "approval_above")
    else:
        plan.pop("approval_above", None)
    pair = _guard_pair(plan.get("guards"))
    # Guards other than the recommended pair are edited in the definition: kept as written.
    if pair is not None:
        relative, cap = pair
        if forms.text(form, "relative_max"):
            relative = _multiple(forms.text(form, "relative_max")) - 1
        if forms.text(form, "error_rate_cap"):
            cap = _cap(forms.text(form, "error_rate_cap")) / 100
        plan["guards"] = [
            {"kind": "relative", "metric": "error_rate", "max": float(relative)},
            {"metric": "error_rate", "max": float(cap)},
        ]
    return plan


@dataclass(frozen=True, slots=True)
class GuardFields:
    """The plan form's guard fields: the recommended pair's levels as a person reads them,
    or not `editable` when the plan's guards are something else."""

    editable: bool
    relative: str = ""
    """The exposed error rate's limit as a multiple of the unexposed group's ("1.5")."""
    cap: str = ""
    """The absolute cap, in percent of requests ("20")."""


def guard_fields(plan: Mapping[str, Any] | None) -> GuardFields:
    pair = _guard_pair((plan or {}).get("guards"))
    if pair is None:
        return GuardFields(editable=False)
    relative, cap = pair
    return GuardFields(editable=True, relative=_plain(relative + 1), cap=_plain(cap * 100))


def _guard_pair(guards: object) -> tuple[Decimal, Decimal] | None:
    """The relative and the absolute `max` of guards the form edits: none (a plan without
    guards is watched by the default set, the pair) or the pair of error-rate guards, one
    relative and one absolute, without `warn` or a name. None for any other guards."""
    if not guards:
        return _decimal(_DEFAULT_RELATIVE), _decimal(_DEFAULT_CAP)
    if not isinstance(guards, list) or len(guards) != 2:
        return None
    relative = [g for g in guards if _simple_error_rate(g, "relative")]
    absolute = [g for g in guards if _simple_error_rate(g, "absolute")]
    if len(relative) != 1 or len(absolute) != 1:
        return None
    return _decimal(relative[0]["max"]), _decimal(absolute[0]["max"])


def _simple_error_rate(guard: object, kind: str) -> bool:
    return (
        isinstance(guard, Mapping)
        and set(guard) <= {"kind", "metric", "max"}
        and guard.get("kind", "absolute") == kind
        and guard.get("metric") == "error_rate"
        and isinstance(guard.get("max"), int | float)
        and not isinstance(guard.get("max"), bool)
    )


def _decimal(value: object) -> Decimal:
    # Through the shortest text of the float, so 0.2 is 0.2 and not 0.2000000000000000111.
    return Decimal(repr(value))


def _plain(number: Decimal) -> str:
    """`1.50` -> "1.5", `20.0` -> "20"."""
    return format(number.normalize(), "f")


def _multiple(value: str) -> Decimal:
    """The relative limit as typed: "1.5" (or "1.5x") is at most 1.5 times as many errors."""
    label = "Error rate vs unexposed"
    number = _number(value.rstrip("x\u00d7 "), "relative_max", label)
    if not 1 < number <= _HIGHEST_MULTIPLE:
        raise forms.FormError(
            "relative_max",
            f"{label}: enter a multiple of the unexposed group's error rate above 1 and at "
            f"most {_HIGHEST_MULTIPLE} (1.5 allows 50% more errors), not {value}",
        )
    return number


def _cap(value: str) -> Decimal:
    """The absolute cap as typed, in percent of requests."""
    label = "Error rate cap"
    number = _number(value.rstrip("% "), "error_rate_cap", label)
    if not 0 < number <= 100:
        raise forms.FormError(
            "error_rate_cap",
            f"{label}: enter a percentage of requests above 0 and at most 100 "
            f"(20 is one request in five failing), not {value}",
        )
    return number


def _number(text: str, field: str, label: str) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise forms.FormError(field, f"{label}: enter a number, not {text!r}") from None
    exponent = number.normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # infinity or not a number
        raise forms.FormError(field, f"{label}: enter a number, not {text!r}")
    if exponent < -3:
        raise forms.FormError(field, f"{label}: use at most three decimals")
    return number
