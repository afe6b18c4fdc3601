"""Outbound notices: queued in the transaction of the change they report (an outbox),
delivered afterwards with retries, every attempt visible in the API."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from graylane_server.audit.service import record
from graylane_server.errors import NotFound
from graylane_server.models import DeliveryRow, WebhookRow, utcnow
from graylane_server.webhooks.signing import sign

log = structlog.get_logger(__name__)
MAX_ATTEMPTS = 8
EVENTS = (
    "ramp.start",
    "ramp.advance",
    "ramp.pause",
    "ramp.resume",
    "ramp.rollback",
    "ramp.restart",
    "ramp.complete",
    "ramp.warn",
    "environment.emergency_stop",
)


def create(
    session: Session, *, actor: str, url: str, events: Sequence[str]
) -> tuple[WebhookRow, str]:
    secret = "whsec_" + secrets.token_urlsafe(24)
    row = WebhookRow(
        url=url,
        secret=secret,
        events={"events": list(events)},
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="webhook.create",
        target_type="webhook",
        target_key=str(row.id),
        after={"url": url, "events": list(events)},
    )
    return row, secret


def listing(session: Session) -> Sequence[WebhookRow]:
    return session.scalars(select(WebhookRow).order_by(WebhookRow.id)).all()


def delete(session: Session, *, actor: str, webhook_id: int) -> None:
    row = session.get(WebhookRow, webhook_id)
    if row is None:
        raise NotFound(f"no webhook {webhook_id}")
    record(
        session,
        actor=actor,
        action="webhook.delete",
        target_type="webhook",
        target_key=str(webhook_id),
        before={"url": row.url, "events": row.events["events"]},
    )
    session.delete(row)


def deliveries(session: Session, webhook_id: int, limit: int = 100) -> Sequence[DeliveryRow]:
    if session.get(WebhookRow, webhook_id) is None:
        raise NotFound(f"no webhook {webhook_id}")
    return session.scalars(
        select(DeliveryRow)
        .where(DeliveryRow.webhook_id == webhook_id)
        .order_by(DeliveryRow.id.desc())
        .limit(limit)
    ).all()


def enqueue(session: Session, event: str, payload: dict[str, Any]) -> int:
    """Queue a notice for every webhook that wants `event`; returns how many."""
    now = utcnow()
    queued = 0
    for hook in listing(session):
        wanted = hook.events.get("events") or []
        if wanted and event not in wanted:
            continue
        session.add(
            DeliveryRow(
                webhook_id=hook.id,
                event=event,
                payload={"event": event, "at": now.isoformat(), **payload},
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        queued += 1
    return queued


def deliver_due(sessions: sessionmaker[Session], client: httpx.Client, limit: int = 50) -> int:
    """Send what is due; returns how many were delivered. Failures wait 2^n seconds
    (capped at ten minutes) before the next try; after MAX_ATTEMPTS a delivery fails."""
    with sessions() as session, session.begin():
        due = session.scalars(
            select(DeliveryRow)
            .where(DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= utcnow())
            .order_by(DeliveryRow.id)
            .limit(limit)
        ).all()
        work = [(d.id, d.webhook_id, d.payload) for d in due]
        hooks = {h.id: (h.url, h.secret) for h in listing(session)}
    delivered = 0
    for delivery_id, webhook_id, payload in work:
        if webhook_id not in hooks:
            continue
        url, secret = hooks[webhook_id]
        body = json.dumps(payload, separators=(",", ":")).encode()
        error: str | None = None
        try:
            response = client.post(
                url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Graylane-Signature": sign(secret, int(time.time()), body),
                    "X-Graylane-Delivery": str(delivery_id),
                },
            )
            if response.status_code >= 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        with sessions() as session, session.begin():
            row = session.get(DeliveryRow, delivery_id)
            if row is None:
                continue
            row.attempts += 1
            if error is None:
                row.status, row.delivered_at, row.last_error = "delivered", utcnow(), None
                delivered += 1
            else:
                row.last_error = error
                if row.attempts >= MAX_ATTEMPTS:
                    row.status = "failed"
                else:
                    row.next_attempt_at = utcnow() + timedelta(seconds=min(600, 2**row.attempts))
                log.warning(
                    "webhook.failed", delivery=delivery_id, attempts=row.attempts, error=error
                )
    return delivered
