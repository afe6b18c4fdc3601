"""Token request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .principal import Role


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["admin", "sdk"]
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    environment: str | None = None

    @model_validator(mode="after")
    def _kind_fits(self) -> TokenCreate:
        if self.kind == "admin" and (self.role is None or self.environment is not None):
            raise ValueError("an admin token needs a `role` and no `environment`")
        if self.kind == "sdk" and (self.environment is None or self.role is not None):
            raise ValueError("an SDK token needs an `environment` and no `role`")
        return self


class TokenOut(BaseModel):
    id: int
    name: str
    kind: str
    role: str | None
    environment: str | None
    hint: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret. Shown this once; only its hash is kept.")


class TokenList(BaseModel):
    tokens: list[TokenOut]
