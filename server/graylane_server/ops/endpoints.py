"""Liveness, readiness and metrics: no authentication, nothing secret."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from graylane_server.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready: see `checks`."}})
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """The database answers and every environment's newest config is loaded; an
    environment whose stored config cannot be built makes the replica not ready."""

    def ping() -> None:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(ping)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unreachable: {type(exc).__name__}"
    failures = runtime.store.failures()
    if failures:
        # This replica cannot serve the newest config of these environments.
        checks["configs"] = "; ".join(f"{env}: {why}" for env, why in sorted(failures.items()))
    else:
        checks["configs"] = "ok" if runtime.store.versions() else "not loaded"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text format."""
    for environment, version in runtime.store.versions().items():
        runtime.metrics.config_version.labels(environment).set(version)
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
