"""User endpoints: admins only. Passwords go in, never out."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from graylane_server.deps import Admin, SessionDep
from graylane_server.errors import Conflict, InvalidDocument, NotFound, responses
from graylane_server.models import UserRow
from graylane_server.tokens.principal import Role
from graylane_server.users import service

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class UserOut(BaseModel):
    username: str
    role: Role
    disabled: bool
    created_at: datetime


class UserList(BaseModel):
    users: list[UserOut]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    role: Role


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024)


def _out(row: UserRow) -> UserOut:
    return UserOut(
        username=row.username, role=Role(row.role), disabled=row.disabled, created_at=row.created_at
    )


@router.get("", response_model=UserList, responses=responses())
def list_users(session: SessionDep, _: Admin) -> UserList:
    return UserList(users=[_out(row) for row in service.listing(session)])


@router.post(
    "", status_code=201, response_model=UserOut, responses=responses(Conflict, InvalidDocument)
)
def create_user(body: UserCreate, session: SessionDep, principal: Admin) -> UserOut:
    row = service.create(
        session,
        actor=principal.actor,
        username=body.username,
        password=body.password,
        role=body.role,
    )
    return _out(row)


@router.patch("/{username}", response_model=UserOut, responses=responses(NotFound, InvalidDocument))
def update_user(username: str, body: UserUpdate, session: SessionDep, principal: Admin) -> UserOut:
    row = service.update(
        session,
        actor=principal.actor,
        username=username,
        role=body.role,
        disabled=body.disabled,
        password=body.password,
    )
    return _out(row)


@router.delete("/{username}", status_code=204, responses=responses(NotFound))
def delete_user(username: str, session: SessionDep, principal: Admin) -> Response:
    service.delete(session, actor=principal.actor, username=username)
    return Response(status_code=204)
