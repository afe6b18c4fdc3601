"""Changing segments: validated by the core, versioned, audited, announced."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from graylane_server import catalog, versioning
from graylane_server.audit.service import record
from graylane_server.configs.notices import bump_versions, environment_keys
from graylane_server.errors import Conflict, NotFound
from graylane_server.flags import repository as flags
from graylane_server.models import SegmentRow, utcnow
from graylane_server.segments import repository


def get(session: Session, key: str) -> SegmentRow:
    row = repository.get(session, key)
    if row is None:
        raise NotFound(f"no segment {key!r}")
    return row


def listing(session: Session) -> Sequence[SegmentRow]:
    return repository.listing(session)


def users_of(session: Session, key: str) -> list[str]:
    """Flags whose rules refer to the segment, in any environment."""
    return [
        row.key
        for row in flags.listing(session)
        if any(
            rule.get("segment") == key
            for config in row.definition.get("environments", {}).values()
            for rule in config.get("rules", [])
        )
    ]


def put(
    session: Session,
    *,
    actor: str,
    key: str,
    definition: dict[str, Any],
    expected_version: int | None,
    reason: str | None,
) -> tuple[SegmentRow, bool]:
    row = repository.get(session, key, for_update=True)
    versioning.check(f"segment {key!r}", None if row is None else row.version, expected_version)
    raw: catalog.RawDocument = {"flags": {}, "segments": {key: definition}}
    document = catalog.check(raw, (), prefix=f"segments.{key}")
    canonical = catalog.canonical(document)["segments"][key]
    if row is not None and row.definition == canonical:
        return row, False
    row = store(session, actor=actor, key=key, row=row, definition=canonical, reason=reason)
    bump_versions(session, environment_keys(session))
    return row, True


def delete(
    session: Session, *, actor: str, key: str, expected_version: int | None, reason: str | None
) -> None:
    row = get(session, key)
    if expected_version is not None:
        versioning.check(f"segment {key!r}", row.version, expected_version)
    used_by = users_of(session, key)
    if used_by:
        raise Conflict(f"segment {key!r} is used by flags: {', '.join(used_by)}")
    remove(session, actor=actor, row=row, reason=reason)
    bump_versions(session, environment_keys(session))


def store(
    session: Session,
    *,
    actor: str,
    key: str,
    row: SegmentRow | None,
    definition: dict[str, Any],
    reason: str | None,
) -> SegmentRow:
    """Write and audit one segment; the caller announces (segments reach every environment)."""
    before = None if row is None else row.definition
    if row is None:
        row = SegmentRow(key=key, definition=definition, created_at=utcnow(), updated_at=utcnow())
        session.add(row)
    else:
        row.definition = definition
        row.updated_at = utcnow()
    session.flush()
    record(
        session,
        actor=actor,
        action="segment.create" if before is None else "segment.update",
        target_type="segment",
        target_key=key,
        before=before,
        after=definition,
        reason=reason,
    )
    return row


def remove(session: Session, *, actor: str, row: SegmentRow, reason: str | None) -> None:
    record(
        session,
        actor=actor,
        action="segment.delete",
        target_type="segment",
        target_key=row.key,
        before=row.definition,
        reason=reason,
    )
    session.delete(row)
    session.flush()
