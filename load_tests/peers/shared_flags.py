"""The 50 flags both servers hold, described once and written in each product's model:
Graylane's state document (rules and a fallthrough) and Unleash's strategies (OR-ed
flexibleRollout strategies with constraints); the evaluation contexts in each product's
shape; and loading the flags into each server through its admin API.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from harness import ENVIRONMENT

COUNTRIES = ("US", "CA", "DE", "FR", "GB", "JP", "BR", "IN")
PLANS = ("free", "pro", "enterprise")


@dataclass(frozen=True)
class Flag:
    """A boolean flag in `production`. With `countries`/`plans`, a rule serves it on to
    contexts matching both; everyone else (everyone, without a rule) gets it on with
    probability `percentage`, bucketed by user id (100: on, 0: off)."""

    key: str
    enabled: bool = True
    percentage: int = 100
    countries: tuple[str, ...] = ()
    plans: tuple[str, ...] = ()

    @property
    def has_rule(self) -> bool:
        return bool(self.countries or self.plans)

    def expected(self, country: str, plan: str) -> bool | None:
        """The answer for a context, or None when a rollout hash decides it."""
        if not self.enabled:
            return False
        if (
            self.has_rule
            and (not self.countries or country in self.countries)
            and (not self.plans or plan in self.plans)
        ):
            return True
        if self.percentage in (0, 100):
            return self.percentage == 100
        return None


def make_flags() -> list[Flag]:
    """15 on for everyone, 5 switched off, 18 percentage rollouts, 12 targeted."""
    flags = [Flag(f"toggle-on-{i:02d}") for i in range(15)]
    flags += [Flag(f"toggle-off-{i:02d}", enabled=False) for i in range(5)]
    percentages = (1, 5, 10, 20, 25, 33, 50, 75, 90)
    flags += [Flag(f"rollout-{i:02d}", percentage=percentages[i % 9]) for i in range(18)]
    for i in range(12):
        countries = (("US", "CA", "DE"), ("FR", "GB"), ("JP",))[i % 3]
        plans = ("pro", "enterprise") if i % 2 else ()
        flags.append(
            Flag(f"targeted-{i:02d}", percentage=(0, 20)[i % 4 // 2] if i < 8 else 0,
                 countries=countries, plans=plans)
        )  # fmt: skip
    return flags


FLAGS = make_flags()
assert len(FLAGS) == 50


def graylane_document(flags: Sequence[Flag]) -> dict[str, Any]:
    def config(flag: Flag) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": flag.enabled}
        if flag.has_rule:
            when = []
            if flag.countries:
                when.append({"attribute": "country", "op": "in", "values": list(flag.countries)})
            if flag.plans:
                when.append({"attribute": "plan", "op": "in", "values": list(flag.plans)})
            out["rules"] = [{"name": "launch", "when": when, "serve": {"variant": "on"}}]
        if flag.percentage in (0, 100):
            out["fallthrough"] = {"variant": "on" if flag.percentage == 100 else "off"}
        else:
            out["fallthrough"] = {
                "rollout": {"percentage": flag.percentage, "variants": {"on": 100}},
                "otherwise": "off",
            }
        return out

    return {"flags": {f.key: {"environments": {ENVIRONMENT: config(f)}} for f in flags}}


def unleash_strategies(flag: Flag) -> list[dict[str, Any]]:
    """Unleash's strategies for the flag (they are OR-ed: any one enables it)."""

    def rollout(percentage: int, stickiness: str) -> dict[str, Any]:
        return {
            "name": "flexibleRollout",
            "parameters": {
                "rollout": str(percentage),
                "stickiness": stickiness,
                "groupId": flag.key,
            },
            "constraints": [],
        }

    strategies = []
    if flag.has_rule:
        rule = rollout(100, "default")
        if flag.countries:
            rule["constraints"].append(
                {"contextName": "country", "operator": "IN", "values": list(flag.countries)}
            )
        if flag.plans:
            rule["constraints"].append(
                {"contextName": "plan", "operator": "IN", "values": list(flag.plans)}
            )
        strategies.append(rule)
    if flag.percentage == 100:
        strategies.append(rollout(100, "default"))
    elif flag.percentage > 0:
        strategies.append(rollout(flag.percentage, "userId"))
    return strategies


@dataclass(frozen=True)
class Context:
    user: str
    country: str
    plan: str

    def ofrep(self) -> dict[str, Any]:
        return {"context": {"targetingKey": self.user, "country": self.country, "plan": self.plan}}

    def unleash(self) -> dict[str, Any]:
        properties = {"country": self.country, "plan": self.plan}
        return {"context": {"userId": self.user, "properties": properties}}


def make_contexts(count: int, seed: int = 7) -> list[Context]:
    rng = random.Random(seed)
    return [
        Context(f"user-{rng.randrange(10**9)}", rng.choice(COUNTRIES), rng.choice(PLANS))
        for _ in range(count)
    ]


def load_unleash(admin: httpx.Client, flags: Sequence[Flag]) -> None:
    base = "/api/admin/projects/default/features"
    for flag in flags:
        admin.post(base, json={"name": flag.key, "type": "release"}).raise_for_status()
        for strategy in unleash_strategies(flag):
            path = f"{base}/{flag.key}/environments/{ENVIRONMENT}/strategies"
            admin.post(path, json=strategy).raise_for_status()
        if flag.enabled:
            admin.post(f"{base}/{flag.key}/environments/{ENVIRONMENT}/on").raise_for_status()


def load_graylane(admin: httpx.Client, flags: Sequence[Flag]) -> str:
    admin.put("/api/v1/state", json=graylane_document(flags)).raise_for_status()
    response = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": ENVIRONMENT})
    response.raise_for_status()
    token: str = response.json()["token"]
    return token
