"""Segments: the list, one segment's page, creating or editing one in the editor flags
share, and deleting one no flag uses."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from graylane_server import catalog
from graylane_server.deps import SessionDep
from graylane_server.environments import service as environments
from graylane_server.errors import GraylaneError
from graylane_server.flags import service as flags
from graylane_server.segments import service as segments
from graylane_server.ui import editor, forms
from graylane_server.ui.auth import CurrentUser, PostedForm, UiDep, UiEditor
from graylane_server.ui.pages import choose_environment, confirmation, done, render
from graylane_server.ui.sessions import SignedIn
from graylane_server.ui.state import UiState

router = APIRouter(prefix="/ui", include_in_schema=False)

SEGMENT_TEMPLATE = (
    '{\n  "description": "",\n  "include": [],\n  "exclude": [],\n  "when": [\n'
    '    {"attribute": "plan", "op": "in", "values": ["pro"]}\n  ]\n}'
)


@router.get("/segments")
def segment_list(
    *, request: Request, session: SessionDep, user: CurrentUser, ui: UiDep
) -> Response:
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


def _segment_page(
    request: Request,
    ui: UiState,
    session: Session,
    user: SignedIn,
    key: str | None,
    *,
    shown: editor.Shown | None = None,
    new_key: str = "",
    status: int = 200,
) -> HTMLResponse:
    """The segment `key`, or (None) a new one, named `new_key` when a form named it."""
    row = segments.get(session, key) if key is not None else None
    env = choose_environment(request, environments.listing(session))
    stored_text = (
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
        **editor.fields(shown, stored_text),
        status=status,
    )


@router.get("/create/segment")
def new_segment(*, request: Request, session: SessionDep, user: UiEditor, ui: UiDep) -> Response:
    return _segment_page(request, ui, session, user, None)


@router.get("/segments/{key}")
def segment_detail(
    key: str, *, request: Request, session: SessionDep, user: CurrentUser, ui: UiDep
) -> Response:
    return _segment_page(request, ui, session, user, key)


@router.post("/segments")
def save_segment(
    *, request: Request, form: PostedForm, user: UiEditor, session: SessionDep, ui: UiDep
) -> Response:
    """Create (no version) or review and save (with the version read) a segment."""
    key = forms.text(form, "key")
    existing = segments.get(session, key) if form.get("version") else None

    def canonical(proposed: editor.Definition) -> editor.Definition:
        # Checked alone, as segments.put checks it, so the review shows what saving would.
        raw: catalog.RawDocument = {"flags": {}, "segments": {key: proposed}}
        document = catalog.check(raw, (), prefix=f"segments.{key}")
        return catalog.canonical(document)["segments"][key]

    def compare(proposal: editor.Definition) -> editor.Comparison:
        used_by = segments.users_of(session, key)
        definitions = {r.key: r.definition for r in flags.listing(session) if r.key in used_by}
        all_segments = {s.key: s.definition for s in segments.listing(session)}
        return editor.Comparison(
            before={"flags": definitions, "segments": all_segments},
            after={"flags": definitions, "segments": {**all_segments, key: proposal}},
            flags=used_by,
        )

    subject = editor.Subject(
        kind="segment",
        key=key,
        noun="segment",
        stored=editor.Stored(existing.definition, existing.version) if existing else None,
        checks_opened_version=False,
        canonical=canonical,
        compare=compare,
        put=segments.put,
        saved=lambda version: f"Saved segment {key} (version {version}).",
        url=f"/ui/segments/{key}",
        show=lambda status, shown: _segment_page(
            request,
            ui,
            session,
            user,
            existing.key if existing else None,
            shown=shown,
            new_key=key,
            status=status,
        ),
    )
    return editor.review_and_save(session, user, form, subject)


@router.post("/segments/{key}/delete")
def delete_segment(
    key: str,
    *,
    request: Request,
    form: PostedForm,
    user: UiEditor,
    session: SessionDep,
    ui: UiDep,
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
