"""Changing flags: validated whole by the core, versioned, audited, announced."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from graylane_server import catalog, prometheus_urls, versioning
from graylane_server.audit.service import record
from graylane_server.configs.notices import bump_versions, environment_keys
from graylane_server.errors import NotFound
from graylane_server.flags import repository
from graylane_server.models import FlagRow, utcnow
from graylane_server.ramps.ownership import cancel_dropped, keep_owned
from graylane_server.segments import repository as segments


def get(session: Session, key: str) -> FlagRow:
    row = repository.get(session, key)
    if row is None:
        raise NotFound(f"no flag {key!r}")
    return row


def listing(session: Session) -> Sequence[FlagRow]:
    return repository.listing(session)


def validate(
    session: Session, key: str, definition: dict[str, Any], *, prefix: str
) -> dict[str, Any]:
    """The flag's canonical definition, or InvalidDocument with paths under `prefix`."""
    raw: catalog.RawDocument = {
        "flags": {key: definition},
        "segments": {row.key: row.definition for row in segments.listing(session)},
    }
    document = catalog.check(raw, environment_keys(session), prefix=prefix)
    return catalog.canonical(document)["flags"][key]


def put(
    session: Session,
    *,
    actor: str,
    key: str,
    definition: dict[str, Any],
    expected_version: int | None,
    reason: str | None,
) -> tuple[FlagRow, bool]:
    """Create or replace a flag. Returns the row and whether anything changed."""
    row = repository.get(session, key, for_update=True)
    versioning.check(f"flag {key!r}", None if row is None else row.version, expected_version)
    canonical = validate(session, key, keep_owned(session, key, definition), prefix=f"flags.{key}")
    stored = {} if row is None else {key: row.definition}
    prometheus_urls.check(session, {key: definition}, stored, prefix=f"flags.{key}")
    return write(session, actor=actor, key=key, row=row, definition=canonical, reason=reason)


def put_environment(
    session: Session,
    *,
    actor: str,
    key: str,
    environment: str,
    config: dict[str, Any],
    expected_version: int | None,
    reason: str | None,
) -> tuple[FlagRow, bool]:
    """Replace one environment's configuration of a flag."""
    row = get(session, key)
    versioning.check(f"flag {key!r}", row.version, expected_version)
    definition = copy.deepcopy(row.definition)
    definition.setdefault("environments", {})[environment] = config
    definition = keep_owned(session, key, definition)
    prefix = f"flags.{key}.environments.{environment}"
    canonical = validate(session, key, definition, prefix=prefix)
    prometheus_urls.check(session, {key: definition}, {key: row.definition}, prefix=prefix)
    return write(
        session,
        actor=actor,
        key=key,
        row=row,
        definition=canonical,
        reason=reason,
        environment=environment,
    )


def set_enabled(
    session: Session, *, actor: str, key: str, environment: str, enabled: bool, reason: str | None
) -> tuple[FlagRow, bool]:
    """The kill switch. No version needed: turning a flag off must never wait for a
    re-read, and setting the same state twice changes nothing."""
    row = repository.get(session, key, for_update=True)
    if row is None:
        raise NotFound(f"no flag {key!r}")
    if environment not in environment_keys(session):
        raise NotFound(f"no environment {environment!r}")
    definition = copy.deepcopy(row.definition)
    config = definition.setdefault("environments", {}).setdefault(environment, {})
    config["enabled"] = enabled
    canonical = validate(session, key, definition, prefix=f"flags.{key}")
    action = "flag.enable" if enabled else "flag.disable"
    return write(
        session,
        actor=actor,
        key=key,
        row=row,
        definition=canonical,
        reason=reason,
        environment=environment,
        action=action,
    )


def delete(
    session: Session, *, actor: str, key: str, expected_version: int | None, reason: str | None
) -> None:
    row = get(session, key)
    if expected_version is not None:
        versioning.check(f"flag {key!r}", row.version, expected_version)
    bump_versions(session, remove(session, actor=actor, row=row, reason=reason))


def write(
    session: Session,
    *,
    actor: str,
    key: str,
    row: FlagRow | None,
    definition: dict[str, Any],
    reason: str | None,
    environment: str | None = None,
    action: str | None = None,
) -> tuple[FlagRow, bool]:
    """Store a validated, canonical definition and announce it. Writing the same
    definition again is a no-op: no version, no audit entry, no notice."""
    if row is not None and row.definition == definition:
        return row, False
    row, affected = store(
        session,
        actor=actor,
        key=key,
        row=row,
        definition=definition,
        reason=reason,
        environment=environment,
        action=action,
    )
    bump_versions(session, affected)
    return row, True


def store(
    session: Session,
    *,
    actor: str,
    key: str,
    row: FlagRow | None,
    definition: dict[str, Any],
    reason: str | None,
    environment: str | None = None,
    action: str | None = None,
    audit: bool = True,
) -> tuple[FlagRow, list[str]]:
    """Write and audit one flag; returns the environments whose SDKs see a difference,
    for the caller to announce (once, for a whole batch). `audit=False` is for callers
    that record the change in their own words (a ramp transition)."""
    before = None if row is None else row.definition
    affected = catalog.affected_environments(before, definition, environment_keys(session))
    if row is None:
        row = FlagRow(key=key, definition=definition, created_at=utcnow(), updated_at=utcnow())
        session.add(row)
    else:
        row.definition = definition
        row.updated_at = utcnow()
    session.flush()
    cancel_dropped(session, key, definition, actor)
    if not audit:
        return row, affected
    record(
        session,
        actor=actor,
        action=action or ("flag.create" if before is None else "flag.update"),
        target_type="flag",
        target_key=key,
        environment=environment,
        before=before,
        after=definition,
        reason=reason,
    )
    return row, affected


def remove(session: Session, *, actor: str, row: FlagRow, reason: str | None) -> list[str]:
    """Delete and audit one flag; returns the environments to announce."""
    record(
        session,
        actor=actor,
        action="flag.delete",
        target_type="flag",
        target_key=row.key,
        before=row.definition,
        reason=reason,
    )
    session.delete(row)
    session.flush()
    return environment_keys(session)
