"""People who sign in to the admin UI, each with a role like a token's."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane.core import Problem
from graylane.core.document import KEY_PATTERN
from graylane_server.audit.service import record
from graylane_server.errors import Conflict, InvalidDocument, NotFound
from graylane_server.models import UserRow, utcnow
from graylane_server.tokens.principal import Role
from graylane_server.users.passwords import MIN_LENGTH, hash_password


def _public(row: UserRow) -> dict[str, object]:
    return {"username": row.username, "role": row.role, "disabled": row.disabled}


def _check_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidDocument([Problem("password", f"must be at least {MIN_LENGTH} characters")])


def get(session: Session, username: str) -> UserRow:
    row = session.scalars(select(UserRow).where(UserRow.username == username)).first()
    if row is None:
        raise NotFound(f"no user {username!r}")
    return row


def any_user(session: Session) -> bool:
    return session.scalars(select(UserRow.id).limit(1)).first() is not None


def listing(session: Session) -> Sequence[UserRow]:
    return session.scalars(select(UserRow).order_by(UserRow.username)).all()


def create(session: Session, *, actor: str, username: str, password: str, role: Role) -> UserRow:
    if not KEY_PATTERN.fullmatch(username):
        raise InvalidDocument(
            [Problem("username", "use letters, digits, '.', '_' and '-' (at most 128)")]
        )
    _check_password(password)
    if session.scalars(select(UserRow.id).where(UserRow.username == username)).first():
        raise Conflict(f"user {username!r} already exists")
    row = UserRow(
        username=username,
        password_hash=hash_password(password),
        role=str(role),
        disabled=False,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="user.create",
        target_type="user",
        target_key=username,
        after=_public(row),
    )
    return row


def update(
    session: Session,
    *,
    actor: str,
    username: str,
    role: Role | None = None,
    disabled: bool | None = None,
    password: str | None = None,
) -> UserRow:
    row = get(session, username)
    before = _public(row)
    if role is not None:
        row.role = str(role)
    if disabled is not None:
        row.disabled = disabled
    if password is not None:
        _check_password(password)
        row.password_hash = hash_password(password)
    after = _public(row)
    if after != before or password is not None:
        record(
            session,
            actor=actor,
            action="user.update",
            target_type="user",
            target_key=username,
            before=before,
            after={**after, "password_changed": password is not None},
        )
    return row


def delete(session: Session, *, actor: str, username: str) -> None:
    row = get(session, username)
    record(
        session,
        actor=actor,
        action="user.delete",
        target_type="user",
        target_key=username,
        before=_public(row),
    )
    session.delete(row)
