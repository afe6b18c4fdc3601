"""Reading flag documents from files: JSON, or YAML with YAML 1.2 rules.

YAML 1.1 (PyYAML's default) reads `on`, `off`, `yes` and `no` as booleans and bare dates
as timestamps, which would turn `variants: {on: true, off: false}` into
`{True: True, False: False}`. Flag documents use `on`/`off` as names everywhere, so the
loader here only knows `true`/`false` as booleans and keeps dates as strings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


class DocumentFileError(Exception):
    """The file could not be read or is not JSON/YAML; the message says which and where."""


def _yaml_loader() -> Any:
    try:
        import yaml  # noqa: PLC0415 - optional: only YAML files need it
    except ModuleNotFoundError as exc:
        raise DocumentFileError(
            "reading YAML needs PyYAML: pip install 'graylane[cli]' (or use a JSON file)"
        ) from exc

    class Yaml12Loader(yaml.SafeLoader):
        pass

    resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = [
            (tag, rx)
            for tag, rx in entries
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
        ]
        resolvers[first] = kept
    Yaml12Loader.yaml_implicit_resolvers = resolvers
    Yaml12Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    return Yaml12Loader


def parse_text(text: str, *, source: str = "<text>", yaml_allowed: bool = True) -> object:
    """Parse JSON, falling back to YAML (a superset) for anything that is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as json_error:
        if not yaml_allowed:
            raise DocumentFileError(f"{source}: not valid JSON: {json_error}") from json_error
    import yaml  # noqa: PLC0415 - present when _yaml_loader succeeded

    loader = _yaml_loader()
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise DocumentFileError(f"{source}: not valid JSON or YAML: {exc}") from exc


def read_document_file(path: str | Path) -> object:
    """The raw data in a JSON or YAML file (`.json` is read as JSON only)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DocumentFileError(f"{file}: no such file") from exc
    except IsADirectoryError as exc:
        raise DocumentFileError(f"{file}: is a directory, not a document") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentFileError(f"{file}: cannot read: {exc}") from exc
    return parse_text(text, source=str(file), yaml_allowed=file.suffix.lower() != ".json")
