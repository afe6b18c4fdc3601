"""Change notices: queued inside a change's transaction, published after it commits, so no
replica hears of a version the database does not have yet, nor of one rolled back."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from graylane_server.models import Environment

from .bus import Bus

_PENDING = "graylane.pending_notices"
PUBLISHED = "graylane.published_versions"
"""After commit: {environment: version} this transaction announced."""


def notify_after_commit(session: Session, message: dict[str, Any]) -> None:
    session.info.setdefault(_PENDING, []).append(message)


def bump_versions(session: Session, environments: Iterable[str]) -> dict[str, int]:
    """Raise the config version of each environment and queue the notices."""
    keys = sorted(set(environments))
    if not keys:
        return {}
    session.execute(
        update(Environment)
        .where(Environment.key.in_(keys))
        .values(config_version=Environment.config_version + 1)
        .execution_options(synchronize_session=False)
    )
    versions = dict(
        session.execute(
            select(Environment.key, Environment.config_version).where(Environment.key.in_(keys))
        ).all()
    )
    for key, version in versions.items():
        notify_after_commit(session, {"type": "config", "environment": key, "version": version})
    return versions


def environment_keys(session: Session) -> list[str]:
    return list(session.scalars(select(Environment.key).order_by(Environment.id)))


def publish_after_commit(
    factory: sessionmaker[Session],
    bus: Bus,
    local: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Wire a session factory so committed notices reach the bus, and `local` at once:
    this replica acts on its own changes without waiting for the round trip (and still
    acts on them while Redis is away)."""

    @event.listens_for(factory, "after_commit")
    def _publish(session: Session) -> None:
        published: dict[str, int] = {}
        for message in session.info.pop(_PENDING, []):
            if local is not None:
                local(message)
            bus.publish(message)
            if message.get("type") == "config":
                published[message["environment"]] = message["version"]
        if published:
            session.info[PUBLISHED] = published

    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(_PENDING, None)
