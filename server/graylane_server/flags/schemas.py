"""Flag response bodies. Request bodies are the document's own shape (contract 1)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class EnvironmentSummary(BaseModel):
    enabled: bool
    rollout: float | None = Field(description="Fallthrough rollout percentage, if it has one.")
    ramp: bool = Field(description="Whether a ramp plan drives the rollout.")
    rules: int


class FlagSummary(BaseModel):
    key: str
    version: int
    description: str
    tags: list[str]
    updated_at: datetime
    environments: dict[str, EnvironmentSummary]


class FlagList(BaseModel):
    flags: list[FlagSummary]


class EnabledBody(BaseModel):
    enabled: bool
