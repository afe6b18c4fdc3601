"""Reading flag documents from files and editors: JSON, or YAML with YAML 1.2 rules.

YAML 1.1 (PyYAML's default) reads `on`, `off`, `yes` and `no` as booleans and bare dates
as timestamps, which would turn `variants: {on: true, off: false}` into
`{True: True, False: False}`. Flag documents use `on`/`off` as names everywhere, so the
loader here only knows `true`/`false` as booleans and keeps dates as strings.

Whatever is read is held to the edge limits (`graylane.core.limits`): YAML aliases may
expand to at most MAX_ALIAS_NODES values (a "billion laughs" file of a few hundred bytes
would otherwise become gigabytes once written out as JSON), nesting is bounded while
parsing, and the loaded data must be valid Unicode, finite, 64-bit and JSON-typed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from graylane.core.limits import MAX_DEPTH, json_problems
from graylane.core.problems import Problem

MAX_ALIAS_NODES = 10_000
"""Most values that YAML aliases (`*name`, `<<: *name`) may expand to in one text."""


class DocumentFileError(Exception):
    """The file or text could not be read, or is not JSON/YAML within the edge limits;
    the message says which and where. `problems` holds the same, each with its path
    (or `line L, column C`), for an editor to show next to the text."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems) or (Problem("", message),)


class DocumentLimitError(DocumentFileError):
    """The text parsed, but the data breaks the edge limits: each problem has its path."""


def _yaml() -> ModuleType:
    try:
        import yaml  # noqa: PLC0415 - optional: only YAML files need it
    except ModuleNotFoundError as exc:
        raise DocumentFileError(
            "reading YAML needs PyYAML: pip install 'graylane[cli]' (or use a JSON file)"
        ) from exc
    return yaml


def _yaml_loader(yaml: ModuleType) -> Any:
    class Yaml12Loader(yaml.SafeLoader):  # type: ignore[name-defined,misc]
        """PyYAML's safe loader with YAML 1.2 scalars, bounded nesting and aliases."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0
            self._alias_nodes = 0
            self._sizes: dict[int, int] = {}

        def compose_node(self, parent: object, index: object) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                target = self.anchors.get(event.anchor)
                if target is not None:
                    self._count_alias(target, event)
                return super().compose_node(parent, index)
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nests deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,
                )
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def _count_alias(self, target: Any, event: Any) -> None:
            if isinstance(target, yaml.CollectionNode) and target.end_mark is None:
                raise yaml.composer.ComposerError(
                    None, None, f"alias *{event.anchor} refers to itself", event.start_mark
                )
            self._alias_nodes += self._size(target)
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"aliases expand to more than {MAX_ALIAS_NODES} values",
                    event.start_mark,
                )

        def _size(self, node: Any) -> int:
            """Values in the node once every alias inside it is expanded; a node shared
            by aliases is measured once (iteratively, in post-order)."""
            sizes = self._sizes
            stack: list[tuple[Any, bool]] = [(node, False)]
            while stack:
                item, children_done = stack.pop()
                if id(item) in sizes:
                    continue
                if isinstance(item, yaml.ScalarNode):
                    sizes[id(item)] = 1
                    continue
                children = (
                    [part for pair in item.value for part in pair]
                    if isinstance(item, yaml.MappingNode)
                    else list(item.value)
                )
                if children_done:
                    sizes[id(item)] = 1 + sum(sizes[id(child)] for child in children)
                else:
                    stack.append((item, True))
                    stack.extend((child, False) for child in children)
            return sizes[id(node)]

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


def _load_yaml(text: str, source: str) -> object:
    yaml = _yaml()
    loader = _yaml_loader(yaml)
    try:
        return yaml.load(text, Loader=loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = "" if mark is None else f"line {mark.line + 1}, column {mark.column + 1}"
        reason = getattr(exc, "problem", None) or str(exc)
        raise DocumentFileError(
            f"{source}: not valid JSON or YAML: {exc}",
            [Problem(where, f"not valid JSON or YAML: {reason}")],
        ) from exc
    except RecursionError as exc:  # pragma: no cover - nesting is bounded while composing
        raise DocumentFileError(f"{source}: nests too deeply") from exc


def parse_text(text: str, *, source: str = "<text>", yaml_allowed: bool = True) -> object:
    """Parse JSON, falling back to YAML (a superset) for anything that is not JSON, and
    hold the result to the edge limits. The one way Graylane reads a document typed or
    stored as text: files, the CLI, and the admin UI's editors.

    Raises DocumentFileError (with `problems`) for text that is not JSON/YAML, for YAML
    aliases beyond MAX_ALIAS_NODES or nesting beyond MAX_DEPTH, and for data that breaks
    the edge limits (lone surrogates, NUL, NaN, integers beyond 64 bits, non-JSON types)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as json_error:
        if not yaml_allowed:
            raise DocumentFileError(
                f"{source}: not valid JSON: {json_error}",
                [
                    Problem(
                        f"line {json_error.lineno}, column {json_error.colno}",
                        f"not valid JSON: {json_error.msg}",
                    )
                ],
            ) from json_error
        data = _load_yaml(text, source)
    except RecursionError as exc:
        raise DocumentFileError(
            f"{source}: nests deeper than {MAX_DEPTH} levels",
            [Problem("", f"nests deeper than {MAX_DEPTH} levels")],
        ) from exc
    problems = json_problems(data)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise DocumentLimitError(f"{source}: not a document Graylane can store:\n{lines}", problems)
    return data


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
