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
RATE_SUFFIX = "_rate"
KPI_WARN = 0.15
KPI_MAX = 0.30
"""The `kpi` shorthand's levels: warn at 15% deviation from the unexposed group, roll
back at 30%."""


@dataclass(frozen=True, slots=True)
class Guard:
    """A health check on a ramp.

    - `absolute`: the exposed group's `metric` must stay below `max`;
    - `relative`: the exposed group's `metric` may exceed the unexposed group's by at most
      `max` (0.5 = 50% higher);
    - `prometheus`: the value of `query` must stay below `max`;
    - `webhook`: an alerting system trips it by name (`POST /api/v1/guards/webhook/...`).

    A `metric` is either a rate, `<event>_rate` (`error_rate` = `error` events over
    `request` events), or a continuous metric, `<event>` (`latency` = the sum of the
    values tracked as `latency` over `request` events: the mean value per request).
    Higher is worse for both.

    `warn` is a lower level that pauses automatic advance instead of rolling back.
    `{kpi: latency}` is shorthand for a relative guard warning at `KPI_WARN` and rolling
    back at `KPI_MAX`.
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

    @property
    def event(self) -> str | None:
        """The SDK event the metric is made of: `error` for `error_rate`, `latency` for
        `latency`; None for guards that read no SDK counts."""
        return None if self.metric is None else self.metric.removesuffix(RATE_SUFFIX)

    @property
    def continuous(self) -> bool:
        """A mean value per request (`latency`) rather than a rate (`error_rate`)."""
        return self.metric is not None and not self.metric.endswith(RATE_SUFFIX)


DEFAULT_GUARDS: tuple[Guard, ...] = (
    Guard(kind="relative", metric="error_rate", max=0.5),
    Guard(kind="absolute", metric="error_rate", max=0.2),
)
"""Compared with the unexposed group (at most 50% more errors), with an absolute cap that
only catches disasters (one request in five failing), so that no baseline error rate
stalls or rolls back a healthy ramp. The set `bench/ramp_simulation.py` measures."""


@dataclass(frozen=True, slots=True)
class RampPlan:
    stages: tuple[Decimal, ...] = DEFAULT_STAGES
    min_stage_duration: float = 600.0
    """Seconds."""
    min_samples: int = 1000
    guards: tuple[Guard, ...] = DEFAULT_GUARDS
    auto_advance: bool = True
    on_breach: Literal["rollback", "step_back"] = "rollback"
    approval_above: Decimal | None = None
    """In a protected environment, advancing past this percentage needs a release manager."""
    watch_completed: float = 3600.0
    """Seconds after reaching 100% during which the guards keep watching the completed
    ramp and roll it back on a breach; after that the ramp is done."""


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
