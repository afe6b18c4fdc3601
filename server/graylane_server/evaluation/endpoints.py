"""Server-side evaluation for people: the answer and the explain trace."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from graylane.core import evaluate, explain
from graylane_server.deps import RuntimeDep, Viewer
from graylane_server.errors import NotFound, responses

router = APIRouter(prefix="/api/v1/evaluate", tags=["evaluate"])


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: str
    context: dict[str, Any] = Field(default_factory=dict)
    flag: str | None = Field(default=None, description="One flag; all flags when left out.")


class EvaluateResponse(BaseModel):
    environment: str
    version: int
    results: list[dict[str, Any]]
    explain: dict[str, Any] | None = None


@router.post("", response_model=EvaluateResponse, responses=responses(NotFound))
def evaluate_for_admins(body: EvaluateRequest, runtime: RuntimeDep, _: Viewer) -> EvaluateResponse:
    """Evaluate one flag (with its explain trace) or every flag, as SDKs would."""
    config = runtime.store.get(body.environment)
    if config is None:
        raise NotFound(f"no environment {body.environment!r}")
    snapshot = config.snapshot
    if body.flag is not None:
        trace = explain(snapshot, body.flag, body.context)
        if not trace.found:
            raise NotFound(f"no flag {body.flag!r}")
        return EvaluateResponse(
            environment=body.environment,
            version=config.version,
            results=[trace.result.to_dict()],
            explain=trace.to_dict(),
        )
    results = [evaluate(snapshot, key, body.context).to_dict() for key in snapshot.flags]
    return EvaluateResponse(environment=body.environment, version=config.version, results=results)
