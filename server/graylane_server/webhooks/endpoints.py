"""Webhook endpoints: admins register receivers and read every delivery attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from graylane_server.deps import Admin, SessionDep, Viewer
from graylane_server.errors import InvalidDocument, NotFound, responses
from graylane_server.http import RowId
from graylane_server.models import WebhookRow
from graylane_server.webhooks import service

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    events: list[str] = Field(
        default_factory=list, description=f"Any of {', '.join(service.EVENTS)}; empty: all."
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="HMAC key for X-Graylane-Signature. Shown this once.")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: int
    event: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime
    payload: dict[str, Any]


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]


def _out(row: WebhookRow) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        url=row.url,
        events=row.events.get("events", []),
        created_by=row.created_by,
        created_at=row.created_at,
    )


@router.post(
    "", status_code=201, response_model=WebhookCreated, responses=responses(InvalidDocument)
)
def create_webhook(body: WebhookCreate, session: SessionDep, principal: Admin) -> WebhookCreated:
    unknown = [e for e in body.events if e not in service.EVENTS]
    if unknown:
        from graylane.core import Problem  # noqa: PLC0415

        raise InvalidDocument([Problem("events", f"unknown events: {', '.join(unknown)}")])
    row, secret = service.create(
        session, actor=principal.actor, url=str(body.url), events=body.events
    )
    return WebhookCreated(**_out(row).model_dump(), secret=secret)


@router.get("", response_model=WebhookList, responses=responses())
def list_webhooks(session: SessionDep, _: Viewer) -> WebhookList:
    return WebhookList(webhooks=[_out(row) for row in service.listing(session)])


@router.delete("/{webhook_id}", status_code=204, responses=responses(NotFound))
def delete_webhook(webhook_id: RowId, session: SessionDep, principal: Admin) -> Response:
    service.delete(session, actor=principal.actor, webhook_id=webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList, responses=responses(NotFound))
def list_deliveries(webhook_id: RowId, session: SessionDep, _: Viewer) -> DeliveryList:
    """Every attempt to deliver, newest first: status, attempts and the last error."""
    return DeliveryList(
        deliveries=[
            DeliveryOut(
                id=d.id,
                event=d.event,
                status=d.status,
                attempts=d.attempts,
                last_error=d.last_error,
                created_at=d.created_at,
                delivered_at=d.delivered_at,
                next_attempt_at=d.next_attempt_at,
                payload=d.payload,
            )
            for d in service.deliveries(session, webhook_id)
        ]
    )
