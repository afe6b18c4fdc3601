"""What SDKs send: aggregated counts, never users."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from graylane.core.limits import MAX_EVENT_NAME
from graylane_server.ramps.observations import CLUSTERS

Name = Field(min_length=1, max_length=128)
PerCluster = Field(default=None, min_length=CLUSTERS, max_length=CLUSTERS)
Count = Annotated[int, Field(ge=0, le=10**12)]
Amount = Annotated[float, Field(ge=-1e30, le=1e30, allow_inf_nan=False)]
Square = Annotated[float, Field(ge=0, le=1e60, allow_inf_nan=False)]


class EvaluationCount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flag: str = Name
    variant: str = Field(min_length=1, max_length=128)
    count: int = Field(ge=0, le=10**12)


class EventCount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flag: str = Name
    variant: str = Field(max_length=128)
    group: Literal["exposed", "unexposed", "targeted"]
    event: str = Field(min_length=1, max_length=MAX_EVENT_NAME)
    """Also held to the edge limits (valid Unicode, no NUL): the SDK's `track` applies the
    same rule (`graylane.core.limits.event_name_problem`) and drops what this refuses."""
    count: int = Field(ge=0, le=10**12)
    percentage: Decimal | None = Field(default=None, ge=0, le=100, decimal_places=3)
    """The flag's fallthrough rollout percentage when these events were counted. Events
    without it (from older SDKs) are kept for charts; guards do not read them."""
    clusters: list[Count] | None = PerCluster
    """The count split by unit cluster (`CLUSTERS` of them); comes with `percentage`."""
    sums: list[Amount] | None = PerCluster
    """Per cluster, the sum of the recorded values (a plain event records 1); only when
    some event carried a value."""
    squares: list[Square] | None = PerCluster
    """Per cluster, the sum of the squares of the recorded values; comes with `sums`."""

    @model_validator(mode="after")
    def _consistent(self) -> EventCount:
        if (self.percentage is None) != (self.clusters is None):
            raise ValueError("percentage and clusters come together")
        if (self.sums is None) != (self.squares is None):
            raise ValueError("sums and squares come together")
        if self.sums is not None and self.clusters is None:
            raise ValueError("sums and squares need clusters")
        if self.clusters is not None and sum(self.clusters) != self.count:
            raise ValueError(
                f"the clusters add up to {sum(self.clusters)}, not to count {self.count}"
            )
        return self


class Window(BaseModel):
    start: float = Field(allow_inf_nan=False)
    end: float = Field(allow_inf_nan=False)


class MetricsReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config_version: int | None = None
    window: Window | None = None
    evaluations: list[EvaluationCount] = Field(default_factory=list, max_length=20_000)
    events: list[EventCount] = Field(default_factory=list, max_length=20_000)
    dropped: int = Field(default=0, ge=0)


class Accepted(BaseModel):
    accepted: int


class SeriesPoint(BaseModel):
    at: int
    """Bucket start, Unix seconds."""
    count: int


class FlagUsage(BaseModel):
    flag: str
    environment: str
    since: int
    until: int
    bucket_seconds: int
    evaluations: dict[str, int]
    """Variant -> evaluations in the window."""
    events: dict[str, dict[str, int]]
    """`group/event` (e.g. `exposed/error`) -> variant -> count in the window."""
    series: dict[str, list[SeriesPoint]]
    """`group/event` -> count per bucket, for charts."""
    unattributed: dict[str, int] = Field(default_factory=dict)
    """`group/event` -> events in the window from SDKs too old to say which rollout
    percentage produced them: in the totals and charts above, but not read by guards."""
