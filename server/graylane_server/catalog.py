"""Flags and segments as one document: loaded from the database, validated by the core,
and resolved to what one environment's SDKs see.

A config change touches a row or two, so what serves SDKs is kept up to date by reading
only the rows whose stamp moved (`load_catalog`) and encoding only the definitions that
are new objects (`ResolvedEncoder`); both give exactly what a full read would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from graylane.core import Document, DocumentError, Problem, dump_document, parse_document
from graylane.core.document import ramp_write_problems

from .errors import InvalidDocument
from .models import FlagRow, SegmentRow

RawDocument = dict[str, dict[str, dict[str, Any]]]
_EVALUATED_FIELDS = ("salt", "variants", "off_variant")
"""The flag fields an SDK needs; descriptions and tags stay on the server."""
_SDK_RAMP_FIELDS = ("stages",)
"""The ramp fields SDKs are served. An SDK only needs to know that a flag is under a ramp
(to count its traffic for the guards), and its parser refuses a whole configuration with
a field newer than itself: every SDK release accepts `stages`, so guards and the plan's
other fields stay on the server and new ones never reach an SDK."""
_JSON_OPTIONS: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False}

Stamp = tuple[int, int, datetime]
"""A row's id, version and update time. Every write through the ORM raises `version`;
a row deleted and created again has a new id, or at least a new time (SQLite may give a
deleted row's id to the next one)."""
Rows = tuple[dict[str, dict[str, Any]], dict[str, Stamp]]
"""Definitions and stamps, by key."""
Member = tuple[object, str]
"""A definition and its `"key":value` JSON."""
_TABLES: dict[str, type[FlagRow] | type[SegmentRow]] = {"flags": FlagRow, "segments": SegmentRow}
_MAX_LISTED = 500
"""More changed rows than this are read with the whole table, in one query."""


def load_raw(session: Session) -> RawDocument:
    flags = session.execute(select(FlagRow.key, FlagRow.definition).order_by(FlagRow.key))
    segments = session.execute(
        select(SegmentRow.key, SegmentRow.definition).order_by(SegmentRow.key)
    )
    return {"flags": dict(flags.all()), "segments": dict(segments.all())}


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every flag and segment definition, as `load_raw` reads them, with the stamp of
    the row each one came from. The definitions are never changed in place: a later
    `load_catalog` and the core's incremental parse rely on that."""

    raw: RawDocument
    stamps: Mapping[str, Mapping[str, Stamp]]
    """By part ("flags", "segments"), then key."""


def load_catalog(session: Session, previous: Catalog | None = None) -> Catalog:
    """Every definition, reading again only the rows whose stamp differs from
    `previous`: the definitions of unchanged rows are `previous`'s very objects."""
    raw: RawDocument = {}
    stamps: dict[str, Mapping[str, Stamp]] = {}
    for part, table in _TABLES.items():
        held = None if previous is None else (previous.raw[part], previous.stamps[part])
        raw[part], stamps[part] = _load_table(session, table, held)
    return Catalog(raw=raw, stamps=stamps)


def _load_table(
    session: Session,
    table: type[FlagRow] | type[SegmentRow],
    held: tuple[Mapping[str, dict[str, Any]], Mapping[str, Stamp]] | None,
) -> Rows:
    columns = (table.key, table.id, table.version, table.updated_at)
    everything = select(*columns, table.definition).order_by(table.key)
    if held is None:
        return _read(session, everything)
    definitions, held_stamps = held
    current = [
        (key, (row_id, version, at))
        for key, row_id, version, at in session.execute(select(*columns).order_by(table.key))
    ]
    changed = [key for key, stamp in current if held_stamps.get(key) != stamp]
    if len(changed) > _MAX_LISTED:
        return _read(session, everything)
    fresh, fresh_stamps = _read(session, everything.where(table.key.in_(changed)))
    out: dict[str, dict[str, Any]] = {}
    out_stamps: dict[str, Stamp] = {}
    # In the order of the stamp query, which is the order a full read gives.
    for key, stamp in current:
        if key in fresh:
            out[key], out_stamps[key] = fresh[key], fresh_stamps[key]
        elif held_stamps.get(key) == stamp:
            out[key], out_stamps[key] = definitions[key], stamp
        # else: deleted between the two queries; the next refresh agrees.
    return out, out_stamps


def _read(session: Session, query: Select[tuple[str, int, int, datetime, dict[str, Any]]]) -> Rows:
    definitions: dict[str, dict[str, Any]] = {}
    stamps: dict[str, Stamp] = {}
    for key, row_id, version, at, definition in session.execute(query):
        definitions[key], stamps[key] = definition, (row_id, version, at)
    return definitions, stamps


def check(raw: RawDocument, environments: Iterable[str], *, prefix: str = "") -> Document:
    """Validate with the core and against the environments that exist. Problems are
    reported relative to `prefix`, the part of the document the request body holds."""
    problems: list[Problem] = []
    document: Document | None = None
    try:
        document = parse_document(raw)
    except DocumentError as exc:
        problems.extend(exc.problems)
    problems.extend(ramp_write_problems(raw))
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
    out["environments"] = {} if config is None else {environment: sdk_environment(config)}
    return out


def sdk_environment(config: Any) -> Any:
    """One environment's configuration as SDKs are served it: its ramp block, if it has
    one, holds only `_SDK_RAMP_FIELDS`. Anything that is not a mapping is left for the
    parser to name."""
    if not isinstance(config, dict) or not isinstance(config.get("ramp"), dict):
        return config
    ramp = {field: config["ramp"][field] for field in _SDK_RAMP_FIELDS if field in config["ramp"]}
    return {**config, "ramp": ramp}


def resolved_document(raw: RawDocument, environment: str) -> RawDocument:
    """The document as one environment's SDKs receive it: every flag, only this
    environment's configuration (a flag without one is off there), every segment."""
    return {
        "flags": {key: resolved_flag(d, environment) for key, d in raw["flags"].items()},
        "segments": raw["segments"],
    }


class ResolvedEncoder:
    """The JSON bytes of `resolved_document(raw, environment)`, exactly as
    `json.dumps(..., separators=(",", ":"), ensure_ascii=False)` writes them, built from
    one encoded member per flag and segment: a definition that is the very object
    encoded last time is not encoded again."""

    def __init__(self) -> None:
        # (definition, encoded member) by key; flags also by environment. Holding the
        # definition keeps its identity from being reused by another object.
        self._flags: dict[str, dict[str, Member]] = {}
        self._segments: dict[str, Member] = {}

    def encode(self, raw: RawDocument, environment: str) -> bytes:
        flags = _members(
            raw["flags"],
            self._flags.get(environment, {}),
            lambda definition: resolved_flag(definition, environment),
        )
        segments = _members(raw["segments"], self._segments, lambda definition: definition)
        self._flags[environment], self._segments = flags, segments
        text = (
            '{"flags":{'
            + ",".join(member for _, member in flags.values())
            + '},"segments":{'
            + ",".join(member for _, member in segments.values())
            + "}}"
        )
        return text.encode()

    def forget_except(self, environments: Iterable[str]) -> None:
        """Drop what was kept for environments that are gone."""
        keep = set(environments)
        for environment in [e for e in self._flags if e not in keep]:
            del self._flags[environment]


def _members(
    definitions: Mapping[str, dict[str, Any]],
    held: Mapping[str, Member],
    resolve: Callable[[dict[str, Any]], object],
) -> dict[str, Member]:
    """`"key":value` for each definition, in order; the value encoded again only for a
    definition that is not the very object held."""
    members: dict[str, Member] = {}
    for key, definition in definitions.items():
        entry = held.get(key)
        if entry is None or entry[0] is not definition:
            encoded = json.dumps({key: resolve(definition)}, **_JSON_OPTIONS)[1:-1]
            entry = (definition, encoded)
        members[key] = entry
    return members


def affected_environments(
    before: dict[str, Any] | None, after: dict[str, Any] | None, environments: Iterable[str]
) -> list[str]:
    """Environments whose SDKs would see a difference between two flag definitions."""
    if before is None or after is None:
        return list(environments)
    return [e for e in environments if resolved_flag(before, e) != resolved_flag(after, e)]
