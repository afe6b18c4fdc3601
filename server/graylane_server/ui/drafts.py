"""Definitions drafted from the UI's short forms: a new flag, a ramp plan, an environment's
configuration about to change. Pure: the services validate and store what comes out."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from graylane_server.ui import forms


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
    limit = forms.text(form, "error_rate_max")
    guards = plan.get("guards")
    # The form edits one error-rate guard; guards written in the definition stay as written.
    simple = not guards or (
        len(guards) == 1 and guards[0].get("metric") == "error_rate" and "kind" not in guards[0]
    )
    if limit and simple:
        plan["guards"] = [
            {"metric": "error_rate", "max": float(forms.percentage(limit, "error_rate_max")) / 100}
        ]
    return plan
