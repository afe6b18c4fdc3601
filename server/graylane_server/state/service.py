"""The whole document at once: export it, or apply one idempotently in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from graylane_server import catalog, prometheus_urls
from graylane_server.audit.diff import json_diff
from graylane_server.configs.notices import bump_versions, environment_keys
from graylane_server.flags import repository as flag_rows
from graylane_server.flags import service as flags
from graylane_server.ramps.ownership import keep_owned
from graylane_server.segments import repository as segment_rows
from graylane_server.segments import service as segments


@dataclass(slots=True)
class KindPlan:
    created: list[str] = field(default_factory=list)
    updated: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Key -> what changes, path by path."""
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)


@dataclass(slots=True)
class Plan:
    flags: KindPlan
    segments: KindPlan

    @property
    def changes(self) -> int:
        return self.flags.changes + self.segments.changes


def export(session: Session) -> catalog.RawDocument:
    return catalog.load_raw(session)


def _plan(
    current: dict[str, dict[str, Any]], wanted: dict[str, dict[str, Any]], *, prune: bool
) -> KindPlan:
    plan = KindPlan()
    for key, definition in wanted.items():
        if key not in current:
            plan.created.append(key)
        elif current[key] != definition:
            plan.updated[key] = json_diff(current[key], definition)
        else:
            plan.unchanged += 1
    if prune:
        plan.deleted = [key for key in current if key not in wanted]
    return plan


def apply(
    session: Session,
    *,
    actor: str,
    raw: object,
    dry_run: bool,
    prune: bool,
    reason: str | None,
) -> Plan:
    """Make the stored flags and segments equal the document. Applying the same document
    twice changes nothing the second time. With `prune`, what the document leaves out is
    deleted; without it, only created and updated."""
    environments = environment_keys(session)
    if isinstance(raw, dict) and isinstance(raw.get("flags"), dict):
        raw = {
            **raw,
            "flags": {
                key: keep_owned(session, key, d) if isinstance(d, dict) else d
                for key, d in raw["flags"].items()
            },
        }
    document = catalog.check(raw, environments)  # type: ignore[arg-type]
    wanted = catalog.canonical(document)
    flag_by_key = flag_rows.all_by_key(session)
    prometheus_urls.check(
        session, wanted["flags"], {k: r.definition for k, r in flag_by_key.items()}
    )
    segment_by_key = segment_rows.all_by_key(session)
    if not prune:
        # What stays must still be valid next to what comes: check the merged document.
        merged = catalog.load_raw(session)
        merged["flags"].update(wanted["flags"])
        merged["segments"].update(wanted["segments"])
        catalog.check(merged, environments)
    plan = Plan(
        flags=_plan(
            {k: r.definition for k, r in flag_by_key.items()}, wanted["flags"], prune=prune
        ),
        segments=_plan(
            {k: r.definition for k, r in segment_by_key.items()}, wanted["segments"], prune=prune
        ),
    )
    if dry_run or plan.changes == 0:
        return plan

    # Segments first, so flags never refer to one that is not there yet; deleted
    # segments last, once no flag refers to them any more.
    for key in [*plan.segments.created, *plan.segments.updated]:
        segments.store(
            session,
            actor=actor,
            key=key,
            row=segment_by_key.get(key),
            definition=wanted["segments"][key],
            reason=reason,
        )
    affected: set[str] = set()
    for key in [*plan.flags.created, *plan.flags.updated]:
        _, envs = flags.store(
            session,
            actor=actor,
            key=key,
            row=flag_by_key.get(key),
            definition=wanted["flags"][key],
            reason=reason,
        )
        affected.update(envs)
    for key in plan.flags.deleted:
        affected.update(flags.remove(session, actor=actor, row=flag_by_key[key], reason=reason))
    for key in plan.segments.deleted:
        segments.remove(session, actor=actor, row=segment_by_key[key], reason=reason)
    if plan.segments.changes:
        affected.update(environments)
    bump_versions(session, affected)
    return plan
