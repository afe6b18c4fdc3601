"""The `graylane` command: validate flag documents and evaluate flags offline."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .app import app  # noqa: PLC0415 - typer is an optional extra
    except ModuleNotFoundError as exc:
        if exc.name not in ("typer", "yaml", "click"):
            raise
        sys.stderr.write("the graylane command needs its extra: pip install 'graylane[cli]'\n")
        raise SystemExit(2) from exc
    app()
