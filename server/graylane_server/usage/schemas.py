"""What SDKs send: aggregated counts, never users."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Field(min_length=1, max_length=128)


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
    event: str = Field(min_length=1, max_length=64)
    count: int = Field(ge=0, le=10**12)


class Window(BaseModel):
    start: float
    end: float


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
