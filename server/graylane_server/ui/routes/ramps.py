"""Ramps: the list, one ramp's page and what it polls, its plan, and the actions that move
it (start, advance, pause, resume, roll back, restart)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.responses import Response

from graylane_server.deps import RuntimeDep
from graylane_server.environments import service as environments
from graylane_server.errors import (
    Forbidden,
    GraylaneError,
    InvalidDocument,
    PreconditionFailed,
    PreconditionRequired,
)
from graylane_server.flags import service as flags
from graylane_server.models import Environment, FlagRow, RampRow, utcnow
from graylane_server.ramps import service as ramps
from graylane_server.ui import drafts, forms, rampview
from graylane_server.ui.auth import EditorPage, PostedForm, ViewerPage
from graylane_server.ui.pages import Page

router = APIRouter(prefix="/ui", include_in_schema=False)

RampAction = Literal["start", "advance", "pause", "resume", "rollback", "restart"]
DONE_WORDS: dict[RampAction, str] = {
    "start": "Started",
    "advance": "Advanced",
    "pause": "Paused",
    "resume": "Resumed",
    "rollback": "Rolled back",
    "restart": "Restarted",
}
# Ramps in motion first, finished ones last.
STATUS_ORDER = {"running": 0, "paused": 1, "rolled_back": 2, "completed": 3}


def _ramp_url(key: str, environment: str) -> str:
    return f"/ui/flags/{key}/environments/{environment}/ramp"


def _ramp_context(
    page: Page, runtime: RuntimeDep, row: FlagRow, env: Environment
) -> dict[str, Any]:
    config = row.definition.get("environments", {}).get(env.key)
    if config is None or "ramp" not in config:
        return {"model": None, "flag": row, "config": config, "guard_fields": _guard_fields(None)}
    model = rampview.build(page.session, runtime, row, env, page.user)
    return {"model": model, "flag": row, "config": config, "guard_fields": _guard_fields(model)}


def _guard_fields(model: rampview.RampPage | None) -> drafts.GuardFields:
    return drafts.guard_fields(None if model is None else model.plan)


def _listed(rows: Sequence[RampRow], definitions: dict[str, Any]) -> list[dict[str, Any]]:
    """Each ramp with the stages of its plan, in STATUS_ORDER then by flag."""
    items = []
    for r in rows:
        config = definitions.get(r.flag, {}).get("environments", {}).get(r.environment, {})
        stages = config.get("ramp", {}).get("stages", [])
        items.append({"row": r, "stages": stages})
    items.sort(key=lambda i: (STATUS_ORDER.get(i["row"].status, 9), i["row"].flag))
    return items


@router.get("/flags/{key}/environments/{environment}/ramp")
def ramp_page(key: str, environment: str, *, page: ViewerPage, runtime: RuntimeDep) -> Response:
    row = flags.get(page.session, key)
    env = environments.get(page.session, environment)
    context = _ramp_context(page, runtime, row, env)
    return page.render(
        "ramp.html",
        active="ramps",
        environment=env,
        env_link=lambda other: _ramp_url(key, other),
        **context,
    )


@router.get("/api/flags/{key}/environments/{environment}/ramp")
def ramp_live(key: str, environment: str, *, page: ViewerPage, runtime: RuntimeDep) -> JSONResponse:
    """What the ramp page polls: the live part of the page, rendered, and a few numbers."""
    row = flags.get(page.session, key)
    env = environments.get(page.session, environment)
    context = _ramp_context(page, runtime, row, env)
    model = context["model"]
    if model is None:
        return JSONResponse({"status": "none", "html": ""})
    html = page.ui.templates.render(
        "_ramp_live.html",
        request=page.request,
        user=page.user,
        csrf=page.user.csrf_token,
        env=env,
        now=time.time(),
        **context,
    )
    return JSONResponse(
        {
            "status": model.view.status,
            "stage": model.view.stage,
            "percentage": model.view.percentage,
            "version": model.view.version,
            "holding": model.view.holding,
            "html": html,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/flags/{key}/environments/{environment}/ramp/plan")
def save_plan(
    key: str, environment: str, *, form: PostedForm, page: EditorPage, runtime: RuntimeDep
) -> Response:
    session = page.session
    row = flags.get(session, key)
    env = environments.get(session, environment)
    back = _ramp_url(key, environment)
    config = drafts.ramp_config(row.definition, environment)
    try:
        config["ramp"] = drafts.ramp_plan(form, config.get("ramp"))
        with session.begin_nested():
            flags.put_environment(
                session,
                actor=page.actor,
                key=key,
                environment=environment,
                config=config,
                expected_version=forms.optional_int(form, "version"),
                reason=forms.text(form, "reason") or None,
            )
    except forms.FormError as exc:
        return _plan_refused(
            page, runtime, row=row, env=env, form=form, error=exc.message, field=exc.field
        )
    except InvalidDocument as exc:
        details = "; ".join(f"{p.path or 'plan'}: {p.message}" for p in exc.problems)
        error = f"The plan is invalid: {details}"
        return _plan_refused(page, runtime, row=row, env=env, form=form, error=error)
    except (PreconditionFailed, PreconditionRequired) as exc:
        return page.done(back, exc.message, "error")
    return page.done(back, f"Saved the ramp plan of {key} in {environment}.")


def _plan_refused(
    page: Page,
    runtime: RuntimeDep,
    *,
    row: FlagRow,
    env: Environment,
    form: Mapping[str, str],
    error: str,
    field: str | None = None,
) -> Response:
    """The ramp page again, 422, its plan form open with what was typed and why not."""
    return page.render(
        "ramp.html",
        active="ramps",
        environment=env,
        env_link=lambda other: _ramp_url(row.key, other),
        status=422,
        plan_error=error,
        plan_error_field=field,
        posted=form,
        **_ramp_context(page, runtime, row, env),
    )


@router.post("/flags/{key}/environments/{environment}/ramp/{action}")
def ramp_action(
    key: str,
    environment: str,
    action: RampAction,
    *,
    form: PostedForm,
    page: EditorPage,
    runtime: RuntimeDep,
) -> Response:
    session = page.session
    row = flags.get(session, key)
    env = environments.get(session, environment)
    back = _ramp_url(key, environment)
    model = rampview.build(session, runtime, row, env, page.user)
    button = next((b for b in model.buttons if b.action == action), None)
    asked = page.confirm(
        form,
        title=f"{button.label if button else action.capitalize()} — {key} in {environment}?",
        message=button.confirm if button else f"{action} the ramp.",
        label=button.label if button else action.capitalize(),
        danger=action in ("rollback", "pause"),
        back=back,
    )
    if asked is not None:
        return asked
    breached = [r for r in model.view.readings if r.status == "breach"]
    if action == "advance" and breached:
        return page.done(
            back,
            f"Guard {breached[0].guard} is breached ({breached[0].detail}): roll back or "
            "investigate before advancing.",
            "error",
        )
    version = forms.optional_int(form, "version") if action in ramps.NEEDS_VERSION else None
    try:
        with session.begin_nested():
            ramps.act(
                session,
                principal=page.user.principal,
                key=key,
                environment=environment,
                action=action,
                expected_version=version,
                reason=forms.text(form, "reason") or None,
                now=utcnow(),
            )
    except Forbidden:
        raise
    except PreconditionFailed:
        return page.done(
            back,
            "The ramp moved since you looked at it; check where it stands and try again.",
            "error",
        )
    except GraylaneError as exc:
        return page.done(back, exc.message, "error")
    session.flush()
    after = ramps.load(session, key, environment)
    return page.done(
        back,
        f"{DONE_WORDS[action]} the ramp of {key} in {environment}: now at {after.percentage:f}%.",
    )


@router.get("/ramps")
def ramp_list(*, page: ViewerPage) -> Response:
    rows = ramps.listing(page.session)
    definitions = {r.key: r.definition for r in flags.listing(page.session)}
    items = _listed(rows, definitions)
    env = page.chosen_environment()
    return page.render("ramps.html", active="ramps", environment=env, items=items)
