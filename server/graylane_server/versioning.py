"""Optimistic concurrency for documents that carry a version (flags, segments)."""

from __future__ import annotations

from graylane_server.errors import PreconditionFailed, PreconditionRequired


def etag(version: int) -> str:
    return f'"{version}"'


def check(what: str, current: int | None, expected: int | None) -> None:
    """Refuse a write made against another version than the stored one.

    Creating needs no version; replacing something that exists needs the version the
    writer read, so nobody overwrites a change they have not seen.
    """
    if current is None:
        if expected is not None:
            raise PreconditionFailed(
                f"{what} does not exist, so it cannot be at version {expected}"
            )
        return
    if expected is None:
        raise PreconditionRequired(
            f'{what} exists at version {current}; send `If-Match: "{current}"` to replace it'
        )
    if expected != current:
        raise PreconditionFailed(
            f"{what} is at version {current}, not {expected}: it changed since you read it",
            headers={"ETag": etag(current)},
        )
