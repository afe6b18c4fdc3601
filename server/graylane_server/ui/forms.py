"""Reading form fields: documents typed into an editor, percentages, choices."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from graylane.core import Problem
from graylane.documents import DocumentFileError, parse_text
from graylane_server.errors import InvalidDocument

_LOCAL_PATH = re.compile(r"/ui(/[A-Za-z0-9._~%/?=&+-]*)?")


class FormError(Exception):
    """A field the UI itself refuses before asking a service."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def text(form: Mapping[str, str], name: str, default: str = "") -> str:
    return form.get(name, default).strip()


def optional_int(form: Mapping[str, str], name: str) -> int | None:
    value = text(form, name)
    if not value:
        return None
    if not value.isdigit():
        raise FormError(name, f"{name} must be a whole number")
    return int(value)


def percentage(value: str, field: str = "percentage") -> float | int:
    """0..100 with at most three decimals, as the document allows."""
    try:
        number = float(value.strip().rstrip("%").strip())
    except ValueError:
        raise FormError(field, "enter a percentage between 0 and 100") from None
    if not 0 <= number <= 100:
        raise FormError(field, "enter a percentage between 0 and 100")
    if round(number, 3) != number:
        raise FormError(field, "use at most three decimals")
    return int(number) if number.is_integer() else number


def stages(value: str) -> list[float | int]:
    """`1, 10, 50, 100` -> [1, 10, 50, 100]."""
    parts = [p for p in re.split(r"[\s,;]+", value.strip()) if p]
    if not parts:
        raise FormError("stages", "list the stages, e.g. 1, 10, 50, 100")
    return [percentage(p, "stages") for p in parts]


def document(source: str, what: str = "definition") -> dict[str, Any]:
    """A JSON (or YAML 1.2) object typed into an editor, read as Graylane reads every
    document (`graylane.documents.parse_text`: `NO` stays a string, aliases are bounded);
    problems carry the line and column or the path."""
    if not source.strip():
        raise InvalidDocument([Problem("", f"the {what} is empty")])
    try:
        data = parse_text(source, source=f"the {what}")
    except DocumentFileError as exc:
        raise InvalidDocument(list(exc.problems)) from None
    if not isinstance(data, dict):
        raise InvalidDocument([Problem("", f"the {what} must be an object")])
    return {str(k): v for k, v in data.items()}


def contexts(source: str) -> list[dict[str, Any]]:
    """Evaluation contexts pasted by a person: a JSON array of objects, or one object per
    line."""
    source = source.strip()
    if not source:
        return []
    try:
        data = json.loads(source)
        items = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        items = []
        for number, line in enumerate(source.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise FormError(
                    "samples", f"line {number}: not a JSON object ({exc.msg})"
                ) from None
    if not all(isinstance(item, dict) for item in items):
        raise FormError("samples", "each sample context must be a JSON object")
    if len(items) > 10_000:
        raise FormError("samples", "paste at most 10,000 contexts")
    return items


def context(source: str) -> dict[str, Any]:
    """One evaluation context as a JSON object."""
    try:
        data = json.loads(source or "{}")
    except json.JSONDecodeError as exc:
        raise FormError(
            "context", f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise FormError("context", "the context must be a JSON object")
    return data


def local_target(value: str | None, default: str = "/ui/") -> str:
    """Where to go next, only ever a page of this UI (never another site)."""
    if value and _LOCAL_PATH.fullmatch(value) and "//" not in value:
        return value
    return default
