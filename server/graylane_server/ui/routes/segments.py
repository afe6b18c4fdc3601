"""Segments: the list, one segment's page, creating or editing one in the editor flags
share, and deleting one no flag uses."""

from __future__ import annotations

import json

from fastapi import APIRouter
from starlette.responses import HTMLResponse, Response

from graylane_server import catalog
from graylane_server.errors import GraylaneError
from graylane_server.flags import service as flags
from graylane_server.segments import service as segments
from graylane_server.ui import editor, forms
from graylane_server.ui.auth import EditorPage, PostedForm, ViewerPage
from graylane_server.ui.pages import Page

router = APIRouter(prefix="/ui", include_in_schema=False)

SEGMENT_TEMPLATE = (
    '{\n  "description": "",\n  "include": [],\n  "exclude": [],\n  "when": [\n'
    '    {"attribute": "plan", "op": "in", "values": ["pro"]}\n  ]\n}'
)


@router.get("/segments")
def segment_list(*, page: ViewerPage) -> Response:
    rows = segments.listing(page.session)
    items = [{"row": r, "used_by": segments.users_of(page.session, r.key)} for r in rows]
    env = page.chosen_environment()
    return page.render("segments.html", active="segments", environment=env, items=items)


def _segment_page(
    page: Page,
    key: str | None,
    *,
    shown: editor.Shown | None = None,
    new_key: str = "",
    status: int = 200,
) -> HTMLResponse:
    """The segment `key`, or (None) a new one, named `new_key` when a form named it."""
    session = page.session
    row = segments.get(session, key) if key is not None else None
    env = page.chosen_environment()
    stored_text = (
        json.dumps(row.definition, indent=2, ensure_ascii=False)
        if row is not None
        else SEGMENT_TEMPLATE
    )
    return page.render(
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
def new_segment(*, page: EditorPage) -> Response:
    return _segment_page(page, None)


@router.get("/segments/{key}")
def segment_detail(key: str, *, page: ViewerPage) -> Response:
    return _segment_page(page, key)


@router.post("/segments")
def save_segment(*, form: PostedForm, page: EditorPage) -> Response:
    """Create (no version) or review and save (with the version read) a segment."""
    session = page.session
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
            page,
            existing.key if existing else None,
            shown=shown,
            new_key=key,
            status=status,
        ),
    )
    return editor.review_and_save(page, form, subject)


@router.post("/segments/{key}/delete")
def delete_segment(key: str, *, form: PostedForm, page: EditorPage) -> Response:
    segments.get(page.session, key)
    asked = page.confirm(
        form,
        title=f"Delete segment {key}?",
        message="Only a segment no flag uses can be deleted.",
        label="Delete segment",
        back=f"/ui/segments/{key}",
    )
    if asked is not None:
        return asked
    try:
        with page.session.begin_nested():
            segments.delete(
                page.session,
                actor=page.actor,
                key=key,
                expected_version=None,
                reason=forms.text(form, "reason") or None,
            )
    except GraylaneError as exc:
        return page.done(f"/ui/segments/{key}", exc.message, "error")
    return page.done("/ui/segments", f"Deleted segment {key}.")
