"""Environment endpoints."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from graylane_server.deps import Admin, SessionDep, Viewer
from graylane_server.environments import service
from graylane_server.errors import Conflict, InvalidDocument, NotFound, responses
from graylane_server.models import Environment

router = APIRouter(prefix="/api/v1/environments", tags=["environments"])


class EnvironmentOut(BaseModel):
    key: str
    name: str
    protected: bool = Field(
        description="Advancing ramps here past the approval level needs a release manager."
    )
    config_version: int


class EnvironmentList(BaseModel):
    environments: list[EnvironmentOut]


class EnvironmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=200)
    protected: bool = False


class EnvironmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    protected: bool | None = None


def _out(row: Environment) -> EnvironmentOut:
    return EnvironmentOut(
        key=row.key, name=row.name, protected=row.protected, config_version=row.config_version
    )


@router.get("", response_model=EnvironmentList, responses=responses())
def list_environments(session: SessionDep, _: Viewer) -> EnvironmentList:
    return EnvironmentList(environments=[_out(row) for row in service.listing(session)])


@router.get("/{key}", response_model=EnvironmentOut, responses=responses(NotFound))
def get_environment(key: str, session: SessionDep, _: Viewer) -> EnvironmentOut:
    return _out(service.get(session, key))


@router.post(
    "",
    status_code=201,
    response_model=EnvironmentOut,
    responses=responses(Conflict, InvalidDocument),
)
def create_environment(
    body: EnvironmentCreate, session: SessionDep, principal: Admin
) -> EnvironmentOut:
    row = service.create(
        session, actor=principal.actor, key=body.key, name=body.name, protected=body.protected
    )
    return _out(row)


@router.patch("/{key}", response_model=EnvironmentOut, responses=responses(NotFound))
def update_environment(
    key: str, body: EnvironmentUpdate, session: SessionDep, principal: Admin
) -> EnvironmentOut:
    row = service.update(
        session, actor=principal.actor, key=key, name=body.name, protected=body.protected
    )
    return _out(row)
