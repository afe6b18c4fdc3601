"""Signed-in sessions of the admin UI, kept in the database.

The browser holds a random secret in an HttpOnly cookie; the table holds only its hash,
so a copy of the database signs nobody in. Each session carries its own CSRF token and
at most one message for the next page ("Saved", "Rolled back"). A session in use stays
alive; an idle one ends, and none outlives its limit.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from graylane_server.models import UiSessionRow, UserRow
from graylane_server.settings import Settings
from graylane_server.tokens.principal import Principal, Role
from graylane_server.ui import csrf
from graylane_server.users.passwords import hash_password, verify_password

COOKIE = "graylane_session"
FlashKind = Literal["success", "error", "info"]


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who is using the UI in this request."""

    session_id: int
    user_id: int
    username: str
    role: Role
    csrf_token: str
    flash: dict[str, str] | None = None

    @property
    def principal(self) -> Principal:
        """What the services see: audited as `user:<name>`."""
        return Principal(kind="user", name=self.username, role=self.role, id=self.user_id)

    def can(self, role: Role | str) -> bool:
        return self.role.allows(Role(role))


@dataclass(frozen=True, slots=True)
class Lifetime:
    """How long a session lasts: `idle` since it was last used, and never longer than
    `limit` after signing in."""

    idle: timedelta
    limit: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Lifetime:
        return cls(
            idle=timedelta(hours=settings.ui_session_hours),
            limit=timedelta(hours=max(settings.ui_session_max_hours, settings.ui_session_hours)),
        )

    def expiry(self, signed_in_at: datetime, now: datetime) -> datetime:
        return min(now + self.idle, signed_in_at + self.limit)

    def due(self, expires_at: datetime, now: datetime) -> bool:
        """Extend only once half the idle time has passed, so a busy page does not write
        on every request."""
        return expires_at - now < self.idle / 2


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Account:
    """What signing in needs of a user, read before (and apart from) the password check."""

    user_id: int
    password_hash: str
    disabled: bool


@lru_cache(maxsize=1)
def decoy_hash() -> str:
    """A hash no password matches, checked for unknown usernames. Made at start-up, so even
    the first unknown username costs one check, like a known one."""
    return hash_password(secrets.token_urlsafe(16))


def account(session: Session, username: str) -> Account | None:
    row = session.execute(
        select(UserRow.id, UserRow.password_hash, UserRow.disabled).where(
            UserRow.username == username.strip()
        )
    ).first()
    return None if row is None else Account(*row)


def password_matches(found: Account | None, password: str) -> bool:
    """Whether `password` signs `found` in. Exactly one password check whatever the
    answer, so its timing does not tell which usernames exist; disabled users never sign
    in. Slow on purpose: run it outside any transaction."""
    if found is None:
        verify_password(decoy_hash(), password)
        return False
    return verify_password(found.password_hash, password) and not found.disabled


def start(session: Session, user_id: int, *, lifetime: Lifetime, now: datetime) -> str:
    """A new session for the user; returns the secret for the cookie (never stored)."""
    secret = secrets.token_urlsafe(32)
    session.execute(delete(UiSessionRow).where(UiSessionRow.expires_at < now))
    session.add(
        UiSessionRow(
            secret_hash=_hash(secret),
            user_id=user_id,
            csrf_token=csrf.new_token(),
            flash=None,
            created_at=now,
            expires_at=lifetime.expiry(now, now),
        )
    )
    session.flush()
    return secret


def find(
    session: Session,
    secret: str,
    *,
    now: datetime,
    take_flash: bool,
    extend: Lifetime | None = None,
) -> SignedIn | None:
    """The live session behind a cookie: unexpired, and its user still enabled. With
    `extend`, this use keeps it alive (within its limit)."""
    found = session.execute(
        select(UiSessionRow, UserRow)
        .join(UserRow, UserRow.id == UiSessionRow.user_id)
        .where(UiSessionRow.secret_hash == _hash(secret))
    ).first()
    if found is None:
        return None
    row, user = found
    if row.expires_at <= now or user.disabled:
        return None
    if extend is not None and extend.due(row.expires_at, now):
        row.expires_at = extend.expiry(row.created_at, now)
    flash = None
    if take_flash and row.flash is not None:
        flash = {str(k): str(v) for k, v in row.flash.items()}
        row.flash = None
    return SignedIn(
        session_id=row.id,
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        csrf_token=row.csrf_token,
        flash=flash,
    )


def end(session: Session, secret: str) -> None:
    session.execute(delete(UiSessionRow).where(UiSessionRow.secret_hash == _hash(secret)))


def flash(session: Session, signed_in: SignedIn, kind: FlashKind, message: str) -> None:
    """A message for the next page this session shows."""
    row = session.get(UiSessionRow, signed_in.session_id)
    if row is not None:
        row.flash = {"kind": kind, "message": message}
