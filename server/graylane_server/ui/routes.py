"""The admin UI's HTTP routes. HTTP only: the services do the work, `pages` renders."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from graylane.core import explain, resolve
from graylane_server import catalog, db
from graylane_server.audit.diff import json_diff
from graylane_server.audit.repository import AuditFilter, page
from graylane_server.configs.notices import environment_keys
from graylane_server.deps import RuntimeDep, SessionDep
from graylane_server.environments import service as environments
from graylane_server.errors import (
    Forbidden,
    GraylaneError,
    InvalidDocument,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from graylane_server.flags import service as flags
from graylane_server.models import Environment, FlagRow, utcnow
from graylane_server.ramps import emergency
from graylane_server.ramps import service as ramps
from graylane_server.ramps.ownership import keep_owned, owned_percentages
from graylane_server.segments import service as segments
from graylane_server.tokens import service as tokens
from graylane_server.tokens.principal import Role
from graylane_server.ui import csrf, forms, impact, rampview, sessions, summaries
from graylane_server.ui.auth import (
    CurrentUser,
    PostedForm,
    UiAdmin,
    UiDep,
    UiEditor,
    UiReleaseManager,
)
from graylane_server.ui.errors import CsrfRejected
from graylane_server.ui.pages import (
    choose_environment,
    confirmation,
    done,
    redirect,
    render,
    secure,
)
from graylane_server.ui.ratelimit import limiter_key
from graylane_server.ui.sessions import SignedIn
from graylane_server.ui.state import UiState
from graylane_server.users import service as users

router = APIRouter(prefix="/ui", include_in_schema=False)
root = APIRouter(include_in_schema=False)

RampAction = Literal["start", "advance", "pause", "resume", "rollback", "restart"]


@root.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


# --- signing in and out -------------------------------------------------------------------


def _login_page(
    request: Request,
    ui: UiState,
    *,
    username: str = "",
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    token = csrf.new_token()
    body = ui.templates.render(
        "login.html",
        request=request,
        csrf=token,
        username=username,
        error=error,
        notice=notice,
        next=forms.local_target(request.query_params.get("next")),
    )
    response = HTMLResponse(body, status_code=status, headers=headers)
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/ui/login",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    return response


@router.get("/login")
def login_form(request: Request, ui: UiDep, runtime: RuntimeDep) -> Response:
    secret = request.cookies.get(sessions.COOKIE)
    if secret:
        with runtime.readers() as session:
            if sessions.find(session, secret, now=utcnow(), take_flash=False) is not None:
                return redirect("/ui/")
    notice = "You are signed out." if request.query_params.get("signed_out") else None
    return _login_page(request, ui, notice=notice)


@router.post("/login")
async def login(request: Request, ui: UiDep, runtime: RuntimeDep) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    username = fields.get("username", "").strip()
    try:
        csrf.verify(request.cookies.get(csrf.LOGIN_COOKIE), fields.get(csrf.FIELD))
    except CsrfRejected:
        return _login_page(
            request,
            ui,
            username=username,
            error="This sign-in form expired or did not come from Graylane: please try again.",
            status=403,
        )
    password = fields.get("password", "")
    address = request.client.host if request.client else "unknown"
    key = limiter_key(username, address)
    wait = await run_in_threadpool(ui.limiter.retry_after, key)
    if wait > 0:
        minutes = max(1, round(wait / 60))
        return _login_page(
            request,
            ui,
            username=username,
            error=f"Too many failed sign-ins for {username or 'this username'} from your "
            f"address. Wait {minutes} minute{'s' if minutes != 1 else ''} and try again.",
            status=429,
            headers={"Retry-After": str(max(1, round(wait)))},
        )

    def sign_in() -> str | None:
        with db.transaction(runtime.sessions) as session:
            user = sessions.check_credentials(session, username, password)
            if user is None:
                return None
            return sessions.start(session, user, hours=ui.settings.ui_session_hours, now=utcnow())

    secret = await run_in_threadpool(sign_in) if username and password else None
    if secret is None:
        await run_in_threadpool(ui.limiter.record, key)
        return _login_page(
            request,
            ui,
            username=username,
            error="Wrong username or password, or the account is disabled.",
            status=401,
        )
    await run_in_threadpool(ui.limiter.reset, key)
    response = redirect(forms.local_target(fields.get("next")))
    response.set_cookie(
        sessions.COOKIE,
        secret,
        max_age=round(ui.settings.ui_session_hours * 3600),
        path="/ui",
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/ui/login")
    return response


@router.post("/logout")
def logout(request: Request, _: PostedForm, session: SessionDep) -> Response:
    secret = request.cookies.get(sessions.COOKIE)
    if secret:
        sessions.end(session, secret)
    response = redirect("/ui/login?signed_out=1")
    response.delete_cookie(sessions.COOKIE, path="/ui", secure=secure(request), httponly=True)
    return response


# --- flags ----------------------------------------------------------------------------------


def _environment(session: Session, key: str) -> Environment:
    return environments.get(session, key)


@router.get("/")
def flag_list(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    ui: UiDep,
    q: str = "",
    tag: str = "",
    status: Annotated[str, Query(pattern="^(|enabled|disabled)$")] = "",
    ramp: bool = False,
    stale: bool = False,
) -> Response:
    options = environments.listing(session)
    env = choose_environment(request, options)
    rows = flags.listing(session)
    ramp_rows = {(r.flag, r.environment): r for r in ramps.listing(session)}
    now = utcnow()
    stale_after = timedelta(days=ui.settings.stale_after_days)
    lines = (
        [
            summaries.line(
                r, env.key, ramp_rows.get((r.key, env.key)), now=now, stale_after=stale_after
            )
            for r in rows
        ]
        if env is not None
        else []
    )
    filters = summaries.Filters(q=q.strip(), tag=tag, status=status, ramp=ramp, stale=stale)
    return render(
        request,
        ui,
        session,
        user,
        "flags.html",
        active="flags",
        environment=env,
        lines=summaries.keep(lines, filters),
        total=len(lines),
        counts={
            "enabled": sum(1 for x in lines if x.enabled),
            "disabled": sum(1 for x in lines if not x.enabled),
            "ramp": sum(1 for x in lines if x.ramping),
            "stale": sum(1 for x in lines if x.stale),
        },
        filters=filters,
        tags=summaries.all_tags(rows),
    )


@router.get("/flags")
def flags_redirect(request: Request) -> RedirectResponse:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/ui/{query}", status_code=307)


def _new_flag_definition(
    form: dict[str, str], environment_list: list[str]
) -> tuple[str, dict[str, Any]]:
    key = forms.text(form, "key")
    kind = forms.text(form, "kind", "boolean")
    definition: dict[str, Any] = {}
    if forms.text(form, "description"):
        definition["description"] = forms.text(form, "description")
    tags = [t.strip() for t in forms.text(form, "tags").split(",") if t.strip()]
    if tags:
        definition["tags"] = tags
    if kind == "boolean":
        definition["variants"] = {"on": True, "off": False}
        definition["off_variant"] = "off"
        served = "on"
    else:
        variants: dict[str, Any] = {}
        for number, raw in enumerate(forms.text(form, "variants").splitlines(), 1):
            if not raw.strip():
                continue
            name, sep, value = raw.partition("=")
            if not sep:
                raise forms.FormError("variants", f"line {number}: write name=value")
            variants[name.strip()] = value.strip()
        if len(variants) < 2:
            raise forms.FormError("variants", "a string flag needs at least two variants")
        definition["variants"] = variants
        definition["off_variant"] = next(iter(variants))
        served = list(variants)[1]
    definition["environments"] = {
        env: {
            "enabled": True,
            "fallthrough": {
                "rollout": {"percentage": 0, "variants": {served: 100}},
                "otherwise": definition["off_variant"],
            },
        }
        for env in environment_list
    }
    return key, definition


@router.get("/create/flag")
def new_flag_form(request: Request, session: SessionDep, user: UiEditor, ui: UiDep) -> Response:
    env = choose_environment(request, environments.listing(session))
    return render(
        request,
        ui,
        session,
        user,
        "flag_new.html",
        active="flags",
        environment=env,
        values={},
        problems=[],
        error=None,
    )


@router.post("/flags")
def create_flag(
    request: Request, form: PostedForm, user: UiEditor, session: SessionDep, ui: UiDep
) -> Response:
    env = choose_environment(request, environments.listing(session))
    problems: list[Any] = []
    error = None
    try:
        key, definition = _new_flag_definition(form, environment_keys(session))
        with session.begin_nested():
            flags.put(
                session,
                actor=user.principal.actor,
                key=key,
                definition=definition,
                expected_version=None,
                reason=forms.text(form, "reason") or None,
            )
    except forms.FormError as exc:
        error = exc.message
    except InvalidDocument as exc:
        problems = list(exc.problems)
        error = "The flag could not be created."
    except PreconditionRequired:
        error = f"A flag named {form.get('key', '')!r} already exists."
    else:
        target = f"/ui/flags/{key}" + (f"?env={env.key}" if env else "")
        return done(
            session,
            user,
            target,
            f"Created {key}. It serves nobody yet: raise its rollout or start a ramp.",
        )
    return render(
        request,
        ui,
        session,
        user,
        "flag_new.html",
        active="flags",
        environment=env,
        values=form,
        problems=problems,
        error=error,
        status=422,
    )


def _flag_page(
    request: Request,
    ui: UiState,
    session: Session,
    user: SignedIn,
    row: FlagRow,
    *,
    editor_text: str | None = None,
    problems: list[Any] | None = None,
    review: dict[str, Any] | None = None,
    editor_error: str | None = None,
    samples: str = "",
    status: int = 200,
) -> HTMLResponse:
    options = environments.listing(session)
    env = choose_environment(request, options)
    ramp_rows = {r.environment: r for r in ramps.listing(session) if r.flag == row.key}
    now = utcnow()
    stale_after = timedelta(days=ui.settings.stale_after_days)
    lines = {
        e.key: summaries.line(row, e.key, ramp_rows.get(e.key), now=now, stale_after=stale_after)
        for e in options
    }
    config = row.definition.get("environments", {}).get(env.key) if env is not None else None
    # A started ramp owns the rollout percentage: the page offers its controls instead.
    owned = (
        env is not None
        and config is not None
        and "ramp" in config
        and env.key in owned_percentages(session, row.key)
    )
    recent = page(
        session, AuditFilter(target_type="flag", target_key=row.key), before_id=None, limit=8
    )
    return render(
        request,
        ui,
        session,
        user,
        "flag.html",
        active="flags",
        environment=env,
        flag=row,
        definition=row.definition,
        lines=lines,
        config=config,
        ramps=ramp_rows,
        owned=owned,
        editor_text=editor_text
        if editor_text is not None
        else json.dumps(row.definition, indent=2, ensure_ascii=False),
        problems=problems or [],
        review=review,
        editor_error=editor_error,
        samples=samples,
        recent=recent,
        status=status,
    )


@router.get("/flags/{key}")
def flag_detail(
    key: str, request: Request, session: SessionDep, user: CurrentUser, ui: UiDep
) -> Response:
    return _flag_page(request, ui, session, user, flags.get(session, key))


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


@router.post("/flags/{key}/definition")
def edit_flag(
    key: str,
    request: Request,
    form: PostedForm,
    user: UiEditor,
    session: SessionDep,
    ui: UiDep,
) -> Response:
    """Review a changed definition (validation, diff, impact on a sample), then save it."""
    row = flags.get(session, key)
    source = form.get("definition", "")
    samples = form.get("samples", "")

    def again(status: int, **values: Any) -> HTMLResponse:
        return _flag_page(
            request,
            ui,
            session,
            user,
            row,
            editor_text=source,
            samples=samples,
            status=status,
            **values,
        )

    try:
        proposed = forms.document(source)
        contexts = forms.contexts(samples)
        canonical = flags.validate(
            session, key, keep_owned(session, key, proposed), prefix=f"flags.{key}"
        )
    except InvalidDocument as exc:
        return again(422, problems=list(exc.problems))
    except forms.FormError as exc:
        return again(422, editor_error=exc.message)
    expected = forms.optional_int(form, "version")
    fingerprint = _fingerprint(canonical)
    if form.get("intent") == "save":
        if expected != row.version:
            return again(
                409,
                editor_error=(
                    f"{key} changed since you opened it (now version {row.version}); reload to "
                    "see the latest before saving."
                ),
            )
        if form.get("reviewed") != fingerprint:
            return again(
                409,
                editor_error="The definition changed since you reviewed it: "
                "review it again before saving.",
            )
        try:
            with session.begin_nested():
                saved, changed = flags.put(
                    session,
                    actor=user.principal.actor,
                    key=key,
                    definition=proposed,
                    expected_version=expected,
                    reason=forms.text(form, "reason") or None,
                )
        except InvalidDocument as exc:
            return again(422, problems=list(exc.problems))
        except (PreconditionFailed, PreconditionRequired) as exc:
            return again(409, editor_error=exc.message)
        message = f"Saved {key} as version {saved.version}." if changed else "Nothing changed."
        return done(session, user, f"/ui/flags/{key}", message)
    segment_defs = {s.key: s.definition for s in segments.listing(session)}
    result = impact.compare(
        {"flags": {key: row.definition}, "segments": segment_defs},
        {"flags": {key: canonical}, "segments": segment_defs},
        [key],
        environment_keys(session),
        contexts or None,
    )
    review = {
        "changes": json_diff(row.definition, canonical),
        "impact": result,
        "fingerprint": fingerprint,
    }
    return again(200, review=review)


@router.post("/flags/{key}/delete")
def delete_flag(
    key: str,
    request: Request,
    form: PostedForm,
    user: UiEditor,
    session: SessionDep,
    ui: UiDep,
) -> Response:
    flags.get(session, key)
    asked = confirmation(
        request,
        ui,
        session,
        user,
        form,
        title=f"Delete {key}?",
        message=f"SDKs stop knowing {key} at once: every evaluation of it returns the "
        "caller's default. The audit log keeps its history.",
        label="Delete flag",
        back=f"/ui/flags/{key}",
    )
    if asked is not None:
        return asked
    flags.delete(
        session,
        actor=user.principal.actor,
        key=key,
        expected_version=None,
        reason=forms.text(form, "reason") or None,
    )
    return done(session, user, "/ui/", f"Deleted {key}.")


@router.post("/flags/{key}/environments/{environment}/enabled")
def switch_flag(
    key: str,
    environment: str,
    request: Request,
    form: PostedForm,
    user: UiReleaseManager,
    session: SessionDep,
    ui: UiDep,
) -> Response:
    """The kill switch."""
    flags.get(session, key)
    _environment(session, environment)
    enabled = form.get("enabled") == "true"
    back = forms.local_target(form.get("next"), f"/ui/flags/{key}?env={environment}")
    asked = confirmation(
        request,
        ui,
        session,
        user,
        form,
        title=f"{'Switch on' if enabled else 'Switch off'} {key} in {environment}?",
        message=(
            f"{key} serves its rules and rollout again in {environment}."
            if enabled
            else f"Everyone in {environment} gets {key}'s off variant at once."
        ),
        label="Switch on" if enabled else "Switch off",
        danger=not enabled,
        back=back,
    )
    if asked is not None:
        return asked
    _, changed = flags.set_enabled(
        session,
        actor=user.principal.actor,
        key=key,
        environment=environment,
        enabled=enabled,
        reason=forms.text(form, "reason") or None,
    )
    state = "on" if enabled else "off"
    message = f"{key} is {state} in {environment}." if changed else f"{key} was already {state}."
    return done(session, user, back, message)


@router.post("/flags/{key}/environments/{environment}/rollout")
def set_rollout(
    key: str,
    environment: str,
    request: Request,
    form: PostedForm,
    user: UiEditor,
    session: SessionDep,
    ui: UiDep,
) -> Response:
    row = flags.get(session, key)
    _environment(session, environment)
    back = f"/ui/flags/{key}?env={environment}"
    try:
        value = forms.percentage(form.get("percentage", ""))
        config = copy.deepcopy(row.definition.get("environments", {}).get(environment))
        rollout = (config or {}).get("fallthrough", {}).get("rollout")
        if config is None or rollout is None:
            raise forms.FormError(
                "percentage",
                f"{key} serves a fixed variant in {environment}: add a rollout in its "
                "definition first",
            )
    except forms.FormError as exc:
        return done(session, user, back, exc.message, "error")
    asked = confirmation(
        request,
        ui,
        session,
        user,
        form,
        title=f"Set {key} to {value}% in {environment}?",
        message=f"The rollout in {environment} goes from {rollout['percentage']}% to {value}% "
        "of units at once.",
        label=f"Set to {value}%",
        danger=False,
        back=back,
    )
    if asked is not None:
        return asked
    rollout["percentage"] = value
    try:
        with session.begin_nested():
            saved, _ = flags.put_environment(
                session,
                actor=user.principal.actor,
                key=key,
                environment=environment,
                config=config,
                expected_version=forms.optional_int(form, "version"),
                reason=forms.text(form, "reason") or None,
            )
    except (PreconditionFailed, PreconditionRequired, InvalidDocument) as exc:
        return done(session, user, back, exc.message, "error")
    now_at = saved.definition["environments"][environment]["fallthrough"]["rollout"]["percentage"]
    if now_at != value:
        return done(
            session,
            user,
            back,
            f"A running ramp owns the rollout of {key} in {environment}; it stays at "
            f"{now_at}%. Use the ramp's controls instead.",
            "error",
        )
    return done(session, user, back, f"{key} now serves {value}% of units in {environment}.")


# --- ramps ----------------------------------------------------------------------------------


def _ramp_url(key: str, environment: str) -> str:
    return f"/ui/flags/{key}/environments/{environment}/ramp"


def _ramp_context(
    session: Session, runtime: RuntimeDep, row: FlagRow, env: Environment, user: SignedIn
) -> dict[str, Any]:
    config = row.definition.get("environments", {}).get(env.key)
    if config is None or "ramp" not in config:
        return {"model": None, "flag": row, "config": config}
    model = rampview.build(session, runtime, row, env, user)
    return {"model": model, "flag": row, "config": config}


@router.get("/flags/{key}/environments/{environment}/ramp")
def ramp_page(
    key: str,
    environment: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    ui: UiDep,
    runtime: RuntimeDep,
) -> Response:
    row = flags.get(session, key)
    env = _environment(session, environment)
    context = _ramp_context(session, runtime, row, env, user)
    return render(
        request,
        ui,
        session,
        user,
        "ramp.html",
        active="ramps",
        environment=env,
        env_link=lambda other: _ramp_url(key, other),
        **context,
    )


@router.get("/api/flags/{key}/environments/{environment}/ramp")
def ramp_live(
    key: str,
    environment: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    ui: UiDep,
    runtime: RuntimeDep,
) -> JSONResponse:
    """What the ramp page polls: the live part of the page, rendered, and a few numbers."""
    row = flags.get(session, key)
    env = _environment(session, environment)
    context = _ramp_context(session, runtime, row, env, user)
    model = context["model"]
    if model is None:
        return JSONResponse({"status": "none", "html": ""})
    html = ui.templates.render(
        "_ramp_live.html",
        request=request,
        user=user,
        csrf=user.csrf_token,
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


def _plan_from_form(form: dict[str, str], current: dict[str, Any] | None) -> dict[str, Any]:
    plan: dict[str, Any] = dict(current or {})
    plan["stages"] = forms.stages(form.get("stages", ""))
    duration = forms.text(form, "min_stage_duration")
    if duration:
        plan["min_stage_duration"] = duration
    samples = forms.optional_int(form, "min_samples")
    if samples is not None:
        plan["min_samples"] = samples
    plan["auto_advance"] = form.get("auto_advance") == "on"
    approval = forms.text(form, "approval_above")
    if approval:
        plan["approval_above"] = forms.percentage(approval, "approval_above")
    else:
        plan.pop("approval_above", None)
    limit = forms.text(form, "error_rate_max")
    guards = plan.get("guards")
    simple = not guards or (
        len(guards) == 1 and guards[0].get("metric") == "error_rate" and "kind" not in guards[0]
    )
    if limit and simple:
        plan["guards"] = [
            {"metric": "error_rate", "max": float(forms.percentage(limit, "error_rate_max")) / 100}
        ]
    return plan


@router.post("/flags/{key}/environments/{environment}/ramp/plan")
def save_plan(
    key: str,
    environment: str,
    request: Request,
    form: PostedForm,
    user: UiEditor,
    session: SessionDep,
) -> Response:
    row = flags.get(session, key)
    _environment(session, environment)
    back = _ramp_url(key, environment)
    config = copy.deepcopy(row.definition.get("environments", {}).get(environment))
    if config is None:
        config = {"enabled": True}
    fallthrough = config.get("fallthrough", {})
    if "rollout" not in fallthrough:
        off = row.definition.get("off_variant")
        served = next((v for v in row.definition.get("variants", {}) if v != off), off)
        config["fallthrough"] = {
            "rollout": {"percentage": 0, "variants": {served: 100}},
            "otherwise": off,
        }
    try:
        config["ramp"] = _plan_from_form(form, config.get("ramp"))
        with session.begin_nested():
            flags.put_environment(
                session,
                actor=user.principal.actor,
                key=key,
                environment=environment,
                config=config,
                expected_version=forms.optional_int(form, "version"),
                reason=forms.text(form, "reason") or None,
            )
    except forms.FormError as exc:
        return done(session, user, back, exc.message, "error")
    except InvalidDocument as exc:
        details = "; ".join(f"{p.path or 'plan'}: {p.message}" for p in exc.problems)
        return done(session, user, back, f"The plan is invalid: {details}", "error")
    except (PreconditionFailed, PreconditionRequired) as exc:
        return done(session, user, back, exc.message, "error")
    return done(session, user, back, f"Saved the ramp plan of {key} in {environment}.")


@router.post("/flags/{key}/environments/{environment}/ramp/{action}")
def ramp_action(
    key: str,
    environment: str,
    action: RampAction,
    request: Request,
    form: PostedForm,
    user: UiEditor,
    session: SessionDep,
    ui: UiDep,
    runtime: RuntimeDep,
) -> Response:
    row = flags.get(session, key)
    env = _environment(session, environment)
    back = _ramp_url(key, environment)
    model = rampview.build(session, runtime, row, env, user)
    button = next((b for b in model.buttons if b.action == action), None)
    asked = confirmation(
        request,
        ui,
        session,
        user,
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
        return done(
            session,
            user,
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
                principal=user.principal,
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
        return done(
            session,
            user,
            back,
            "The ramp moved since you looked at it; check where it stands and try again.",
            "error",
        )
    except GraylaneError as exc:
        return done(session, user, back, exc.message, "error")
    session.flush()
    after = ramps.load(session, key, environment)
    done_words = {
        "start": "Started",
        "advance": "Advanced",
        "pause": "Paused",
        "resume": "Resumed",
        "rollback": "Rolled back",
        "restart": "Restarted",
    }[action]
    return done(
        session,
        user,
        back,
        f"{done_words} the ramp of {key} in {environment}: now at {after.percentage:f}%.",
    )


@router.post("/environments/{environment}/emergency-stop")
def stop_environment(
    environment: str,
    request: Request,
    form: PostedForm,
    user: UiReleaseManager,
    session: SessionDep,
    ui: UiDep,
) -> Response:
    _environment(session, environment)
    back = forms.local_target(form.get("next"), f"/ui/?env={environment}")
    asked = confirmation(
        request,
        ui,
        session,
        user,
        form,
        title=f"Emergency stop in {environment}?",
        message=f"Every flag in {environment} serves its off variant and every running ramp "
        "there pauses, at once. Say why: it goes in the audit log and to webhooks.",
        label="Stop everything",
        back=back,
        reason_required=True,
    )
    if asked is not None:
        return asked
    disabled, paused = emergency.stop(
        session,
        actor=user.principal.actor,
        environment=environment,
        reason=forms.text(form, "reason"),
        now=utcnow(),
    )
    return done(
        session,
        user,
        back,
        f"Emergency stop in {environment}: {len(disabled)} flag(s) switched off, "
        f"{len(paused)} ramp(s) paused.",
    )


@router.get("/ramps")
def ramp_list(request: Request, session: SessionDep, user: CurrentUser, ui: UiDep) -> Response:
    rows = ramps.listing(session)
    definitions = {r.key: r.definition for r in flags.listing(session)}
    items = []
    for r in rows:
        config = definitions.get(r.flag, {}).get("environments", {}).get(r.environment, {})
        stages = config.get("ramp", {}).get("stages", [])
        items.append({"row": r, "stages": stages})
    order = {"running": 0, "paused": 1, "rolled_back": 2, "completed": 3}
    items.sort(key=lambda i: (order.get(i["row"].status, 9), i["row"].flag))
    env = choose_environment(request, environments.listing(session))
    return render(
        request, ui, session, user, "ramps.html", active="ramps", environment=env, items=items
    )


# --- playground -----------------------------------------------------------------------------

DEFAULT_CONTEXT = (
    '{\n  "targetingKey": "user-123",\n  "email": "ana@example.com",\n  "plan": "pro"\n}'
)


def _playground(
    request: Request,
    ui: UiState,
    session: Session,
    user: SignedIn,
    runtime: RuntimeDep,
    *,
    flag: str,
    context_text: str,
    evaluate: bool,
    status: int = 200,
) -> HTMLResponse:
    env = choose_environment(request, environments.listing(session))
    served = runtime.store.get(env.key) if env is not None else None
    keys = sorted(served.snapshot.flags) if served is not None else []
    error = None
    trace = None
    results: list[dict[str, Any]] = []
    if evaluate and served is not None:
        try:
            context = forms.context(context_text)
        except forms.FormError as exc:
            error = exc.message
        else:
            if flag:
                explanation = explain(served.snapshot, flag, context)
                if not explanation.found:
                    error = f"There is no flag {flag!r} in {env.key if env else ''}."
                else:
                    trace = explanation.to_dict()
                    results = [explanation.result.to_dict()]
            else:
                results = [resolve(served.snapshot, k, context).to_dict() for k in keys]
    return render(
        request,
        ui,
        session,
        user,
        "playground.html",
        active="playground",
        environment=env,
        keys=keys,
        flag=flag,
        context_text=context_text,
        error=error,
        trace=trace,
        results=results,
        evaluated=evaluate and error is None,
        config_version=served.version if served is not None else None,
        status=422 if error else status,
    )


@router.get("/playground")
def playground(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    ui: UiDep,
    runtime: RuntimeDep,
    flag: str = "",
) -> Response:
    return _playground(
        request,
        ui,
        session,
        user,
        runtime,
        flag=flag,
        context_text=DEFAULT_CONTEXT,
        evaluate=False,
    )


@router.post("/playground")
def evaluate_playground(
    request: Request,
    form: PostedForm,
    session: SessionDep,
    user: CurrentUser,
    ui: UiDep,
    runtime: RuntimeDep,
) -> Response:
    return _playground(
        request,
        ui,
        session,
        user,
        runtime,
        flag=forms.text(form, "flag"),
        context_text=form.get("context", ""),
        evaluate=True,
    )


# --- segments -------------------------------------------------------------------------------


@router.get("/segments")
def segment_list(request: Request, session: SessionDep, user: CurrentUser, ui: UiDep) -> Response:
    rows = segments.listing(session)
    items = [{"row": r, "used_by": segments.users_of(session, r.key)} for r in rows]
    env = choose_environment(request, environments.listing(session))
    return render(
        request,
        ui,
        session,
        user,
        "segments.html",
        active="segments",
        environment=env,
        items=items,
    )


SEGMENT_TEMPLATE = (
    '{\n  "description": "",\n  "include": [],\n  "exclude": [],\n  "when": [\n'
    '    {"attribute": "plan", "op": "in", "values": ["pro"]}\n  ]\n}'
)


def _segment_page(
    request: Request,
    ui: UiState,
    session: Session,
    user: SignedIn,
    key: str | None,
    *,
    editor_text: str | None = None,
    problems: list[Any] | None = None,
    review: dict[str, Any] | None = None,
    editor_error: str | None = None,
    samples: str = "",
    new_key: str = "",
    status: int = 200,
) -> HTMLResponse:
    row = segments.get(session, key) if key is not None else None
    env = choose_environment(request, environments.listing(session))
    text = editor_text
    if text is None:
        text = (
            json.dumps(row.definition, indent=2, ensure_ascii=False)
            if row is not None
            else SEGMENT_TEMPLATE
        )
    return render(
        request,
        ui,
        session,
        user,
        "segment.html",
        active="segments",
        environment=env,
        segment=row,
        key=key or new_key,
        used_by=segments.users_of(session, key) if key else [],
        editor_text=text,
        problems=problems or [],
        review=review,
        editor_error=editor_error,
        samples=samples,
        status=status,
    )


@router.get("/create/segment")
def new_segment(request: Request, session: SessionDep, user: UiEditor, ui: UiDep) -> Response:
    return _segment_page(request, ui, session, user, None)


@router.get("/segments/{key}")
def segment_detail(
    key: str, request: Request, session: SessionDep, user: CurrentUser, ui: UiDep
) -> Response:
    return _segment_page(request, ui, session, user, key)


@router.post("/segments")
def save_segment(
    request: Request, form: PostedForm, user: UiEditor, session: SessionDep, ui: UiDep
) -> Response:
    """Create (no version) or review and save (with the version read) a segment."""
    key = forms.text(form, "key")
    existing = segments.get(session, key) if form.get("version") else None
    source = form.get("definition", "")
    samples = form.get("samples", "")

    def again(status: int, **values: Any) -> HTMLResponse:
        return _segment_page(
            request,
            ui,
            session,
            user,
            existing.key if existing else None,
            editor_text=source,
            samples=samples,
            new_key=key,
            status=status,
            **values,
        )

    try:
        proposed = forms.document(source, "segment")
        contexts = forms.contexts(samples)
        document = catalog.check(
            {"flags": {}, "segments": {key: proposed}}, (), prefix=(f"segments.{key}")
        )
        canonical = catalog.canonical(document)["segments"][key]
    except InvalidDocument as exc:
        return again(422, problems=list(exc.problems))
    except forms.FormError as exc:
        return again(422, editor_error=exc.message)
    fingerprint = _fingerprint(canonical)
    expected = forms.optional_int(form, "version")
    if existing is None or form.get("intent") == "save":
        if existing is not None and form.get("reviewed") != fingerprint:
            return again(
                409,
                editor_error="The segment changed since you reviewed it: review "
                "it again before saving.",
            )
        try:
            with session.begin_nested():
                saved, changed = segments.put(
                    session,
                    actor=user.principal.actor,
                    key=key,
                    definition=proposed,
                    expected_version=expected,
                    reason=forms.text(form, "reason") or None,
                )
        except InvalidDocument as exc:
            return again(422, problems=list(exc.problems))
        except PreconditionRequired:
            return again(409, editor_error=f"A segment named {key!r} already exists.")
        except PreconditionFailed as exc:
            return again(409, editor_error=exc.message)
        message = (
            f"Saved segment {key} (version {saved.version})." if changed else "Nothing changed."
        )
        return done(session, user, f"/ui/segments/{key}", message)
    assert existing is not None
    used_by = segments.users_of(session, key)
    definitions = {r.key: r.definition for r in flags.listing(session) if r.key in used_by}
    all_segments = {s.key: s.definition for s in segments.listing(session)}
    result = impact.compare(
        {"flags": definitions, "segments": all_segments},
        {"flags": definitions, "segments": {**all_segments, key: canonical}},
        used_by,
        environment_keys(session),
        contexts or None,
    )
    review = {
        "changes": json_diff(existing.definition, canonical),
        "impact": result,
        "fingerprint": fingerprint,
    }
    return again(200, review=review)


@router.post("/segments/{key}/delete")
def delete_segment(
    key: str, request: Request, form: PostedForm, user: UiEditor, session: SessionDep, ui: UiDep
) -> Response:
    segments.get(session, key)
    asked = confirmation(
        request,
        ui,
        session,
        user,
        form,
        title=f"Delete segment {key}?",
        message="Only a segment no flag uses can be deleted.",
        label="Delete segment",
        back=f"/ui/segments/{key}",
    )
    if asked is not None:
        return asked
    try:
        with session.begin_nested():
            segments.delete(
                session,
                actor=user.principal.actor,
                key=key,
                expected_version=None,
                reason=forms.text(form, "reason") or None,
            )
    except GraylaneError as exc:
        return done(session, user, f"/ui/segments/{key}", exc.message, "error")
    return done(session, user, "/ui/segments", f"Deleted segment {key}.")


# --- tokens ---------------------------------------------------------------------------------


def _tokens_page(
    request: Request,
    ui: UiState,
    session: Session,
    user: SignedIn,
    *,
    created: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    show_revoked = request.query_params.get("revoked") == "1"
    env = choose_environment(request, environments.listing(session))
    return render(
        request,
        ui,
        session,
        user,
        "tokens.html",
        active="tokens",
        environment=env,
        tokens=tokens.listing(session, include_revoked=show_revoked),
        show_revoked=show_revoked,
        created=created,
        error=error,
        roles=list(Role),
        status=status,
    )


@router.get("/tokens")
def token_list(request: Request, session: SessionDep, user: UiAdmin, ui: UiDep) -> Response:
    return _tokens_page(request, ui, session, user)


@router.post("/tokens")
def create_token(
    request: Request, form: PostedForm, user: UiAdmin, session: SessionDep, ui: UiDep
) -> Response:
    kind = forms.text(form, "kind")
    try:
        if kind not in ("admin", "sdk"):
            raise forms.FormError("kind", "choose an admin or an SDK token")
        role = None
        environment = None
        if kind == "admin":
            try:
                role = Role(forms.text(form, "role"))
            except ValueError:
                raise forms.FormError("role", "choose a role for the admin token") from None
        else:
            environment = forms.text(form, "environment") or None
            if environment is None:
                raise forms.FormError("environment", "an SDK token needs an environment")
        with session.begin_nested():
            row, secret = tokens.create(
                session,
                actor=user.principal.actor,
                kind=kind,
                name=forms.text(form, "name") or None,
                role=role,
                environment=environment,
            )
    except forms.FormError as exc:
        return _tokens_page(request, ui, session, user, error=exc.message, status=422)
    except GraylaneError as exc:
        return _tokens_page(request, ui, session, user, error=exc.message, status=exc.status)
    created = {"name": row.name, "kind": row.kind, "secret": secret}
    return _tokens_page(request, ui, session, user, created=created, status=201)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    token_id: int,
    request: Request,
    form: PostedForm,
    user: UiAdmin,
    session: SessionDep,
    ui: UiDep,
) -> Response:
    name = next((t.name for t in tokens.listing(session) if t.id == token_id), None)
    if name is None:
        raise NotFound(f"no active token with id {token_id}")
    asked = confirmation(
        request,
        ui,
        session,
        user,
        form,
        title=f"Revoke {name}?",
        message="Everything using this token is refused from now on, on every replica. "
        "This cannot be undone: a new token has to be minted.",
        label="Revoke token",
        back="/ui/tokens",
    )
    if asked is not None:
        return asked
    tokens.revoke(
        session,
        actor=user.principal.actor,
        token_id=token_id,
        reason=forms.text(form, "reason") or None,
    )
    return done(session, user, "/ui/tokens", f"Revoked {name}.")


# --- users ----------------------------------------------------------------------------------


def _users_page(
    request: Request,
    ui: UiState,
    session: Session,
    user: SignedIn,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    env = choose_environment(request, environments.listing(session))
    return render(
        request,
        ui,
        session,
        user,
        "users.html",
        active="users",
        environment=env,
        users=users.listing(session),
        roles=list(Role),
        error=error,
        values=values or {},
        status=status,
    )


@router.get("/users")
def user_list(request: Request, session: SessionDep, user: UiAdmin, ui: UiDep) -> Response:
    return _users_page(request, ui, session, user)


@router.post("/users")
def create_user(
    request: Request, form: PostedForm, user: UiAdmin, session: SessionDep, ui: UiDep
) -> Response:
    username = forms.text(form, "username")
    try:
        role = Role(forms.text(form, "role"))
    except ValueError:
        return _users_page(
            request, ui, session, user, error="Choose a role.", values=form, status=422
        )
    try:
        with session.begin_nested():
            users.create(
                session,
                actor=user.principal.actor,
                username=username,
                password=form.get("password", ""),
                role=role,
            )
    except InvalidDocument as exc:
        error = "; ".join(f"{p.path}: {p.message}" for p in exc.problems)
        return _users_page(request, ui, session, user, error=error, values=form, status=422)
    except GraylaneError as exc:
        return _users_page(
            request, ui, session, user, error=exc.message, values=form, status=exc.status
        )
    return done(session, user, "/ui/users", f"Created {username} ({role.replace('_', ' ')}).")


@router.post("/users/{username}")
def update_user(
    username: str,
    request: Request,
    form: PostedForm,
    user: UiAdmin,
    session: SessionDep,
    ui: UiDep,
) -> Response:
    target = users.get(session, username)
    role: Role | None = None
    disabled: bool | None = None
    if "role" in form:
        try:
            role = Role(form["role"])
        except ValueError:
            return done(session, user, "/ui/users", "Choose a role.", "error")
    if "disabled" in form:
        disabled = form["disabled"] == "true"
    if username == user.username and (disabled or (role is not None and role != Role.ADMIN)):
        return done(
            session,
            user,
            "/ui/users",
            "You cannot disable yourself or drop your own admin role: ask another admin.",
            "error",
        )
    if disabled:
        title, message, label = (
            f"Disable {username}?",
            f"{username} is signed out everywhere and cannot sign in until enabled again.",
            "Disable user",
        )
    elif role is not None:
        title, message, label = (
            f"Make {username} {role.replace('_', ' ')}?",
            f"{username} goes from {target.role.replace('_', ' ')} to "
            f"{role.replace('_', ' ')}, effective on their next click.",
            "Change role",
        )
    else:
        title, message, label = (
            f"Enable {username}?",
            f"{username} can sign in again.",
            "Enable user",
        )
    asked = confirmation(
        request,
        ui,
        session,
        user,
        form,
        title=title,
        message=message,
        label=label,
        danger=bool(disabled),
        back="/ui/users",
    )
    if asked is not None:
        return asked
    users.update(
        session, actor=user.principal.actor, username=username, role=role, disabled=disabled
    )
    return done(session, user, "/ui/users", f"Updated {username}.")


# --- audit log ------------------------------------------------------------------------------

AUDIT_PAGE = 50


@router.get("/audit")
def audit_log(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    ui: UiDep,
    target: str = "",
    target_type: str = "",
    actor: str = "",
    action: str = "",
    environment: str = "",
    before: int | None = None,
) -> Response:
    where = AuditFilter(
        target_type=target_type or None,
        target_key=target.strip() or None,
        actor=actor.strip() or None,
        environment=environment or None,
        action=action.strip() or None,
    )
    rows = page(session, where, before_id=before, limit=AUDIT_PAGE)
    params = {
        k: v
        for k, v in {
            "target": target,
            "target_type": target_type,
            "actor": actor,
            "action": action,
            "environment": environment,
        }.items()
        if v
    }
    env = choose_environment(request, environments.listing(session))
    return render(
        request,
        ui,
        session,
        user,
        "audit.html",
        active="audit",
        environment=env,
        rows=rows,
        filters=params,
        next_before=rows[-1].id if len(rows) == AUDIT_PAGE else None,
        first_page=before is None,
    )
