"""Environments: listed by all, created and changed by admins."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane.core import Problem
from graylane.core.document import KEY_PATTERN, KEY_RULE
from graylane_server.audit.service import record
from graylane_server.configs.notices import bump_versions
from graylane_server.errors import Conflict, InvalidDocument, NotFound
from graylane_server.models import Environment, utcnow


def listing(session: Session) -> Sequence[Environment]:
    return session.scalars(select(Environment).order_by(Environment.id)).all()


def get(session: Session, key: str) -> Environment:
    row = session.scalars(select(Environment).where(Environment.key == key)).first()
    if row is None:
        raise NotFound(f"no environment {key!r}")
    return row


def _public(row: Environment) -> dict[str, object]:
    return {"key": row.key, "name": row.name, "protected": row.protected}


def create(
    session: Session, *, actor: str, key: str, name: str | None, protected: bool
) -> Environment:
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidDocument([Problem("key", f"invalid environment key {key!r}: use {KEY_RULE}")])
    if session.scalars(select(Environment.id).where(Environment.key == key)).first() is not None:
        raise Conflict(f"environment {key!r} already exists")
    row = Environment(
        key=key,
        name=name or key.capitalize(),
        protected=protected,
        config_version=1,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="environment.create",
        target_type="environment",
        target_key=key,
        environment=key,
        after=_public(row),
    )
    bump_versions(session, [key])
    return row


def update(
    session: Session, *, actor: str, key: str, name: str | None, protected: bool | None
) -> Environment:
    row = get(session, key)
    before = _public(row)
    if name is not None:
        row.name = name
    if protected is not None:
        row.protected = protected
    if _public(row) != before:
        record(
            session,
            actor=actor,
            action="environment.update",
            target_type="environment",
            target_key=key,
            environment=key,
            before=before,
            after=_public(row),
        )
    return row
