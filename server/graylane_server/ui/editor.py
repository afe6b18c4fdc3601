"""The definition editor that flags and segments share.

What a person types is parsed and checked as the API would check it; problems show in
place by path. A valid change to something stored is reviewed first (what changes, and
how many units of a sample would get another answer), and saving is refused when the
stored version or the reviewed text moved on since. Each editor says what differs in a
`Subject`; `review_and_save` is the one flow both run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from graylane.core import Problem
from graylane_server.audit.diff import json_diff
from graylane_server.catalog import RawDocument
from graylane_server.configs.notices import environment_keys
from graylane_server.errors import InvalidDocument, PreconditionFailed, PreconditionRequired
from graylane_server.ui import forms, impact
from graylane_server.ui.impact import Impact
from graylane_server.ui.pages import Page

Definition = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Review:
    changes: list[dict[str, Any]]
    impact: Impact
    fingerprint: str
    """Names the canonical definition reviewed: the save button carries it back, so what
    is saved is what was reviewed."""


@dataclass(frozen=True, slots=True)
class Shown:
    """The editor as a page shows it again: the text as typed, and what came of it."""

    text: str
    samples: str
    problems: list[Problem] = field(default_factory=list)
    review: Review | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Stored:
    definition: Definition
    version: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """The documents the impact preview evaluates, and the flags it evaluates in them."""

    before: RawDocument
    after: RawDocument
    flags: list[str]


@dataclass(frozen=True, slots=True)
class Refused:
    message: str


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


class Put(Protocol):
    """flags.put, segments.put: create or replace one, under If-Match."""

    def __call__(
        self,
        session: Session,
        *,
        actor: str,
        key: str,
        definition: Definition,
        expected_version: int | None,
        reason: str | None,
    ) -> tuple[Versioned, bool]: ...


@dataclass(frozen=True, slots=True)
class Subject:
    """What tells one editor from another."""

    kind: Literal["flag", "segment"]
    key: str
    noun: str
    """What the edited text is called in messages: "definition", "segment"."""
    stored: Stored | None
    """None for a new one, which is saved at once: there is nothing to review it against."""
    checks_opened_version: bool
    """Refuse a save from a page opened at an older version before asking the service,
    naming the version now stored (else the service's If-Match check speaks)."""
    canonical: Callable[[Definition], Definition]
    """The proposed definition as it would be stored; raises InvalidDocument."""
    compare: Callable[[Definition], Comparison]
    """What the impact preview evaluates, given the canonical proposal."""
    put: Put
    """Saves the proposal as typed; the service checks it again under its lock."""
    saved: Callable[[int], str]
    """The message after a save that changed something, given the new version."""
    url: str
    """Where a save leads."""
    show: Callable[[int, Shown], HTMLResponse]
    """The editor's page again, with this status."""


# --- pure -----------------------------------------------------------------------------------


def fingerprint_of(definition: Definition) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


def next_step(
    subject: Subject,
    *,
    intent: str | None,
    expected: int | None,
    reviewed: str | None,
    fingerprint: str,
) -> Literal["review", "save"] | Refused:
    """Review, save, or refuse a valid proposal: `fingerprint` is its canonical form's,
    `reviewed` the one the page was reviewed with, `expected` the version it was opened at."""
    stored = subject.stored
    if stored is None:
        return "save"
    if intent != "save":
        return "review"
    if subject.checks_opened_version and expected != stored.version:
        return Refused(
            f"{subject.key} changed since you opened it (now version {stored.version}); "
            "reload to see the latest before saving."
        )
    if reviewed != fingerprint:
        return Refused(
            f"The {subject.noun} changed since you reviewed it: review it again before saving."
        )
    return "save"


def fields(shown: Shown | None, stored_text: str) -> dict[str, Any]:
    """The editor's part of a page's context: as stored when nothing was posted."""
    if shown is None:
        shown = Shown(text=stored_text, samples="")
    return {
        "editor_text": shown.text,
        "problems": shown.problems,
        "review": shown.review,
        "editor_error": shown.error,
        "samples": shown.samples,
    }


# --- the flow -------------------------------------------------------------------------------


def review_and_save(page: Page, form: Mapping[str, str], subject: Subject) -> Response:
    """The editor's form, posted: back to its page with the problems, a refusal or a
    review; or saved, with a message on the page it leads to."""
    source = form.get("definition", "")
    samples = form.get("samples", "")

    def again(
        status: int,
        *,
        problems: Sequence[Problem] = (),
        review: Review | None = None,
        error: str | None = None,
    ) -> HTMLResponse:
        shown = Shown(source, samples, list(problems), review, error)
        return subject.show(status, shown)

    try:
        proposed = forms.document(source, subject.noun)
        contexts = forms.contexts(samples)
        canonical = subject.canonical(proposed)
        expected = forms.optional_int(form, "version")
    except InvalidDocument as exc:
        return again(422, problems=exc.problems)
    except forms.FormError as exc:
        return again(422, error=exc.message)
    fingerprint = fingerprint_of(canonical)
    step = next_step(
        subject,
        intent=form.get("intent"),
        expected=expected,
        reviewed=form.get("reviewed"),
        fingerprint=fingerprint,
    )
    if isinstance(step, Refused):
        return again(409, error=step.message)
    session = page.session
    if step == "save":
        try:
            with session.begin_nested():
                saved, changed = subject.put(
                    session,
                    actor=page.actor,
                    key=subject.key,
                    definition=proposed,
                    expected_version=expected,
                    reason=forms.text(form, "reason") or None,
                )
        except InvalidDocument as exc:
            return again(422, problems=exc.problems)
        except PreconditionRequired:
            # Only a new one is saved without a version: its key is taken.
            return again(409, error=f"A {subject.kind} named {subject.key!r} already exists.")
        except PreconditionFailed as exc:
            return again(409, error=exc.message)
        message = subject.saved(saved.version) if changed else "Nothing changed."
        return page.done(subject.url, message)
    assert subject.stored is not None, "only what is stored is reviewed"
    comparison = subject.compare(canonical)
    result = impact.compare(
        comparison.before,
        comparison.after,
        comparison.flags,
        environment_keys(session),
        contexts or None,
    )
    review = Review(
        changes=json_diff(subject.stored.definition, canonical),
        impact=result,
        fingerprint=fingerprint,
    )
    return again(200, review=review)
