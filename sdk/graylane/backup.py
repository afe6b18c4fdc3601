"""The last good config on disk, so an app can start while the server is away.

Written atomically (a temporary file renamed over the old one), so a crash mid-write
leaves the previous backup intact, never half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graylane.transport import valid_etag

FORMAT = "graylane-backup/1"


class BackupError(Exception):
    """The backup file is missing, unreadable or not a backup; the message says which."""


@dataclass(frozen=True, slots=True)
class Backup:
    environment: str
    version: int | None
    etag: str | None
    document: dict[str, Any]
    saved_at: str


def write(
    path: Path, *, environment: str, version: int | None, etag: str | None, body: bytes
) -> None:
    payload = {
        "format": FORMAT,
        "environment": environment,
        "version": version,
        "etag": etag,
        "saved_at": datetime.now(UTC).isoformat(),
        "document": json.loads(body),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def is_backup(data: object) -> bool:
    return isinstance(data, dict) and data.get("format") == FORMAT


def from_data(data: object, source: str) -> Backup:
    if not is_backup(data):
        raise BackupError(f"{source}: not a Graylane backup file")
    assert isinstance(data, dict)
    environment, document = data.get("environment"), data.get("document")
    if not isinstance(environment, str) or not isinstance(document, dict):
        raise BackupError(f"{source}: backup is missing its environment or document")
    # A version or ETag that is not what the server gives would make the client ignore
    # change notices or fail every fetch: such a backup is served, then simply replaced.
    version, etag = data.get("version"), data.get("etag")
    return Backup(
        environment=environment,
        version=version if type(version) is int and 0 <= version < 2**63 else None,
        etag=etag if isinstance(etag, str) and valid_etag(etag) else None,
        document=document,
        saved_at=str(data.get("saved_at", "")),
    )


def read(path: Path) -> Backup:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"{path}: no backup file yet") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BackupError(f"{path}: unreadable backup ({type(exc).__name__}: {exc})") from exc
    return from_data(data, str(path))
