"""Flags and segments as one document: loaded from the database, validated by the core,
and resolved to what one environment's SDKs see."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane.core import Document, DocumentError, Problem, dump_document, parse_document

from .errors import InvalidDocument
from .models import FlagRow, SegmentRow

RawDocument = dict[str, dict[str, dict[str, Any]]]
_EVALUATED_FIELDS = ("salt", "variants", "off_variant")
"""The flag fields an SDK needs; descriptions and tags stay on the server."""


def load_raw(session: Session) -> RawDocument:
    flags = session.execute(select(FlagRow.key, FlagRow.definition).order_by(FlagRow.key))
    segments = session.execute(
        select(SegmentRow.key, SegmentRow.definition).order_by(SegmentRow.key)
    )
    return {"flags": dict(flags.all()), "segments": dict(segments.all())}


def check(raw: RawDocument, environments: Iterable[str], *, prefix: str = "") -> Document:
    """Validate with the core and against the environments that exist. Problems are
    reported relative to `prefix`, the part of the document the request body holds."""
    problems: list[Problem] = []
    document: Document | None = None
    try:
        document = parse_document(raw)
    except DocumentError as exc:
        problems.extend(exc.problems)
    known = set(environments)
    names = f"environments are: {', '.join(sorted(known))}"
    flags = raw.get("flags") if isinstance(raw, dict) else None
    for key, flag in (flags if isinstance(flags, dict) else {}).items():
        envs = flag.get("environments") if isinstance(flag, dict) else None
        problems.extend(
            Problem(f"flags.{key}.environments.{env}", f"unknown environment {env!r}; {names}")
            for env in (envs if isinstance(envs, dict) else ())
            if env not in known
        )
    if problems:
        raise InvalidDocument(relative(problems, prefix))
    assert document is not None
    return document


def relative(problems: Sequence[Problem], prefix: str) -> list[Problem]:
    if not prefix:
        return list(problems)
    out = []
    for problem in problems:
        if problem.path == prefix:
            out.append(Problem("", problem.message))
        elif problem.path.startswith(prefix + "."):
            out.append(Problem(problem.path[len(prefix) + 1 :], problem.message))
        else:
            out.append(problem)
    return out


def canonical(document: Document) -> RawDocument:
    """Defaults made explicit, so equal meaning is equal data."""
    dumped = dump_document(document)
    return {"flags": dumped["flags"], "segments": dumped.get("segments", {})}  # type: ignore[dict-item]


def resolved_flag(definition: dict[str, Any], environment: str) -> dict[str, Any]:
    out = {field: definition[field] for field in _EVALUATED_FIELDS if field in definition}
    config = definition.get("environments", {}).get(environment)
    out["environments"] = {} if config is None else {environment: config}
    return out


def resolved_document(raw: RawDocument, environment: str) -> RawDocument:
    """The document as one environment's SDKs receive it: every flag, only this
    environment's configuration (a flag without one is off there), every segment."""
    return {
        "flags": {key: resolved_flag(d, environment) for key, d in raw["flags"].items()},
        "segments": raw["segments"],
    }


def affected_environments(
    before: dict[str, Any] | None, after: dict[str, Any] | None, environments: Iterable[str]
) -> list[str]:
    """Environments whose SDKs would see a difference between two flag definitions."""
    if before is None or after is None:
        return list(environments)
    return [e for e in environments if resolved_flag(before, e) != resolved_flag(after, e)]
