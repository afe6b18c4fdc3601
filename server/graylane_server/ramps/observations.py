"""What the SDKs observed during a ramp, as guards read it: counts filed by the window the
SDK measured them in (not by when the report arrived), by the rollout percentage that
produced them, and split into unit clusters so the analysis unit is the unit randomised.

A unit (the value of the rollout's `bucket_by` attribute) always falls in the same one of
`CLUSTERS` clusters, `bucket(flag_salt + ":cluster", unit) % CLUSTERS`. Cluster totals are
then independent of each other even when one unit sends many correlated requests, which
is what a variance valid under clustering needs (the "bucket" method of online
experimentation platforms; Deng, Lu and Litz, "Trustworthy analysis of online A/B tests",
WSDM 2017), while no unit ever leaves the app. A request with no unit is a unit of its own,
filed in a random cluster.

Pure data: the usage store builds it, guards read it, the simulation fabricates it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

CLUSTERS = 32
REQUEST = "request"

_ZEROS_INT: tuple[int, ...] = (0,) * CLUSTERS
_ZEROS_FLOAT: tuple[float, ...] = (0.0,) * CLUSTERS


@dataclass(frozen=True, slots=True)
class Series:
    """One event (or measured value) of one group, per unit cluster: how many times it
    was recorded, the sum of the recorded values and the sum of their squares. A plain
    event such as `request` or `error` records the value 1, so `total == count`."""

    count: tuple[int, ...] = _ZEROS_INT
    total: tuple[float, ...] = _ZEROS_FLOAT
    squares: tuple[float, ...] = _ZEROS_FLOAT

    @property
    def n(self) -> int:
        return sum(self.count)

    @property
    def sum(self) -> float:
        return sum(self.total)

    def __add__(self, other: Series) -> Series:
        return Series(
            tuple(a + b for a, b in zip(self.count, other.count, strict=True)),
            tuple(a + b for a, b in zip(self.total, other.total, strict=True)),
            tuple(a + b for a, b in zip(self.squares, other.squares, strict=True)),
        )


EMPTY = Series()


@dataclass(frozen=True, slots=True)
class Group:
    """One side of the comparison (`exposed` or `unexposed`): event name -> Series."""

    series: Mapping[str, Series] = field(default_factory=dict)

    def get(self, event: str) -> Series:
        return self.series.get(event, EMPTY)

    @property
    def requests(self) -> int:
        return self.get(REQUEST).n

    def __add__(self, other: Group) -> Group:
        names = set(self.series) | set(other.series)
        return Group({name: self.get(name) + other.get(name) for name in sorted(names)})


BUCKET_SECONDS = 10
"""Usage buckets are this many seconds long (`usage.store` files SDK windows by them)."""


def bucket_start(at: float) -> float:
    """The start of the usage bucket holding the moment `at` (an infinity stays one)."""
    return at // BUCKET_SECONDS * BUCKET_SECONDS if math.isfinite(at) else at


@dataclass(frozen=True, slots=True)
class Slice:
    """What SDKs counted in one usage bucket (`start`, Unix seconds, `BUCKET_SECONDS`
    long) while they served the flag's fallthrough at `percentage`."""

    start: float
    percentage: Decimal
    exposed: Group = field(default_factory=Group)
    unexposed: Group = field(default_factory=Group)


@dataclass(frozen=True, slots=True)
class Observations:
    """Every slice of one flag in one environment over a span of time, oldest first."""

    slices: tuple[Slice, ...] = ()
    reported_until: float | None = None
    """The end of the newest SDK window counted (None: no report yet). Guards hold when
    it lags the clock: evidence that has not arrived cannot show harm."""
    unattributed: int = 0
    """Requests (exposed and unexposed) in the span from SDKs too old to say which rollout
    percentage produced them: not in any slice, so guards do not read them; worth a note
    on the ramp page while it is not 0."""

    def at(self, percentage: Decimal, since: float = float("-inf")) -> Iterable[Slice]:
        """The slices served at `percentage` from the usage bucket holding `since` on."""
        first = bucket_start(since)
        return (s for s in self.slices if s.percentage == percentage and s.start >= first)
