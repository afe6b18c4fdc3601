"""Fenced leases in the database: exactly one holder acts at a time.

A holder renews its lease well inside the time to live. A new holder gets a larger fence
number, and every action taken under the lease re-checks holder and fence in its own
transaction, so a holder that stalled and lost its lease cannot act on stale belief.
Works the same on PostgreSQL (row locks) and SQLite (one writer at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane_server.models import LeaseRow


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    fence: int


def acquire(session: Session, name: str, holder: str, ttl: float, now: datetime) -> Lease | None:
    """Take or renew the lease; None while someone else holds it."""
    row = session.scalars(select(LeaseRow).where(LeaseRow.name == name).with_for_update()).first()
    until = now + timedelta(seconds=ttl)
    if row is None:
        session.add(LeaseRow(name=name, holder=holder, fence=1, expires_at=until))
        session.flush()
        return Lease(name, holder, 1)
    if row.holder == holder and row.expires_at > now:
        row.expires_at = until
        return Lease(name, holder, row.fence)
    if row.expires_at <= now:
        row.holder, row.fence, row.expires_at = holder, row.fence + 1, until
        return Lease(name, holder, row.fence)
    return None


def still_held(session: Session, lease: Lease, now: datetime) -> bool:
    """In the transaction about to act: is this lease still ours (same fence, not expired)?
    Locks the lease row, so no new holder can take over until the action commits."""
    row = session.scalars(
        select(LeaseRow).where(LeaseRow.name == lease.name).with_for_update()
    ).first()
    return (
        row is not None
        and row.holder == lease.holder
        and row.fence == lease.fence
        and row.expires_at > now
    )


def release(session: Session, lease: Lease) -> None:
    row = session.scalars(
        select(LeaseRow).where(LeaseRow.name == lease.name).with_for_update()
    ).first()
    if row is not None and row.holder == lease.holder and row.fence == lease.fence:
        row.expires_at = datetime.fromtimestamp(0, row.expires_at.tzinfo)
