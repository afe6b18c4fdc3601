"""Who is calling: roles, and the principal a token or session stands for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    """Admin roles, each able to do everything the ones before it can."""

    VIEWER = "viewer"
    EDITOR = "editor"
    RELEASE_MANAGER = "release_manager"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["admin", "sdk", "user"]
    name: str
    role: Role | None = None
    """For admin tokens and users; SDK tokens have none."""
    environment: str | None = None
    """For SDK tokens: the one environment they may read."""
    id: int | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"user:{self.name}" if self.kind == "user" else f"token:{self.name}"


SYSTEM = Principal(kind="admin", name="system", role=Role.ADMIN)
