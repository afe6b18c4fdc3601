"""The flag document (contract 1) as typed, immutable values.

These are produced only by `parse_document`, so every instance is already valid:
variant names resolve, weights sum to 100, operators know their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

JsonValue = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
Scalar = bool | int | float | str

DEFAULT_BUCKET_BY = "targetingKey"
DEFAULT_STAGES: tuple[Decimal, ...] = (Decimal(1), Decimal(10), Decimal(50), Decimal(100))


@dataclass(frozen=True, slots=True)
class Clause:
    attribute: str
    op: str
    values: tuple[Scalar, ...] = ()


@dataclass(frozen=True, slots=True)
class Rollout:
    percentage: Decimal
    variants: tuple[tuple[str, Decimal], ...]
    """Variant name and weight, in document order; weights sum to 100."""
    bucket_by: str = DEFAULT_BUCKET_BY


@dataclass(frozen=True, slots=True)
class Serve:
    """Either a fixed `variant`, or a `rollout` with the variant for units outside it."""

    variant: str | None = None
    rollout: Rollout | None = None
    otherwise: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    serve: Serve
    when: tuple[Clause, ...] = ()
    segment: str | None = None


GuardKind = Literal["absolute", "relative", "prometheus", "webhook"]


@dataclass(frozen=True, slots=True)
class Guard:
    """A health check on a ramp.

    - `absolute`: the exposed group's `metric` (`error_rate` = `error` events over
      `request` events) must stay below `max`;
    - `relative`: the exposed group's rate may exceed the unexposed group's by at most
      `max` (0.5 = 50% worse);
    - `prometheus`: the value of `query` must stay below `max`;
    - `webhook`: an alerting system trips it by name (`POST /api/v1/guards/webhook/...`).

    `warn` is a lower level that pauses automatic advance instead of rolling back.
    """

    kind: GuardKind = "absolute"
    metric: str | None = None
    max: float | None = None
    warn: float | None = None
    name: str | None = None
    query: str | None = None
    url: str | None = None

    @property
    def label(self) -> str:
        """How the audit log and the UI name the guard (`guard:<label>`)."""
        if self.name:
            return self.name
        if self.kind in ("absolute", "relative"):
            return f"{self.metric}" if self.kind == "absolute" else f"{self.metric}-relative"
        return self.kind


@dataclass(frozen=True, slots=True)
class RampPlan:
    stages: tuple[Decimal, ...] = DEFAULT_STAGES
    min_stage_duration: float = 600.0
    """Seconds."""
    min_samples: int = 1000
    guards: tuple[Guard, ...] = (Guard(metric="error_rate", max=0.001),)
    auto_advance: bool = True
    on_breach: Literal["rollback", "step_back"] = "rollback"
    approval_above: Decimal | None = None
    """In a protected environment, advancing past this percentage needs a release manager."""


@dataclass(frozen=True, slots=True)
class FlagEnvironment:
    enabled: bool
    fallthrough: Serve
    rules: tuple[Rule, ...] = ()
    ramp: RampPlan | None = None


@dataclass(frozen=True, slots=True)
class Flag:
    key: str
    variants: tuple[tuple[str, JsonValue], ...]
    """Variant name and value, in document order; all values of one JSON type."""
    off_variant: str
    environments: Mapping[str, FlagEnvironment] = field(default_factory=dict)
    description: str = ""
    salt: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def bucket_salt(self) -> str:
        return self.key if self.salt is None else self.salt

    def value_of(self, variant: str) -> JsonValue:
        return dict(self.variants)[variant]


@dataclass(frozen=True, slots=True)
class Segment:
    key: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    when: tuple[Clause, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class Sources:
    """The raw definitions a document was parsed from, each next to what it became, so
    that the next parse can keep what did not change (`parse_document(previous=...)`)."""

    flags: Mapping[str, tuple[object, Flag]] = field(default_factory=dict)
    segments: Mapping[str, tuple[object, Segment]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Document:
    flags: Mapping[str, Flag] = field(default_factory=dict)
    segments: Mapping[str, Segment] = field(default_factory=dict)
    sources: Sources | None = field(default=None, compare=False, repr=False)
    """Set by `parse_document`; not part of what the document means."""

    @property
    def environments(self) -> tuple[str, ...]:
        """Every environment some flag is configured for, sorted."""
        return tuple(sorted({env for flag in self.flags.values() for env in flag.environments}))
