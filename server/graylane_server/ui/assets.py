"""Where the admin UI's templates and static files live, and their cache-busting URLs."""

from __future__ import annotations

import hashlib
from pathlib import Path

STATIC_PREFIX = "/ui/static"


def admin_ui_dir() -> Path:
    """Inside an installed wheel the templates and static files ship in the package; in a
    checkout they live at the top of the repository."""
    packaged = Path(__file__).resolve().parents[1] / "_admin_ui"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "admin_ui"


def templates_dir() -> Path:
    return admin_ui_dir() / "templates"


def static_dir() -> Path:
    return admin_ui_dir() / "static"


class StaticUrls:
    """`/ui/static/app.css?v=<content hash>`: browsers may cache a file for as long as it
    is unchanged, and pick up a new release at once."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._versions: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        version = self._versions.get(name)
        if version is None:
            path = self._directory / name
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "0"
            version = self._versions[name] = digest[:12]
        return f"{STATIC_PREFIX}/{name}?v={version}"
