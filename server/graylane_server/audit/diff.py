"""Readable differences between two JSON documents, for the audit log."""

from __future__ import annotations

from typing import Any

_MISSING: Any = object()


def json_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Every leaf that differs, as `{"path", "before", "after"}`; a missing side is absent."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[dict[str, Any]] = []
        for key in [*before, *(k for k in after if k not in before)]:
            child = f"{path}.{key}" if path else str(key)
            changes += json_diff(before.get(key, _MISSING), after.get(key, _MISSING), child)
        return changes
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        changes = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            changes += json_diff(old, new, f"{path}[{index}]")
        return changes
    if before is not _MISSING and after is not _MISSING and _same(before, after):
        return []
    change: dict[str, Any] = {"path": path}
    if before is not _MISSING:
        change["before"] = before
    if after is not _MISSING:
        change["after"] = after
    return [change]


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; in JSON they are different values.
    return type(a) is type(b) and a == b
