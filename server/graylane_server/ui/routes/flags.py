"""Flags: the list, creating one, its page, editing its definition, deleting it and
setting its rollout in one environment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from graylane.core import Problem
from graylane_server.audit import repository as audits
from graylane_server.configs.notices import environment_keys
from graylane_server.environments import service as environments
from graylane_server.errors import InvalidDocument, PreconditionFailed, PreconditionRequired
from graylane_server.flags import service as flags
from graylane_server.models import Environment, FlagRow, utcnow
from graylane_server.ramps import service as ramps
from graylane_server.ramps.ownership import keep_owned, owned_percentages
from graylane_server.segments import service as segments
from graylane_server.ui import drafts, editor, forms, summaries
from graylane_server.ui.auth import EditorPage, PostedForm, ViewerPage
from graylane_server.ui.pages import Page, choose_environment

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/")
def flag_list(
    *,
    page: ViewerPage,
    q: str = "",
    tag: str = "",
    status: Annotated[str, Query(pattern="^(|enabled|disabled)$")] = "",
    ramp: bool = False,
    stale: bool = False,
) -> Response:
    env = page.chosen_environment()
    rows = flags.listing(page.session)
    ramp_rows = {(r.flag, r.environment): r for r in ramps.listing(page.session)}
    now = utcnow()
    stale_after = timedelta(days=page.ui.settings.stale_after_days)
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
    return page.render(
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


# --- creating -------------------------------------------------------------------------------


def _new_flag_page(
    page: Page,
    env: Environment | None,
    *,
    values: Mapping[str, str] | None = None,
    problems: list[Problem] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return page.render(
        "flag_new.html",
        active="flags",
        environment=env,
        values=values or {},
        problems=problems or [],
        error=error,
        status=status,
    )


@router.get("/create/flag")
def new_flag_form(*, page: EditorPage) -> Response:
    return _new_flag_page(page, page.chosen_environment())


@router.post("/flags")
def create_flag(*, form: PostedForm, page: EditorPage) -> Response:
    session = page.session
    env = page.chosen_environment()
    problems: list[Problem] = []
    error = None
    try:
        key, definition = drafts.new_flag(form, environment_keys(session))
        with session.begin_nested():
            flags.put(
                session,
                actor=page.actor,
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
        return page.done(
            target, f"Created {key}. It serves nobody yet: raise its rollout or start a ramp."
        )
    return _new_flag_page(page, env, values=form, problems=problems, error=error, status=422)


# --- one flag -------------------------------------------------------------------------------


def _flag_page(
    page: Page,
    row: FlagRow,
    *,
    shown: editor.Shown | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = page.session
    options = environments.listing(session)
    env = choose_environment(page.request, options)
    ramp_rows = {r.environment: r for r in ramps.listing(session) if r.flag == row.key}
    now = utcnow()
    stale_after = timedelta(days=page.ui.settings.stale_after_days)
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
    recent = audits.page(
        session, audits.AuditFilter(target_type="flag", target_key=row.key), before_id=None, limit=8
    )
    return page.render(
        "flag.html",
        active="flags",
        environment=env,
        flag=row,
        definition=row.definition,
        lines=lines,
        config=config,
        ramps=ramp_rows,
        owned=owned,
        **editor.fields(shown, json.dumps(row.definition, indent=2, ensure_ascii=False)),
        recent=recent,
        status=status,
    )


@router.get("/flags/{key}")
def flag_detail(key: str, *, page: ViewerPage) -> Response:
    return _flag_page(page, flags.get(page.session, key))


@router.post("/flags/{key}/definition")
def edit_flag(key: str, *, form: PostedForm, page: EditorPage) -> Response:
    """Review a changed definition (validation, diff, impact on a sample), then save it."""
    session = page.session
    row = flags.get(session, key)

    def canonical(proposed: editor.Definition) -> editor.Definition:
        # Reviewed as it would be saved: with the percentage a running ramp has reached.
        kept = keep_owned(session, key, proposed)
        return flags.validate(session, key, kept, prefix=f"flags.{key}")

    def compare(proposal: editor.Definition) -> editor.Comparison:
        segment_defs = {s.key: s.definition for s in segments.listing(session)}
        return editor.Comparison(
            before={"flags": {key: row.definition}, "segments": segment_defs},
            after={"flags": {key: proposal}, "segments": segment_defs},
            flags=[key],
        )

    subject = editor.Subject(
        kind="flag",
        key=key,
        noun="definition",
        stored=editor.Stored(row.definition, row.version),
        checks_opened_version=True,
        canonical=canonical,
        compare=compare,
        put=flags.put,
        saved=lambda version: f"Saved {key} as version {version}.",
        url=f"/ui/flags/{key}",
        show=lambda status, shown: _flag_page(page, row, shown=shown, status=status),
    )
    return editor.review_and_save(page, form, subject)


@router.post("/flags/{key}/delete")
def delete_flag(key: str, *, form: PostedForm, page: EditorPage) -> Response:
    flags.get(page.session, key)
    asked = page.confirm(
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
        page.session,
        actor=page.actor,
        key=key,
        expected_version=None,
        reason=forms.text(form, "reason") or None,
    )
    return page.done("/ui/", f"Deleted {key}.")


@router.post("/flags/{key}/environments/{environment}/rollout")
def set_rollout(key: str, environment: str, *, form: PostedForm, page: EditorPage) -> Response:
    session = page.session
    row = flags.get(session, key)
    environments.get(session, environment)
    back = f"/ui/flags/{key}?env={environment}"
    try:
        value = forms.percentage(form.get("percentage", ""))
        config = drafts.rollout_config(row.definition, key, environment)
    except forms.FormError as exc:
        return page.done(back, exc.message, "error")
    rollout = config["fallthrough"]["rollout"]
    asked = page.confirm(
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
                actor=page.actor,
                key=key,
                environment=environment,
                config=config,
                expected_version=forms.optional_int(form, "version"),
                reason=forms.text(form, "reason") or None,
            )
    except (PreconditionFailed, PreconditionRequired, InvalidDocument) as exc:
        return page.done(back, exc.message, "error")
    now_at = saved.definition["environments"][environment]["fallthrough"]["rollout"]["percentage"]
    if now_at != value:
        return page.done(
            back,
            f"A running ramp owns the rollout of {key} in {environment}; it stays at "
            f"{now_at}%. Use the ramp's controls instead.",
            "error",
        )
    return page.done(back, f"{key} now serves {value}% of units in {environment}.")
