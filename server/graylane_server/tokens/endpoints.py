"""Token endpoints: admins mint, list and revoke; secrets are shown once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from graylane_server.deps import Admin, Reason, RuntimeDep, SessionDep
from graylane_server.errors import NotFound, responses
from graylane_server.http import RowId
from graylane_server.models import TokenRow
from graylane_server.tokens import service
from graylane_server.tokens.schemas import TokenCreate, TokenCreated, TokenList, TokenOut

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


def _out(row: TokenRow) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        kind=row.kind,
        role=row.role,
        environment=row.environment,
        hint=row.hint,
        created_by=row.created_by,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@router.post("", status_code=201, response_model=TokenCreated, responses=responses(NotFound))
def create_token(
    body: TokenCreate, session: SessionDep, principal: Admin, runtime: RuntimeDep
) -> TokenCreated:
    """`{"kind": "sdk", "environment": "production"}` or `{"kind": "admin", "role": "editor"}`.
    The answer carries the secret; it is stored hashed and never shown again. Each caller
    may create `GRAYLANE_TOKEN_CREATE_MAX` tokens per `GRAYLANE_TOKEN_CREATE_WINDOW_SECONDS`;
    more are refused with 429."""
    settings = runtime.settings
    service.count_creation(
        runtime.token_creations,
        principal,
        most=settings.token_create_max,
        window=settings.token_create_window_seconds,
    )
    row, secret = service.create(
        session,
        actor=principal.actor,
        kind=body.kind,
        name=body.name,
        role=body.role,
        environment=body.environment,
    )
    return TokenCreated(**_out(row).model_dump(), token=secret)


@router.get("", response_model=TokenList, responses=responses())
def list_tokens(
    session: SessionDep,
    _: Admin,
    include_revoked: Annotated[bool, Query(description="Also list revoked tokens.")] = False,
) -> TokenList:
    return TokenList(
        tokens=[_out(r) for r in service.listing(session, include_revoked=include_revoked)]
    )


@router.delete("/{token_id}", response_model=TokenOut, responses=responses(NotFound))
def revoke_token(
    token_id: RowId, session: SessionDep, principal: Admin, reason: Reason
) -> TokenOut:
    """Revoke: the token stops working on every replica at once."""
    return _out(service.revoke(session, actor=principal.actor, token_id=token_id, reason=reason))
